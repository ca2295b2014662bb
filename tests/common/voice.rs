//! Live voice test helpers: an app with the web-call gateway, a scripted speech-to-text double,
//! callee audio synthesised with espeak-ng, and a softphone in Rust (SIP over WebSocket, str0m as
//! the full-ICE offerer) that plays audio into a call and records what it hears.
#![allow(dead_code)]

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use str0m::{
    change::SdpAnswer,
    format::Codec,
    media::{Direction, Frequency, MediaKind, MediaTime, Mid},
    net::{Protocol, Receive},
    Candidate, Event, Input, Output, Rtc,
};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message as WsMessage};
use voxd::voice::{
    audio,
    gateway::{Gateway, GatewaySettings},
    sip::{self, Message},
    speech::{Engines, Espeak, SpeechError, SpeechToText, TextToSpeech},
    webrtc::MediaSettings,
};

use super::{Backend, TestApp};

/// Speech-to-text that returns its lines in order, one per utterance the pipeline hears: tests
/// of everything but recognition (recognition itself is tested with Whisper). The pipeline may
/// transcribe an utterance more than once (early, in a pause, then whole): an utterance is known
/// by its first half second, so it gets the same line each time.
pub struct ScriptedStt {
    lines: Mutex<VecDeque<String>>,
    /// Each utterance heard: its opening samples, and its line.
    pub heard: Mutex<Vec<(Vec<u32>, String)>>,
}

impl ScriptedStt {
    pub fn new(lines: &[&str]) -> Arc<ScriptedStt> {
        Arc::new(ScriptedStt {
            lines: Mutex::new(lines.iter().map(|l| l.to_string()).collect()),
            heard: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl SpeechToText for ScriptedStt {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn transcribe(&self, samples: Vec<f32>, _keywords: &[String]) -> Result<String, SpeechError> {
        let opening: Vec<u32> = samples.iter().take(8000).map(|s| s.to_bits()).collect();
        let mut heard = self.heard.lock().unwrap();
        if let Some((_, line)) = heard
            .iter()
            .find(|(o, _)| opening.starts_with(o) || o.starts_with(&opening))
        {
            return Ok(line.clone());
        }
        let line = self.lines.lock().unwrap().pop_front().unwrap_or_default();
        heard.push((opening, line.clone()));
        Ok(line)
    }
}

/// Whether voice tests that need a tool can run; without it they skip and say so, unless
/// `VOXD_REQUIRE_VOICE` is set (CI sets it, so a missing install fails there).
pub fn have(what: &str, ok: bool) -> bool {
    if !ok {
        assert!(
            std::env::var_os("VOXD_REQUIRE_VOICE").is_none(),
            "VOXD_REQUIRE_VOICE is set but {what} is missing"
        );
        eprintln!("voice test skipped: missing {what}");
    }
    ok
}

pub fn espeak() -> Option<Espeak> {
    let e = Espeak::find();
    have("espeak-ng (apt install espeak-ng)", e.is_some())
        .then_some(e)
        .flatten()
}

/// Engines with real Whisper, when this build has it and the model is installed (and Piper, for
/// the callee's voice).
pub fn whisper_engines() -> Option<Engines> {
    if !have(
        "the `whisper` feature (cargo test --features whisper)",
        cfg!(feature = "whisper"),
    ) {
        return None;
    }
    espeak()?;
    piper()?;
    let e = Engines::choose("whisper", "espeak", speech_source());
    have(
        &format!("whisper: {}", e.stt_missing.clone().unwrap_or_default()),
        e.stt.is_some(),
    )
    .then_some(e)
}

/// Where the installed models are, for engines a script asks for by name.
pub fn speech_source() -> voxd::voice::speech::EngineSource {
    voxd::voice::speech::EngineSource {
        speech_dir: voxd::voice::speech::default_speech_dir(),
        openai: None,
    }
}

/// Engines with the scripted STT and espeak.
pub fn scripted_engines(stt: Arc<ScriptedStt>) -> Option<Engines> {
    let tts = espeak()?;
    Some(Engines::with(stt, Arc::new(tts), speech_source()))
}

/// The app with live voice, the scripted STT hearing nothing in particular and espeak; None
/// (the test skips, saying why) without espeak-ng.
pub async fn start_scripted(backend: Backend) -> Option<VoiceApp> {
    start_voice(backend, scripted_engines(ScriptedStt::new(&[]))?).await
}

pub struct VoiceApp {
    pub app: TestApp,
    pub gateway: Arc<Gateway>,
    pub addr: SocketAddr,
    pub recordings: tempfile::TempDir,
}

/// The app with live voice (the sim dispatcher's brain and tools, the system clock), served on
/// 127.0.0.1.
pub async fn start_voice(backend: Backend, engines: Engines) -> Option<VoiceApp> {
    use voxd::{
        carrier::sim::{SimCarrier, SimDelays},
        clock::SystemClock,
        conversation::{
            brain::rules::RulesBrain,
            tools::{RecordingSms, Tools},
        },
        dispatcher::{Dispatcher, DispatcherSettings},
    };
    let mut app = TestApp::start(backend).await?;
    let recordings = tempfile::tempdir().unwrap();
    let dispatcher = Dispatcher::new(
        app.db.clone(),
        Arc::new(SystemClock),
        Arc::new(SimCarrier {
            delays: SimDelays::default(),
        }),
        Arc::new(RulesBrain),
        Arc::new(Tools::new(true, Arc::new(RecordingSms::default()))),
        DispatcherSettings::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gateway = Arc::new(Gateway::new(
        app.db.clone(),
        dispatcher,
        GatewaySettings {
            domain: "sip.voxd.test".into(),
            secret: super::WEB_SECRET.to_vec(),
            media: MediaSettings {
                connect_timeout: Duration::from_secs(5),
                ..MediaSettings::default()
            },
            recordings: Some(recordings.path().to_owned()),
            public_url: format!("http://{addr}"),
            media_timeout: Duration::from_secs(3),
        },
        engines,
    ));
    let settings = voxd::api::ApiSettings {
        requests_per_second: 100_000,
        key_cache_ttl: Duration::ZERO,
        unauthenticated_per_second: 100_000,
        allow_private_network: true,
        web_calls: voxd::api::WebCallSettings {
            secret: super::WEB_SECRET.to_vec(),
            ..Default::default()
        },
        ..voxd::api::ApiSettings::default()
    };
    app.router = voxd::api::router(voxd::api::AppState::new(app.db.clone(), settings).with_voice(gateway.clone()));
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    Some(VoiceApp {
        app,
        gateway,
        addr,
        recordings,
    })
}

/// The test script and a contact; (script id, contact id).
pub async fn script_and_contact(app: &TestApp) -> (String, String) {
    let script_id = appointment_script(app, serde_json::json!({})).await;
    let c = app
        .post(
            "/api/v1/create-contact",
            &serde_json::json!({"phone_number": "0429069971", "first_name": "Ava"}),
        )
        .await;
    (script_id, c.ok(201)["contact_id"].as_str().unwrap().to_owned())
}

/// The voice tests' script stored for the team, with `settings` merged into its own; its id.
pub async fn appointment_script(app: &TestApp, settings: serde_json::Value) -> String {
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/voice/appointment.yaml")).unwrap();
    let script = voxd::conversation::script::Script::from_yaml_or_json(&yaml).unwrap();
    let mut body = serde_json::to_value(script).unwrap();
    for (k, v) in settings.as_object().unwrap() {
        body["settings"][k] = v.clone();
    }
    let s = app.post("/api/v1/scripts", &body).await;
    s.ok(201)["script_id"].as_str().unwrap().to_owned()
}

/// The transfer tests' script (tests/voice/transfer.yaml): a line, then `transfer_call` to
/// `custom.sam`, with an apology on the failure path.
pub async fn transfer_script(app: &TestApp) -> String {
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/voice/transfer.yaml")).unwrap();
    let script = voxd::conversation::script::Script::from_yaml_or_json(&yaml).unwrap();
    let s = app
        .post("/api/v1/scripts", &serde_json::to_value(script).unwrap())
        .await;
    s.ok(201)["script_id"].as_str().unwrap().to_owned()
}

/// The callee's voice: Piper, which a recogniser understands (Whisper misreads espeak-ng's robot
/// voice a third of the time), when installed.
pub fn piper() -> Option<Arc<dyn TextToSpeech>> {
    let p = voxd::voice::speech::load_piper(&voxd::voice::speech::default_speech_dir());
    have(
        &format!("the Piper voice: {}", p.as_ref().err().cloned().unwrap_or_default()),
        p.is_ok(),
    )
    .then(|| p.unwrap())
}

/// Speech of `lines`, each starting at its second, over `total` seconds of audio at `rate`;
/// spoken by Piper when installed, else espeak-ng.
pub async fn callee_audio(lines: &[(f64, &str)], total: f64, rate: u32) -> Vec<i16> {
    let voice: Arc<dyn TextToSpeech> = match voxd::voice::speech::load_piper(&voxd::voice::speech::default_speech_dir())
    {
        Ok(p) => p,
        Err(_) => Arc::new(Espeak::find().expect("espeak-ng")),
    };
    let mut out = vec![0i16; (total * f64::from(rate)) as usize];
    for (at, text) in lines {
        let line = voice.synthesize(text).await.unwrap();
        let line = audio::to_i16(&audio::resample(&audio::to_f32(&line), audio::RATE, rate));
        let start = (at * f64::from(rate)) as usize;
        for (i, s) in line.iter().enumerate() {
            if let Some(o) = out.get_mut(start + i) {
                *o = *s;
            }
        }
    }
    out
}

/// Word error rate of `hypothesis` against `reference` (lower-cased, punctuation dropped).
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let words = |s: &str| -> Vec<String> {
        s.to_lowercase()
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (r, h) = (words(reference), words(hypothesis));
    let mut d: Vec<Vec<usize>> = (0..=r.len()).map(|i| vec![i; h.len() + 1]).collect();
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=r.len() {
        for j in 1..=h.len() {
            let sub = d[i - 1][j - 1] + usize::from(r[i - 1] != h[j - 1]);
            d[i][j] = sub.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
        }
    }
    d[r.len()][h.len()] as f64 / r.len().max(1) as f64
}

/// RMS of each channel of a FLAC recording (left = callee, right = assistant) and its seconds.
pub fn recording_levels(flac: &[u8]) -> (f64, f64, f64) {
    let mut reader = claxon::FlacReader::new(std::io::Cursor::new(flac)).expect("a FLAC file");
    let info = reader.streaminfo();
    assert_eq!(info.channels, 2);
    let (mut sums, mut n) = ([0f64; 2], 0usize);
    for (i, s) in reader.samples().enumerate() {
        let s = f64::from(s.unwrap()) / 32768.0;
        sums[i % 2] += s * s;
        n += 1;
    }
    let per = (n / 2).max(1) as f64;
    (
        (sums[0] / per).sqrt(),
        (sums[1] / per).sqrt(),
        per / f64::from(info.sample_rate),
    )
}

/// A softphone in Rust: SIP over WebSocket to voxd, str0m as the full-ICE offerer with PCMU.
pub struct RustPhone {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    pub call_id: String,
    cseq: u32,
    rtc: Option<(Rtc, UdpSocket, Mid)>,
    /// What the phone heard (line rate).
    pub heard: Vec<i16>,
    /// Transcript lines voxd sent in INFOs.
    pub transcript: Vec<(String, String)>,
    pub got_bye: bool,
}

/// What an INVITE came to.
#[derive(Debug)]
pub enum Invited {
    Answered,
    Refused(u16, String),
}

impl RustPhone {
    pub async fn connect(addr: SocketAddr) -> RustPhone {
        let mut req = format!("ws://{addr}/sip").into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
        let (ws, resp) = tokio_tungstenite::connect_async(req).await.expect("ws connects");
        assert_eq!(resp.headers()["sec-websocket-protocol"], "sip");
        RustPhone {
            ws,
            call_id: format!("{}@rust.invalid", uuid::Uuid::new_v4().simple()),
            cseq: 0,
            rtc: None,
            heard: Vec::new(),
            transcript: Vec::new(),
            got_bye: false,
        }
    }

    pub async fn send(&mut self, m: &Message) {
        self.ws.send(WsMessage::Text(m.to_string().into())).await.unwrap();
    }

    /// The next SIP message from voxd (within 10 s).
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .ok()??;
            match next.ok()? {
                WsMessage::Text(t) => return Message::parse(t.as_str()).ok(),
                WsMessage::Close(_) => return None,
                _ => {}
            }
        }
    }

    fn request(&mut self, method: &str, uri: &str) -> Message {
        self.cseq += 1;
        Message::request(method, uri)
            .with(
                "Via",
                format!(
                    "SIP/2.0/WSS rust.invalid;branch=z9hG4bK{}",
                    uuid::Uuid::new_v4().simple()
                ),
            )
            .with("Max-Forwards", "70")
            .with("From", "<sip:web@sip.voxd.test>;tag=rustphone")
            .with("To", format!("<{uri}>"))
            .with("Call-ID", self.call_id.clone())
            .with("CSeq", format!("{} {method}", self.cseq))
            .with("Contact", "<sip:web@rust.invalid;transport=ws>")
    }

    /// INVITEs `uri` with a fresh offer; answers a 401 with `username`/`password` once.
    pub async fn invite(&mut self, uri: &str, username: &str, password: &str) -> Invited {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_pcmu(true, false)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(socket.local_addr().unwrap(), "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let offer = offer.to_sdp_string();
        let mut auth: Option<String> = None;
        for _ in 0..2 {
            let mut m = self.request("INVITE", uri).with_body("application/sdp", offer.clone());
            if let Some(a) = &auth {
                m = m.with("Authorization", a.clone());
            }
            self.send(&m).await;
            loop {
                let Some(r) = self.recv().await else {
                    return Invited::Refused(0, "connection closed".into());
                };
                match r.code() {
                    Some(100) => continue,
                    Some(401) if auth.is_none() => {
                        let challenge = r.header("WWW-Authenticate").unwrap().to_owned();
                        auth = Some(digest_answer(&challenge, username, password, "INVITE", uri));
                        break;
                    }
                    Some(200) => {
                        let answer = SdpAnswer::from_sdp_string(&r.body).expect("an SDP answer");
                        rtc.sdp_api().accept_answer(pending, answer).unwrap();
                        let ack = self.request("ACK", uri);
                        self.send(&ack).await;
                        self.rtc = Some((rtc, socket, mid));
                        return Invited::Answered;
                    }
                    Some(code) => {
                        let reason = match &r.start {
                            sip::StartLine::Response { reason, .. } => reason.clone(),
                            _ => String::new(),
                        };
                        return Invited::Refused(code, reason);
                    }
                    None => continue,
                }
            }
        }
        Invited::Refused(401, "challenged twice".into())
    }

    /// Plays `audio` (line rate) in real time and records what comes back, until voxd sends BYE,
    /// `hang_up_after` passes (then this side sends BYE), or `limit` passes.
    pub async fn talk(&mut self, audio: &[i16], hang_up_after: Option<Duration>, limit: Duration) {
        let (mut rtc, socket, mid) = self.rtc.take().expect("an answered call");
        let local = socket.local_addr().unwrap();
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let (mut sent, mut connected) = (0usize, false);
        let mut buf = vec![0u8; 2048];
        loop {
            let wake = loop {
                match rtc.poll_output().unwrap() {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        let _ = socket.send_to(&t.contents, t.destination).await;
                    }
                    Output::Event(Event::Connected) => connected = true,
                    Output::Event(Event::MediaData(d)) => {
                        if d.params.spec().codec == Codec::PCMU {
                            self.heard.extend(d.data.iter().map(|&b| audio::ulaw_decode(b)));
                        }
                    }
                    Output::Event(_) => {}
                }
            };
            if started.elapsed() > limit || self.got_bye {
                break;
            }
            if hang_up_after.is_some_and(|h| started.elapsed() > h) {
                let bye = self.request("BYE", "sip:voxd@sip.voxd.test");
                self.send(&bye).await;
                break;
            }
            let wake = wake.min(Instant::now() + Duration::from_millis(50));
            tokio::select! {
                r = socket.recv_from(&mut buf) => {
                    let (n, source) = r.unwrap();
                    if let Ok(contents) = buf[..n].try_into() {
                        let _ = rtc.handle_input(Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: local, contents }));
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    let _ = rtc.handle_input(Input::Timeout(Instant::now()));
                }
                _ = tick.tick(), if connected => {
                    let frame: Vec<u8> = (0..audio::FRAME).map(|i| audio::ulaw_encode(audio.get(sent + i).copied().unwrap_or(0))).collect();
                    let pt = rtc.writer(mid).and_then(|w| w.payload_params().find(|p| p.spec().codec == Codec::PCMU).map(|p| p.pt()));
                    if let (Some(pt), Some(w)) = (pt, rtc.writer(mid)) {
                        let _ = w.write(pt, Instant::now(), MediaTime::new(sent as u64, Frequency::EIGHT_KHZ), frame);
                    }
                    sent += audio::FRAME;
                }
                m = self.ws.next() => {
                    let Some(Ok(WsMessage::Text(t))) = m else { break };
                    let Ok(m) = Message::parse(t.as_str()) else { continue };
                    match m.method() {
                        Some("BYE") => {
                            self.got_bye = true;
                            let ok = m.response(200, "OK", None);
                            self.send(&ok).await;
                        }
                        Some("INFO") => {
                            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&m.body) {
                                self.transcript.push((v["role"].as_str().unwrap_or_default().into(), v["text"].as_str().unwrap_or_default().into()));
                            }
                            let ok = m.response(200, "OK", None);
                            self.send(&ok).await;
                        }
                        _ => {}
                    }
                }
            }
        }
        self.rtc = None;
    }

    /// Sends a DTMF key as SIP INFO (JsSIP's default).
    pub async fn dtmf(&mut self, key: char) {
        let m = self
            .request("INFO", "sip:voxd@sip.voxd.test")
            .with_body("application/dtmf-relay", format!("Signal={key}\r\nDuration=160\r\n"));
        self.send(&m).await;
    }

    /// Closes the WebSocket without a BYE (a tab closed).
    pub async fn vanish(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// What a softphone computes for a digest challenge.
pub fn digest_answer(challenge: &str, username: &str, password: &str, method: &str, uri: &str) -> String {
    use md5::{Digest, Md5};
    let md5 = |s: String| hex::encode(Md5::digest(s.as_bytes()));
    let auth = voxd::voice::digest::Authorization::parse(challenge).unwrap();
    let (realm, nonce) = (auth.get("realm").unwrap(), auth.get("nonce").unwrap());
    let ha1 = md5(format!("{username}:{realm}:{password}"));
    let ha2 = md5(format!("{method}:{uri}"));
    let response = md5(format!("{ha1}:{nonce}:00000001:rustcnonce:auth:{ha2}"));
    format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", \
         algorithm=MD5, qop=auth, nc=00000001, cnonce=\"rustcnonce\""
    )
}
