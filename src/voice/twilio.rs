//! Twilio as a carrier. A call from one of a team's Twilio numbers is created over Twilio's REST
//! API with TwiML that connects its audio to voxd as a Media Stream: a WebSocket Twilio opens to
//! `/twilio/stream/{call_id}`, carrying µ-law at 8 kHz in base64 JSON frames both ways (`media`;
//! `mark` to learn when what was sent has played, `clear` to drop it on barge-in; `dtmf`, `stop`
//! from Twilio). Status callbacks report ringing and the refusals. An inbound call to a team's
//! Twilio number arrives as a voice webhook (`/twilio/voice`), answered with the same TwiML.
//! Every request from Twilio is checked against its `X-Twilio-Signature` with the account's auth
//! token before anything else happens.
//!
//! A call waits in the process that placed (or answered) it until its stream connects, so the
//! status callbacks and the stream of a call must reach that process: behind a load balancer, route
//! `/twilio/status/{call_id}` and `/twilio/stream/{call_id}` by the call id, or run one node for
//! Twilio. The REST calls are our own three requests (create, end, cancel): no crate is needed.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use async_trait::async_trait;
use axum::extract::ws::{Message, WebSocket};
use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{
    audio::{self, FRAME},
    pipeline::{Inbound, Line, Options, Outbound, VoiceLeg},
    speech::Engines,
};
use crate::{
    carrier::{Carrier, Dial, Placed, ProgressSink},
    dispatcher::Dispatcher,
    domain::{
        call::{CallStatus, Progress},
        signature::twilio_verify,
    },
    store::{calls::Call, Db},
    twilio::{self as accounts, Credentials, TwilioError},
};

#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// Twilio's REST API (`https://api.twilio.com`; a fake in tests).
    pub api_base: String,
    /// Where Twilio reaches voxd: webhooks, and (as `ws`/`wss`) media streams.
    pub public_url: String,
    pub media_timeout: Duration,
    /// How long an outbound call may ring (Twilio's `Timeout`).
    pub ring_timeout: Duration,
    pub recordings: Option<PathBuf>,
}

/// Twilio in this process: the REST client, and the calls waiting for their media stream.
pub struct Twilio {
    db: Db,
    http: reqwest::Client,
    engines: Option<Engines>,
    settings: TwilioSettings,
    waiting: Mutex<HashMap<Uuid, Waiting>>,
    /// Runs inbound calls once their stream is up (set after the dispatcher is built, which
    /// itself needs the carrier).
    dispatcher: OnceLock<Dispatcher>,
}

/// A call waiting for its stream, with the credentials its webhooks are checked against.
struct Waiting {
    credentials: Credentials,
    call_sid: Option<String>,
    kind: WaitingKind,
}

enum WaitingKind {
    /// `place` is waiting: status callbacks and the stream go to it.
    Outbound(mpsc::UnboundedSender<Happened>),
    /// Answered from the voice webhook: the stream starts the call.
    Inbound(Box<Call>),
}

/// What Twilio told about an outbound call.
enum Happened {
    /// A status callback's `CallStatus`, with the SIP code or error code when there is one.
    Status(String, Option<String>),
    Stream(Box<Stream>),
}

/// A media stream that has started.
pub struct Stream {
    socket: WebSocket,
    stream_sid: String,
}

/// Why a request from Twilio was refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// Missing or malformed parameters.
    BadRequest(String),
    /// No valid signature (or an account voxd does not know).
    Forbidden,
    /// No call of that id waits here.
    NotFound,
}

/// What answers a voice webhook.
pub fn reject_twiml() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="rejected"/></Response>"#.into()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// A Twilio status as the call status it ends the call with, or None while the call goes on.
fn refusal_status(status: &str, detail: Option<&str>) -> Option<(CallStatus, String)> {
    let detail = detail.map(|d| format!(" ({d})")).unwrap_or_default();
    Some(match status {
        "busy" => (CallStatus::UserRejected, format!("busy{detail}")),
        "no-answer" => (CallStatus::RangOut, "no answer".into()),
        "canceled" => (CallStatus::Failed, "the call was cancelled at Twilio".into()),
        "failed" => (CallStatus::Failed, format!("Twilio could not place the call{detail}")),
        "completed" => (
            CallStatus::Failed,
            "the call ended before its media stream connected".into(),
        ),
        _ => return None,
    })
}

impl Twilio {
    pub fn new(db: Db, engines: Option<Engines>, settings: TwilioSettings) -> Arc<Twilio> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("voxd/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with rustls builds");
        Arc::new(Twilio {
            db,
            http,
            engines,
            settings,
            waiting: Mutex::new(HashMap::new()),
            dispatcher: OnceLock::new(),
        })
    }

    /// The dispatcher that runs inbound calls (once; later calls are ignored).
    pub fn set_dispatcher(&self, dispatcher: Dispatcher) {
        let _ = self.dispatcher.set(dispatcher);
    }

    fn base(&self) -> &str {
        self.settings.public_url.trim_end_matches('/')
    }

    /// `public_url` as a WebSocket origin (`https` → `wss`, `http` → `ws`).
    fn ws_base(&self) -> String {
        let base = self.base();
        match base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", base.strip_prefix("http://").unwrap_or(base)),
        }
    }

    /// The URL Twilio is told to open for a call's stream (and signs).
    fn stream_url(&self, call_id: Uuid) -> String {
        format!("{}/twilio/stream/{call_id}", self.ws_base())
    }

    /// The URL a request from Twilio was signed over: ours, as we gave it to Twilio.
    pub fn signed_url(&self, path_and_query: &str, websocket: bool) -> String {
        if websocket {
            format!("{}{path_and_query}", self.ws_base())
        } else {
            format!("{}{path_and_query}", self.base())
        }
    }

    /// TwiML that connects the call to its media stream.
    fn connect_twiml(&self, call_id: Uuid) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="{}"><Parameter name="call_id" value="{call_id}"/></Stream></Connect></Response>"#,
            xml_escape(&self.stream_url(call_id))
        )
    }

    fn calls_url(&self, credentials: &Credentials) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Calls",
            self.settings.api_base.trim_end_matches('/'),
            credentials.account_sid
        )
    }

    /// Creates the call at Twilio; its call SID, or why Twilio refused.
    async fn create_call(&self, credentials: &Credentials, dial: &Dial) -> Result<String, String> {
        let status = format!("{}/twilio/status/{}", self.base(), dial.call_id);
        let mut form: Vec<(&str, String)> = vec![
            ("To", dial.to_number.clone()),
            ("From", dial.from_number.clone()),
            ("Twiml", self.connect_twiml(dial.call_id)),
            ("StatusCallback", status),
            ("StatusCallbackMethod", "POST".into()),
            ("Timeout", self.settings.ring_timeout.as_secs().to_string()),
        ];
        for event in ["initiated", "ringing", "answered", "completed"] {
            form.push(("StatusCallbackEvent", event.into()));
        }
        let res = self
            .http
            .post(format!("{}.json", self.calls_url(credentials)))
            .basic_auth(&credentials.account_sid, Some(&credentials.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("Twilio's API did not answer: {}", e.without_url()))?;
        let code = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !code.is_success() {
            let message = body["message"]
                .as_str()
                .unwrap_or("no reason given")
                .trim_end_matches('.');
            return Err(match body["code"].as_u64() {
                Some(c) => format!("Twilio refused the call: {message} (error {c})"),
                None => format!("Twilio refused the call: {message} (HTTP {})", code.as_u16()),
            });
        }
        body["sid"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "Twilio's answer holds no call SID".into())
    }

    /// Hands a call over: its TwiML becomes a `<Dial>` to `to` (a number, or a SIP URI), which
    /// ends its stream. The number the call is from stays its caller id.
    async fn redirect(&self, credentials: &Credentials, call_sid: &str, to: &str) -> Result<(), String> {
        let target = if to.starts_with("sip:") || to.starts_with("sips:") {
            format!("<Sip>{}</Sip>", xml_escape(to))
        } else {
            format!("<Number>{}</Number>", xml_escape(to))
        };
        let twiml = format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial>{target}</Dial></Response>"#);
        let res = self
            .http
            .post(format!("{}/{call_sid}.json", self.calls_url(credentials)))
            .basic_auth(&credentials.account_sid, Some(&credentials.auth_token))
            .form(&[("Twiml", twiml)])
            .send()
            .await
            .map_err(|e| format!("Twilio's API did not answer: {}", e.without_url()))?;
        if res.status().is_success() {
            return Ok(());
        }
        let code = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let message = body["message"]
            .as_str()
            .unwrap_or("no reason given")
            .trim_end_matches('.');
        Err(format!("Twilio refused the transfer: {message} (HTTP {code})"))
    }

    /// Ends a call at Twilio (`completed` once answered, `canceled` while it rings).
    async fn end_call(&self, credentials: &Credentials, call_sid: &str, status: &str) {
        let res = self
            .http
            .post(format!("{}/{call_sid}.json", self.calls_url(credentials)))
            .basic_auth(&credentials.account_sid, Some(&credentials.auth_token))
            .form(&[("Status", status)])
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::debug!(%call_sid, status = r.status().as_u16(), "Twilio did not end the call (over already?)")
            }
            Err(e) => tracing::warn!(%call_sid, error = %e.without_url(), "Twilio's API did not answer the hang-up"),
        }
    }

    fn forget(&self, call_id: Uuid) -> Option<Waiting> {
        self.waiting.lock().ok()?.remove(&call_id)
    }

    /// A status callback for `call_id`, checked against its account's token.
    pub async fn status(
        &self,
        call_id: Uuid,
        url: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> Result<(), Refusal> {
        let status = param(params, "CallStatus").unwrap_or_default().to_owned();
        let detail = param(params, "SipResponseCode")
            .map(|c| format!("SIP {c}"))
            .or_else(|| param(params, "ErrorCode").map(|c| format!("error {c}")));
        let waiting = {
            let waiting = self.waiting.lock().map_err(|_| Refusal::NotFound)?;
            waiting
                .get(&call_id)
                .map(|w| (w.credentials.clone(), matches!(&w.kind, WaitingKind::Outbound(_))))
        };
        let credentials = match waiting {
            Some((c, _)) => c,
            // Over already, or placed by another process: still only a signed request is taken.
            None => {
                let team = self
                    .db
                    .call_team(call_id)
                    .await
                    .ok()
                    .flatten()
                    .ok_or(Refusal::NotFound)?;
                accounts::credentials(&self.db, team)
                    .await
                    .map_err(|_| Refusal::Forbidden)?
            }
        };
        if !twilio_verify(&credentials.auth_token, url, params, signature)
            || param(params, "AccountSid") != Some(credentials.account_sid.as_str())
        {
            tracing::warn!(%call_id, "Twilio status callback refused: bad signature");
            return Err(Refusal::Forbidden);
        }
        tracing::debug!(%call_id, %status, "Twilio call status");
        if let Ok(waiting) = self.waiting.lock() {
            if let Some(Waiting {
                kind: WaitingKind::Outbound(tx),
                ..
            }) = waiting.get(&call_id)
            {
                let _ = tx.send(Happened::Status(status, detail));
            }
        }
        Ok(())
    }

    /// An inbound call's voice webhook: TwiML that streams it to the number's inbound script, or
    /// rejects it (an unknown number, one not on Twilio, one without an inbound script).
    pub async fn voice(
        self: &Arc<Self>,
        url: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> Result<String, Refusal> {
        let account_sid =
            param(params, "AccountSid").ok_or_else(|| Refusal::BadRequest("AccountSid is missing".into()))?;
        let account = match self.db.twilio_account_by_sid(account_sid).await {
            Ok(Some(a)) => a,
            _ => {
                tracing::warn!(%account_sid, "Twilio voice webhook from an account no team has");
                return Err(Refusal::Forbidden);
            }
        };
        let credentials = accounts::open(&self.db, &account)
            .await
            .map_err(|_| Refusal::Forbidden)?;
        if !twilio_verify(&credentials.auth_token, url, params, signature) {
            tracing::warn!(%account_sid, "Twilio voice webhook refused: bad signature");
            return Err(Refusal::Forbidden);
        }
        let to = param(params, "To").unwrap_or_default();
        let call_sid = param(params, "CallSid").map(str::to_owned);
        let number = match self.db.team_number(account.team_id, to).await {
            Ok(Some(n)) if n.twilio => n,
            _ => {
                tracing::info!(team_id = %account.team_id, %to, "Twilio call to a number not on Twilio here: rejected");
                return Ok(reject_twiml());
            }
        };
        let Some(script) = number.inbound_script_id else {
            tracing::info!(number = %number.number, "Twilio call to a number without an inbound script: rejected");
            return Ok(reject_twiml());
        };
        let (Some(dispatcher), Some(Ok(_))) =
            (self.dispatcher.get(), self.engines.as_ref().map(|e| e.pick(None, None)))
        else {
            tracing::warn!(number = %number.number, "Twilio call rejected: no live voice in this process");
            return Ok(reject_twiml());
        };
        let team = match self.db.get_team(account.team_id).await {
            Ok(Some(t)) => t,
            _ => return Ok(reject_twiml()),
        };
        let caller = param(params, "From").filter(|f| f.starts_with('+')).map(str::to_owned);
        let call = match dispatcher.create_inbound(&team, &number.number, script, caller).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(number = %number.number, error = %e, "Twilio call rejected: the call could not be created");
                return Ok(reject_twiml());
            }
        };
        let call_id = call.id;
        tracing::info!(%call_id, team_id = %team.id, number = %number.number, "inbound Twilio call answered");
        let twiml = self.connect_twiml(call_id);
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(
                call_id,
                Waiting {
                    credentials,
                    call_sid,
                    kind: WaitingKind::Inbound(Box::new(call)),
                },
            );
        }
        // A stream that never comes: the call fails rather than waiting for ever.
        let db = self.db.clone();
        let owner = dispatcher.owner().to_owned();
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            if me.upgrade().and_then(|t| t.forget(call_id)).is_some() {
                tracing::warn!(%call_id, "inbound Twilio call: the media stream never connected");
                let _ = db
                    .finish_attempt(
                        call_id,
                        &owner,
                        "failed",
                        "the media stream never connected",
                        None,
                        json!({}),
                        chrono::Utc::now(),
                    )
                    .await;
            }
        });
        Ok(twiml)
    }

    /// The token a stream's opening request must be signed with: the waiting call's.
    pub fn stream_token(&self, call_id: Uuid) -> Option<String> {
        let waiting = self.waiting.lock().ok()?;
        waiting.get(&call_id).map(|w| w.credentials.auth_token.clone())
    }

    /// A signed stream connected for `call_id`: wait for its `start`, then hand it to the call.
    pub async fn accept_stream(self: Arc<Self>, call_id: Uuid, mut socket: WebSocket) {
        let started = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(message)) = socket.recv().await {
                let Message::Text(text) = message else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if v["event"] == "start" {
                    return Some(v);
                }
            }
            None
        })
        .await;
        let Ok(Some(start)) = started else {
            tracing::warn!(%call_id, "Twilio media stream closed before it started");
            return;
        };
        let stream_sid = start["start"]["streamSid"]
            .as_str()
            .or(start["streamSid"].as_str())
            .unwrap_or_default()
            .to_owned();
        let call_sid = start["start"]["callSid"].as_str().unwrap_or_default().to_owned();
        let named = start["start"]["customParameters"]["call_id"].as_str();
        if named != Some(call_id.to_string().as_str()) {
            tracing::warn!(%call_id, ?named, "Twilio media stream for another call: closed");
            return;
        }
        let Some(waiting) = self.forget(call_id) else {
            tracing::warn!(%call_id, "Twilio media stream for a call not waiting here: closed");
            return;
        };
        if waiting.call_sid.as_deref().is_some_and(|sid| sid != call_sid) {
            tracing::warn!(%call_id, "Twilio media stream of another Twilio call: closed");
            return;
        }
        tracing::info!(%call_id, %stream_sid, "Twilio media stream started");
        let stream = Stream { socket, stream_sid };
        match waiting.kind {
            WaitingKind::Outbound(tx) => {
                let _ = tx.send(Happened::Stream(Box::new(stream)));
            }
            WaitingKind::Inbound(call) => {
                let Some(dispatcher) = self.dispatcher.get().cloned() else {
                    return;
                };
                let record = self
                    .db
                    .get_team(call.team_id)
                    .await
                    .ok()
                    .flatten()
                    .is_none_or(|t| t.recordings);
                let Ok(leg) = self.leg(stream, waiting.credentials, call_sid, call_id, record) else {
                    return;
                };
                if let Err(e) = dispatcher.run_joined(*call, Box::new(leg), "twilio").await {
                    tracing::warn!(%call_id, error = %e, "inbound Twilio call failed");
                }
            }
        }
    }

    /// The voice pipeline over a started stream; hanging up from our side ends the call at
    /// Twilio once what was sent has played.
    fn leg(
        self: &Arc<Self>,
        stream: Stream,
        credentials: Credentials,
        call_sid: String,
        call_id: Uuid,
        record: bool,
    ) -> Result<VoiceLeg, String> {
        let engines = self.engines.as_ref().ok_or("no live voice in this process")?;
        let (stt, tts) = engines.pick(None, None)?;
        let (inbound_tx, inbound_rx) = mpsc::channel(512);
        let (outbound_tx, outbound_rx) = mpsc::channel(512);
        let control = Control {
            twilio: self.clone(),
            credentials,
            call_sid,
        };
        tokio::spawn(pump(stream, inbound_tx, outbound_rx, control));
        Ok(VoiceLeg::start(
            Line {
                inbound: inbound_rx,
                outbound: outbound_tx,
            },
            Options {
                call_id,
                stt,
                tts,
                recordings: self.settings.recordings.clone().filter(|_| record),
                recording_url: Some(format!("{}/api/v1/calls/{call_id}/recording", self.base())),
                media_timeout: self.settings.media_timeout,
                timings: None,
            },
        ))
    }
}

/// What a stream's call is at Twilio: what hanging up and transfers need.
struct Control {
    twilio: Arc<Twilio>,
    credentials: Credentials,
    call_sid: String,
}

/// Moves audio between a stream and the pipeline until one side ends; then ends the call at
/// Twilio unless Twilio ended it (or it was handed over).
async fn pump(
    mut stream: Stream,
    to_pipeline: mpsc::Sender<Inbound>,
    mut from_pipeline: mpsc::Receiver<Outbound>,
    control: Control,
) {
    let sid = stream.stream_sid.clone();
    let frame_json = |event: &str, extra: (&str, Value)| {
        let mut v = json!({ "event": event, "streamSid": sid });
        if !extra.0.is_empty() {
            v[extra.0] = extra.1;
        }
        Message::Text(v.to_string().into())
    };
    let mut pending: Vec<i16> = Vec::with_capacity(2 * FRAME);
    // Set once we hang up: the moment we stop waiting for Twilio to play what was sent.
    let mut finishing: Option<tokio::time::Instant> = None;
    let over_at_twilio = loop {
        let until = finishing.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            message = stream.socket.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                    match v["event"].as_str() {
                        Some("media") => {
                            let Some(bytes) = v["media"]["payload"].as_str().and_then(|p| STANDARD.decode(p).ok()) else {
                                continue;
                            };
                            pending.extend(bytes.iter().map(|&b| audio::ulaw_decode(b)));
                            while pending.len() >= FRAME {
                                let frame: Vec<i16> = pending.drain(..FRAME).collect();
                                let _ = to_pipeline.try_send(Inbound::Audio(frame));
                            }
                        }
                        Some("dtmf") => {
                            if let Some(key) = v["dtmf"]["digit"].as_str().and_then(|d| d.chars().next()) {
                                let _ = to_pipeline.send(Inbound::Dtmf(key)).await;
                            }
                        }
                        // Everything sent before our hang-up has played.
                        Some("mark") if finishing.is_some() && v["mark"]["name"] == "hang-up" => break false,
                        Some("stop") => {
                            let _ = to_pipeline.send(Inbound::HungUp).await;
                            break true;
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | None => {
                    let _ = to_pipeline.send(Inbound::Dropped("the media stream closed".into())).await;
                    break false;
                }
                Some(Err(e)) => {
                    let _ = to_pipeline.send(Inbound::Dropped(format!("the media stream failed: {e}"))).await;
                    break false;
                }
                Some(Ok(_)) => {}
            },
            out = from_pipeline.recv(), if finishing.is_none() => match out {
                Some(Outbound::Audio(frame)) => {
                    let bytes: Vec<u8> = frame.iter().map(|&s| audio::ulaw_encode(s)).collect();
                    let media = frame_json("media", ("media", json!({ "payload": STANDARD.encode(bytes) })));
                    if stream.socket.send(media).await.is_err() {
                        break false;
                    }
                }
                Some(Outbound::Clear) => {
                    let _ = stream.socket.send(frame_json("clear", ("", Value::Null))).await;
                }
                Some(Outbound::HangUp) => {
                    let mark = frame_json("mark", ("mark", json!({ "name": "hang-up" })));
                    let _ = stream.socket.send(mark).await;
                    finishing = Some(tokio::time::Instant::now() + Duration::from_secs(5));
                }
                Some(Outbound::Transfer { to, reply }) => {
                    let result = control.twilio.redirect(&control.credentials, &control.call_sid, &to).await;
                    let taken = result.is_ok();
                    let _ = reply.send(result);
                    if taken {
                        // Twilio now dials the target and stops this stream: the call is theirs.
                        break true;
                    }
                }
                Some(Outbound::Transcript { .. }) => {}
                None => break false,
            },
            _ = tokio::time::sleep_until(until), if finishing.is_some() => break false,
        }
    };
    if !over_at_twilio {
        control
            .twilio
            .end_call(&control.credentials, &control.call_sid, "completed")
            .await;
    }
    let _ = stream.socket.send(Message::Close(None)).await;
}

/// The carrier for teams' Twilio numbers; any other call goes to the carrier behind it.
pub struct TwilioCarrier {
    pub twilio: Arc<Twilio>,
    pub fallback: Arc<dyn Carrier>,
}

#[async_trait]
impl Carrier for TwilioCarrier {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn carrier_for(&self, dial: &Dial) -> &'static str {
        match self.twilio.db.team_number(dial.team_id, &dial.from_number).await {
            Ok(Some(n)) if !n.twilio => self.fallback.carrier_for(dial).await,
            Ok(None) => self.fallback.carrier_for(dial).await,
            _ => self.name(),
        }
    }

    async fn place(&self, dial: Dial, sink: &dyn ProgressSink) -> Placed {
        let twilio = &self.twilio;
        match twilio.db.team_number(dial.team_id, &dial.from_number).await {
            Ok(Some(n)) if n.twilio => {}
            Ok(_) => return self.fallback.place(dial, sink).await,
            Err(e) => return Placed::not_connected(CallStatus::Failed, format!("number lookup failed: {e}")),
        }
        let credentials = match accounts::credentials(&twilio.db, dial.team_id).await {
            Ok(c) => c,
            Err(TwilioError::NotFound) => {
                let why = "the number is on Twilio but the team has no Twilio account (PUT /api/v1/twilio)";
                return Placed::not_connected(CallStatus::Failed, why);
            }
            Err(e) => return Placed::not_connected(CallStatus::Failed, e.to_string()),
        };
        let call_id = dial.call_id;
        let (tx, mut happened) = mpsc::unbounded_channel();
        if let Ok(mut waiting) = twilio.waiting.lock() {
            waiting.insert(
                call_id,
                Waiting {
                    credentials: credentials.clone(),
                    call_sid: None,
                    kind: WaitingKind::Outbound(tx),
                },
            );
        }
        // However this ends, the call stops waiting here.
        struct Forget<'a>(&'a Twilio, Uuid);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.forget(self.1);
            }
        }
        let _forget = Forget(twilio, call_id);
        let call_sid = match twilio.create_call(&credentials, &dial).await {
            Ok(sid) => sid,
            Err(why) => {
                tracing::info!(%call_id, %why, "Twilio call not placed");
                return Placed::not_connected(CallStatus::Failed, why);
            }
        };
        if let Ok(mut waiting) = twilio.waiting.lock() {
            if let Some(w) = waiting.get_mut(&call_id) {
                w.call_sid = Some(call_sid.clone());
            }
        }
        tracing::info!(%call_id, %call_sid, "Twilio call created");
        // Twilio gives up ringing after `Timeout`; this bounds the wait should its callbacks
        // never come.
        let mut deadline = tokio::time::Instant::now() + twilio.settings.ring_timeout + Duration::from_secs(20);
        let mut answered = false;
        loop {
            let next = tokio::time::timeout_at(deadline, happened.recv()).await;
            let event = match next {
                Ok(Some(e)) => e,
                Ok(None) | Err(_) => {
                    let (status, end) = if answered {
                        ("completed", "failed")
                    } else {
                        ("canceled", "rang-out")
                    };
                    twilio.end_call(&credentials, &call_sid, status).await;
                    return if answered {
                        Placed::not_connected(CallStatus::Failed, "answered, but the media stream never connected")
                    } else {
                        tracing::info!(%call_id, end, "Twilio call: no word from Twilio in time");
                        Placed::not_connected(CallStatus::RangOut, "no answer")
                    };
                }
            };
            match event {
                Happened::Status(status, detail) => match status.as_str() {
                    "ringing" => {
                        if !sink.progress(Progress::Ringing).await {
                            twilio.end_call(&credentials, &call_sid, "canceled").await;
                            return Placed::not_connected(CallStatus::Failed, "api_ended");
                        }
                    }
                    "in-progress" | "answered" => {
                        // The stream follows the answer at once.
                        answered = true;
                        deadline = deadline.min(tokio::time::Instant::now() + Duration::from_secs(10));
                    }
                    other => {
                        if let Some((status, why)) = refusal_status(other, detail.as_deref()) {
                            tracing::info!(%call_id, twilio_status = other, "Twilio call not connected");
                            return Placed::not_connected(status, why);
                        }
                    }
                },
                Happened::Stream(stream) => {
                    if !sink.progress(Progress::InProgress).await {
                        twilio.end_call(&credentials, &call_sid, "completed").await;
                        return Placed::not_connected(CallStatus::Failed, "api_ended");
                    }
                    let record = twilio
                        .db
                        .get_team(dial.team_id)
                        .await
                        .ok()
                        .flatten()
                        .is_none_or(|t| t.recordings);
                    return match twilio.leg(*stream, credentials.clone(), call_sid.clone(), call_id, record) {
                        Ok(leg) => Placed::Answered(Box::new(leg)),
                        Err(why) => {
                            twilio.end_call(&credentials, &call_sid, "completed").await;
                            Placed::not_connected(CallStatus::Failed, format!("speech engines missing: {why}"))
                        }
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_statuses_map_to_call_statuses() {
        assert_eq!(refusal_status("ringing", None), None);
        assert_eq!(refusal_status("in-progress", None), None);
        assert_eq!(
            refusal_status("busy", Some("SIP 486")).map(|s| s.0),
            Some(CallStatus::UserRejected)
        );
        assert_eq!(
            refusal_status("no-answer", None).map(|s| s.0),
            Some(CallStatus::RangOut)
        );
        let (status, why) = refusal_status("failed", Some("SIP 503")).unwrap();
        assert_eq!(status, CallStatus::Failed);
        assert!(why.contains("SIP 503"), "{why}");
    }

    #[test]
    fn twiml_is_escaped() {
        assert_eq!(xml_escape(r#"a&b<"c">"#), "a&amp;b&lt;&quot;c&quot;&gt;");
    }
}
