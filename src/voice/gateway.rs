//! The web-call gateway: SIP over WebSocket (RFC 7118) on the API's own port at `/sip`, and the
//! browser's media answered by [`webrtc`](super::webrtc). A browser softphone (JsSIP, SIP.js)
//! INVITEs `sip:<call id>@<domain>` with the ephemeral credentials create-web-call minted for that
//! call; voxd answers as the user agent itself, joins the call (once: a call that ended or was
//! already joined is refused) and runs its Script over the live pipeline.
//!
//! Credentials are checked by digest against the password derived from the shared secret: the
//! username names the call and its expiry, so they open that call only, and only until then.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::extract::ws::{Message as WsMessage, WebSocket};
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{
    digest::{self, Authorization},
    pipeline::{Inbound, Line, Options, TurnTiming, VoiceLeg},
    sip::{self, Message},
    speech::Engines,
    webrtc::{self, MediaSettings, Notice},
};
use crate::{dispatcher::Dispatcher, domain::call::CallStatus, store::Db};

/// What the gateway is told at start.
pub struct GatewaySettings {
    /// The SIP domain (digest realm, the host of call URIs).
    pub domain: String,
    pub secret: Vec<u8>,
    pub media: MediaSettings,
    /// Where recordings are written; None: nothing is recorded.
    pub recordings: Option<PathBuf>,
    /// The public base URL of the API, for recording links.
    pub public_url: String,
    pub media_timeout: Duration,
}

pub struct Gateway {
    db: Db,
    dispatcher: Dispatcher,
    settings: GatewaySettings,
    engines: Engines,
    /// Web calls running in this process: how to reach their pipeline, and their team.
    live: Mutex<HashMap<Uuid, LiveCall>>,
    /// When set, every call's turn latencies are gathered (the benchmark).
    pub timings: Option<Arc<Mutex<Vec<TurnTiming>>>>,
}

struct LiveCall {
    team_id: Uuid,
    inbound: mpsc::Sender<Inbound>,
    done: tokio::sync::watch::Receiver<bool>,
}

/// Why a browser could not join.
#[derive(Debug)]
pub enum JoinError {
    /// Speech engines are missing (the reason).
    Unavailable(String),
    /// The call is not waiting for a browser (ended, cancelled, joined already, or unknown).
    NotWaiting,
    BadOffer(String),
    Internal(String),
}

impl Gateway {
    pub fn new(db: Db, dispatcher: Dispatcher, settings: GatewaySettings, engines: Engines) -> Gateway {
        Gateway {
            db,
            dispatcher,
            settings,
            engines,
            live: Mutex::new(HashMap::new()),
            timings: None,
        }
    }

    pub fn engines(&self) -> &Engines {
        &self.engines
    }

    pub fn settings(&self) -> &GatewaySettings {
        &self.settings
    }

    /// Ends a web call running here, as end-web-call asks; waits (bounded) until it is recorded.
    /// False when the call is not live in this process.
    pub async fn end(&self, team_id: Uuid, call_id: Uuid, status: CallStatus, end_reason: &str) -> bool {
        let found = {
            let live = self.live.lock().expect("live calls");
            live.get(&call_id)
                .filter(|c| c.team_id == team_id)
                .map(|c| (c.inbound.clone(), c.done.clone()))
        };
        let Some((inbound, mut done)) = found else { return false };
        let _ = inbound.send(Inbound::Ended(status, end_reason.to_owned())).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), done.wait_for(|d| *d)).await;
        true
    }

    /// How many web calls run in this process.
    pub fn live_calls(&self) -> usize {
        self.live.lock().map_or(0, |l| l.len())
    }

    /// Answers the browser's offer, joins the call and starts its conversation.
    async fn join(
        self: &Arc<Self>,
        call_id: Uuid,
        offer: &str,
    ) -> Result<(String, mpsc::Sender<Inbound>, mpsc::UnboundedReceiver<Notice>), JoinError> {
        let (inbound_tx, inbound_rx) = mpsc::channel(512);
        // Media first: a bad offer must not take the call.
        let answered = webrtc::answer(offer, &self.settings.media, inbound_tx.clone())
            .await
            .map_err(JoinError::BadOffer)?;
        let now = Utc::now();
        let lease_until = now.timestamp_millis() + self.dispatcher.lease().as_millis() as i64;
        let call = self
            .db
            .join_web_call(call_id, self.dispatcher.owner(), lease_until, now)
            .await
            .map_err(|e| JoinError::Internal(e.to_string()))?
            .ok_or(JoinError::NotWaiting)?;
        let script = self
            .db
            .get_script_version(call.team_id, call.script_id, call.script_version)
            .await
            .map_err(|e| JoinError::Internal(e.to_string()))?;
        let settings = script
            .as_ref()
            .map(|s| s.definition.0.settings.clone())
            .unwrap_or_default();
        let engines = self.engines.clone();
        let picked = tokio::task::spawn_blocking(move || {
            engines.pick(settings.stt.map(|e| e.name()), settings.tts.map(|e| e.name()))
        })
        .await
        .map_err(|e| JoinError::Internal(e.to_string()))?;
        let (stt, tts) = match picked {
            Ok(pair) => pair,
            Err(why) => {
                // create-web-call checked them; an engine that went missing since ends the call here.
                let result = serde_json::json!({"error": format!("speech engines missing: {why}")});
                self.db
                    .finish_attempt(
                        call_id,
                        self.dispatcher.owner(),
                        "failed",
                        "speech engine missing",
                        None,
                        result,
                        now,
                    )
                    .await
                    .map_err(|e| JoinError::Internal(e.to_string()))?;
                return Err(JoinError::Unavailable(why));
            }
        };
        let team_records = self
            .db
            .get_team(call.team_id)
            .await
            .map_err(|e| JoinError::Internal(e.to_string()))?
            .is_none_or(|t| t.recordings);
        let record = team_records && script.as_ref().is_none_or(|s| s.definition.0.settings.recording);
        let recordings = self.settings.recordings.clone().filter(|_| record);
        let leg = VoiceLeg::start(
            Line {
                inbound: inbound_rx,
                outbound: answered.outbound,
            },
            Options {
                call_id,
                stt,
                tts,
                recordings,
                recording_url: Some(format!(
                    "{}/api/v1/calls/{call_id}/recording",
                    self.settings.public_url.trim_end_matches('/')
                )),
                media_timeout: self.settings.media_timeout,
                timings: self.timings.clone(),
            },
        );
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        self.live.lock().expect("live calls").insert(
            call_id,
            LiveCall {
                team_id: call.team_id,
                inbound: inbound_tx.clone(),
                done: done_rx,
            },
        );
        tracing::info!(%call_id, team_id = %call.team_id, "browser joined the web call");
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.dispatcher.run_joined(call, Box::new(leg), "webrtc").await {
                tracing::warn!(%call_id, error = %e, "web call failed");
            }
            me.live.lock().expect("live calls").remove(&call_id);
            let _ = done_tx.send(true);
        });
        Ok((answered.sdp, inbound_tx, answered.notices))
    }
}

/// One SIP dialog (a call) on a connection.
struct Dialog {
    inbound: mpsc::Sender<Inbound>,
    /// Our To header on the INVITE's responses (with our tag): the From of requests we send.
    local: String,
    /// The browser's From header: the To of requests we send.
    remote: String,
    /// The browser's Contact URI: where requests we send go.
    target: String,
    cseq: u32,
    answer: String,
}

/// Serves one WebSocket connection until it closes.
pub async fn connection(gateway: Arc<Gateway>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (hangups_tx, mut hangups) = mpsc::unbounded_channel::<(String, Notice)>();
    let mut dialogs: HashMap<String, Dialog> = HashMap::new();
    loop {
        let outgoing: Vec<String> = tokio::select! {
            m = stream.next() => match m {
                Some(Ok(WsMessage::Text(text))) => handle(&gateway, &mut dialogs, &hangups_tx, text.as_str()).await,
                Some(Ok(WsMessage::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                    Ok(text) => handle(&gateway, &mut dialogs, &hangups_tx, text).await,
                    Err(_) => Vec::new(),
                },
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => Vec::new(),
            },
            Some((sip_call_id, notice)) = hangups.recv() => match notice {
                Notice::HungUp => match dialogs.remove(&sip_call_id) {
                    Some(mut d) => vec![in_dialog("BYE", &sip_call_id, &mut d, &gateway.settings.domain).to_string()],
                    None => Vec::new(),
                },
                Notice::Transfer { reply, .. } => {
                    let _ = reply.send(Err("a web call cannot be handed over".into()));
                    Vec::new()
                }
                Notice::Transcript { role, text } => match dialogs.get_mut(&sip_call_id) {
                    Some(d) => {
                        let body = serde_json::json!({"type": "transcript", "role": role, "text": text}).to_string();
                        vec![in_dialog("INFO", &sip_call_id, d, &gateway.settings.domain).with_body("application/json", body).to_string()]
                    }
                    None => Vec::new(),
                },
            },
        };
        for text in outgoing {
            if sink.send(WsMessage::Text(text.into())).await.is_err() {
                break;
            }
        }
    }
    // The tab closed (or the network went) without a BYE.
    for (_, d) in dialogs {
        let _ = d
            .inbound
            .send(Inbound::Dropped("the browser's signalling connection closed".into()))
            .await;
    }
}

/// A request of ours inside the dialog (BYE, INFO).
fn in_dialog(method: &str, sip_call_id: &str, d: &mut Dialog, domain: &str) -> Message {
    d.cseq += 1;
    Message::request(method, &d.target)
        .with(
            "Via",
            format!("SIP/2.0/WSS {domain};branch=z9hG4bK{}", Uuid::new_v4().simple()),
        )
        .with("Max-Forwards", "70")
        .with("From", d.local.clone())
        .with("To", d.remote.clone())
        .with("Call-ID", sip_call_id)
        .with("CSeq", format!("{} {method}", d.cseq))
}

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO";

/// The messages to send back for one received.
async fn handle(
    gateway: &Arc<Gateway>,
    dialogs: &mut HashMap<String, Dialog>,
    hangups: &mpsc::UnboundedSender<(String, Notice)>,
    text: &str,
) -> Vec<String> {
    if text.trim().is_empty() {
        // A keep-alive (CRLF).
        return Vec::new();
    }
    let m = match Message::parse(text) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(error = %e, "not a SIP message");
            return Vec::new();
        }
    };
    let Some(method) = m.method().map(str::to_owned) else {
        // A response (to our BYE): nothing to do.
        return Vec::new();
    };
    let sip_call_id = m.header("Call-ID").unwrap_or_default().to_owned();
    let reply = |code: u16, reason: &str| m.response(code, reason, Some("voxd")).to_string();
    match method.as_str() {
        "OPTIONS" => vec![m.response(200, "OK", None).with("Allow", ALLOW).to_string()],
        "ACK" => Vec::new(),
        "BYE" => match dialogs.remove(&sip_call_id) {
            Some(d) => {
                let _ = d.inbound.send(Inbound::HungUp).await;
                vec![reply(200, "OK")]
            }
            None => vec![reply(481, "Call/Transaction Does Not Exist")],
        },
        "CANCEL" => {
            if let Some(d) = dialogs.remove(&sip_call_id) {
                let _ = d.inbound.send(Inbound::HungUp).await;
            }
            vec![reply(200, "OK")]
        }
        "INFO" => match dialogs.get(&sip_call_id) {
            Some(d) => {
                if let Some(key) = dtmf_of_info(&m.body) {
                    let _ = d.inbound.send(Inbound::Dtmf(key)).await;
                }
                vec![reply(200, "OK")]
            }
            None => vec![reply(481, "Call/Transaction Does Not Exist")],
        },
        "REGISTER" => match authorize(gateway, &m, "REGISTER") {
            Ok(_) => vec![m
                .response(200, "OK", Some("voxd"))
                .with("Contact", m.header("Contact").unwrap_or_default().to_owned())
                .with("Expires", "600")
                .to_string()],
            Err(refusal) => vec![refusal],
        },
        "INVITE" => {
            if let Some(d) = dialogs.get(&sip_call_id) {
                // A re-INVITE in the dialog (a refresh): the same media answer.
                return vec![m
                    .response(200, "OK", Some("voxd"))
                    .with("Contact", contact(&gateway.settings.domain))
                    .with_body("application/sdp", d.answer.clone())
                    .to_string()];
            }
            invite(gateway, dialogs, hangups, &m, sip_call_id).await
        }
        _ => vec![m
            .response(405, "Method Not Allowed", Some("voxd"))
            .with("Allow", ALLOW)
            .to_string()],
    }
}

fn contact(domain: &str) -> String {
    format!("<sip:voxd@{domain};transport=ws>")
}

/// The call an authorised request may open, or the response refusing it.
fn authorize(gateway: &Gateway, m: &Message, method: &str) -> Result<Uuid, String> {
    let domain = &gateway.settings.domain;
    let now = Utc::now().timestamp();
    let challenge = || {
        m.response(401, "Unauthorized", Some("voxd"))
            .with(
                "WWW-Authenticate",
                digest::challenge(domain, &digest::nonce(&gateway.settings.secret, now)),
            )
            .to_string()
    };
    let Some(auth) = m
        .header("Authorization")
        .or_else(|| m.header("Proxy-Authorization"))
        .and_then(Authorization::parse)
    else {
        return Err(challenge());
    };
    let forbidden = |why: &str| {
        tracing::info!(reason = why, "web call credentials refused");
        m.response(403, why, Some("voxd")).to_string()
    };
    let Some(username) = auth.username() else {
        return Err(forbidden("Bad Credentials"));
    };
    let password = crate::domain::web_call::password(&gateway.settings.secret, username);
    // A nonce we did not issue, or a stale one, gets a fresh challenge; a wrong answer is refused.
    if !auth.nonce_fresh(&gateway.settings.secret, now) {
        return Err(challenge());
    }
    if !auth.verify(&gateway.settings.secret, method, &password, now) {
        return Err(forbidden("Bad Credentials"));
    }
    let (expiry, call) = username.split_once(':').unwrap_or(("", ""));
    match (expiry.parse::<i64>(), Uuid::parse_str(call)) {
        (Ok(expiry), _) if expiry < now => Err(forbidden("Credentials Expired")),
        (Ok(_), Ok(call_id)) => Ok(call_id),
        _ => Err(forbidden("Bad Credentials")),
    }
}

async fn invite(
    gateway: &Arc<Gateway>,
    dialogs: &mut HashMap<String, Dialog>,
    hangups: &mpsc::UnboundedSender<(String, Notice)>,
    m: &Message,
    sip_call_id: String,
) -> Vec<String> {
    let call_id = match authorize(gateway, m, "INVITE") {
        Ok(id) => id,
        Err(refusal) => return vec![refusal],
    };
    // The credentials open their own call only.
    let asked = m.uri().and_then(sip::uri_user).and_then(|u| Uuid::parse_str(u).ok());
    if asked != Some(call_id) {
        return vec![m
            .response(403, "Credentials Are For Another Call", Some("voxd"))
            .to_string()];
    }
    let mut out = vec![m.response(100, "Trying", None).to_string()];
    match gateway.join(call_id, &m.body).await {
        Ok((answer, inbound, mut notices)) => {
            let ok = m
                .response(200, "OK", Some("voxd"))
                .with("Contact", contact(&gateway.settings.domain))
                .with("Allow", ALLOW)
                .with_body("application/sdp", answer.clone());
            let to = ok.header("To").unwrap_or_default().to_owned();
            let dialog = Dialog {
                inbound,
                local: to,
                remote: m.header("From").unwrap_or_default().to_owned(),
                target: sip::addr(m.header("Contact").unwrap_or_default()).to_owned(),
                cseq: 0,
                answer,
            };
            dialogs.insert(sip_call_id.clone(), dialog);
            // The pipeline's hang-up and transcript lines go out on this connection.
            let hangups = hangups.clone();
            tokio::spawn(async move {
                while let Some(notice) = notices.recv().await {
                    let last = matches!(notice, Notice::HungUp);
                    if hangups.send((sip_call_id.clone(), notice)).is_err() || last {
                        break;
                    }
                }
            });
            out.push(ok.to_string());
        }
        Err(JoinError::Unavailable(why)) => {
            tracing::warn!(%call_id, reason = %why, "web call refused: speech engines missing");
            out.push(
                m.response(503, "Service Unavailable", Some("voxd"))
                    .with("Warning", format!("399 voxd \"{why}\""))
                    .to_string(),
            );
        }
        Err(JoinError::NotWaiting) => out.push(
            m.response(410, "Call Not Waiting For A Browser", Some("voxd"))
                .to_string(),
        ),
        Err(JoinError::BadOffer(why)) => out.push(
            m.response(488, "Not Acceptable Here", Some("voxd"))
                .with("Warning", format!("399 voxd \"{why}\""))
                .to_string(),
        ),
        Err(JoinError::Internal(why)) => {
            tracing::error!(%call_id, error = %why, "web call could not join");
            out.push(m.response(500, "Server Internal Error", Some("voxd")).to_string());
        }
    }
    out
}

/// The key of a SIP INFO DTMF body (`application/dtmf-relay`: `Signal=5`; `application/dtmf`: `5`).
fn dtmf_of_info(body: &str) -> Option<char> {
    let value = body
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Signal")
                .map(|v| v.trim_start_matches([' ', '=']).trim())
        })
        .unwrap_or(body.trim());
    let key = value.chars().next()?;
    (key.is_ascii_digit() || key == '*' || key == '#').then_some(key)
}

#[cfg(test)]
mod tests {
    use super::dtmf_of_info;

    #[test]
    fn dtmf_from_info_bodies() {
        assert_eq!(dtmf_of_info("Signal=5\r\nDuration=160\r\n"), Some('5'));
        assert_eq!(dtmf_of_info("Signal= #\r\n"), Some('#'));
        assert_eq!(dtmf_of_info("*"), Some('*'));
        assert_eq!(dtmf_of_info("Signal=x"), None);
        assert_eq!(dtmf_of_info(""), None);
    }
}
