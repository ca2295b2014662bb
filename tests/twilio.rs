//! The `twilio` carrier against a fake Twilio written here: it speaks Twilio's REST API (create a
//! call, end it), posts signed status callbacks, reads the TwiML voxd gives it and opens the Media
//! Stream it names (signed), then plays the callee's lines (synthesised here) as µ-law `media`
//! frames, records what voxd sends back, echoes `mark`s and counts `clear`s; and it places
//! inbound calls through the voice webhook, as Twilio does for a team's number.

mod common;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
    Json, Router,
};
use base64::{engine::general_purpose::STANDARD, Engine};
use common::{voice::callee_audio, voice::whisper_engines, Backend, TestApp, CALLER_ID};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
use voxd::{
    api::{router, ApiSettings, AppState},
    clock::SystemClock,
    conversation::{
        brain::rules::RulesBrain,
        tools::{RecordingSms, Tools},
    },
    dispatcher::{Dispatcher, DispatcherSettings},
    domain::signature::twilio_sign,
    voice::{
        audio,
        speech::Engines,
        twilio::{Twilio, TwilioCarrier, TwilioSettings},
    },
};

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";

/// What the fake does with the next call voxd creates.
#[derive(Clone)]
enum Answer {
    Busy,
    RingOut,
    /// Picks up and speaks this audio (8 kHz), then hangs up if voxd has not.
    Speak(Arc<Vec<i16>>),
    /// Refuses to create the call, as for a number Twilio cannot dial.
    Refuse,
}

#[derive(Default)]
struct Fake {
    voxd: Mutex<String>,
    answer: Mutex<Option<Answer>>,
    /// The form of each call created, as sent.
    created: Mutex<Vec<Vec<(String, String)>>>,
    /// (call SID, Status) of each end request.
    ended: Mutex<Vec<(String, String)>>,
    /// What voxd sent over media streams, decoded.
    heard: Mutex<Vec<i16>>,
    marks: Mutex<Vec<String>>,
    clears: Mutex<u32>,
    /// Whether voxd ended the call it was on.
    hung_up: Mutex<bool>,
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Posts a form to voxd signed as Twilio would (or with `signature` instead).
async fn post_signed(url: &str, params: &[(String, String)], signature: Option<&str>) -> (u16, String) {
    let sig = signature.map_or_else(|| twilio_sign(AUTH_TOKEN, url, params), str::to_owned);
    let res = reqwest::Client::new()
        .post(url)
        .header("X-Twilio-Signature", sig)
        .form(params)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn create_call(
    State(fake): State<Arc<Fake>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, Json<Value>) {
    let expected = format!("Basic {}", STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}")));
    if account != ACCOUNT_SID || headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&expected) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
        );
    }
    let f = form(&body);
    fake.created.lock().unwrap().push(f.clone());
    let answer = fake.answer.lock().unwrap().take().expect("the test said how to answer");
    if matches!(answer, Answer::Refuse) {
        let message = format!(
            "The 'To' number {} is not a valid phone number.",
            field(&f, "To").unwrap()
        );
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": 21211, "message": message, "status": 400})),
        );
    }
    let sid = format!("CA{}", uuid::Uuid::new_v4().simple());
    tokio::spawn(run_outbound(fake.clone(), sid.clone(), f, answer));
    (StatusCode::CREATED, Json(json!({"sid": sid, "status": "queued"})))
}

async fn end_call(
    State(fake): State<Arc<Fake>>,
    Path((_account, call)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Json<Value> {
    let f = form(&body);
    let sid = call.trim_end_matches(".json").to_owned();
    // A hang-up sets `Status`; a transfer replaces the call's TwiML.
    let status = field(&f, "Status")
        .or(field(&f, "Twiml"))
        .unwrap_or_default()
        .to_owned();
    fake.ended.lock().unwrap().push((sid.clone(), status.clone()));
    *fake.hung_up.lock().unwrap() = true;
    Json(json!({"sid": sid, "status": status}))
}

/// Twilio's part in an outbound call: callbacks, then (answered) the stream.
async fn run_outbound(fake: Arc<Fake>, sid: String, f: Vec<(String, String)>, answer: Answer) {
    let callback = field(&f, "StatusCallback").unwrap().to_owned();
    let status = |s: &str, extra: &[(&str, &str)]| {
        let mut p = pairs(&[
            ("AccountSid", ACCOUNT_SID),
            ("CallSid", &sid),
            ("CallStatus", s),
            ("From", field(&f, "From").unwrap()),
            ("To", field(&f, "To").unwrap()),
            ("Direction", "outbound-api"),
        ]);
        p.extend(pairs(extra));
        p
    };
    for s in ["initiated", "ringing"] {
        let (code, _) = post_signed(&callback, &status(s, &[]), None).await;
        assert_eq!(code, 204, "status callback {s}");
    }
    match answer {
        Answer::Busy => {
            post_signed(&callback, &status("busy", &[("SipResponseCode", "486")]), None).await;
        }
        Answer::RingOut => {
            post_signed(&callback, &status("no-answer", &[]), None).await;
        }
        Answer::Refuse => unreachable!("refused calls are never created"),
        Answer::Speak(audio) => {
            post_signed(&callback, &status("in-progress", &[]), None).await;
            let twiml = field(&f, "Twiml").unwrap().to_owned();
            stream(&fake, &twiml, &sid, &audio).await;
            post_signed(&callback, &status("completed", &[("CallDuration", "30")]), None).await;
        }
    }
}

/// The stream URL and the `call_id` parameter of `<Connect><Stream>` TwiML.
fn stream_of(twiml: &str) -> (String, String) {
    let attr = |after: &str, name: &str| {
        let at = twiml.find(after).unwrap_or_else(|| panic!("no {after} in {twiml}"));
        let rest = &twiml[at..];
        let start = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        let end = rest[start..].find('"').unwrap();
        rest[start..start + end].replace("&amp;", "&")
    };
    assert!(twiml.contains("<Connect>"), "{twiml}");
    (attr("<Stream", "url"), attr("<Parameter name=\"call_id\"", "value"))
}

/// Opens the stream (signed over its URL), plays `audio` paced as a phone line would, and
/// records voxd's side, until voxd ends the call or the audio (and a second more) is over.
async fn stream(fake: &Fake, twiml: &str, call_sid: &str, audio: &[i16]) {
    let (url, call_id) = stream_of(twiml);
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "X-Twilio-Signature",
        twilio_sign(AUTH_TOKEN, &url, &[]).parse().unwrap(),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("voxd took the stream");
    let (mut tx, mut rx) = ws.split();
    let stream_sid = format!("MZ{}", uuid::Uuid::new_v4().simple());
    tx.send(Message::text(
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string(),
    ))
    .await
    .unwrap();
    let start = json!({
        "event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
        "start": {
            "accountSid": ACCOUNT_SID, "callSid": call_sid, "streamSid": stream_sid,
            "tracks": ["inbound"], "customParameters": {"call_id": call_id},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
    });
    tx.send(Message::text(start.to_string())).await.unwrap();
    let frames: Vec<&[i16]> = audio.chunks(160).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut sent = 0usize;
    // The line stays open a little after the callee's last word, then they hang up.
    let total = frames.len() + 50;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if *fake.hung_up.lock().unwrap() {
                    break;
                }
                if sent >= total {
                    let stop = json!({"event": "stop", "sequenceNumber": "9", "streamSid": stream_sid,
                        "stop": {"accountSid": ACCOUNT_SID, "callSid": call_sid}});
                    let _ = tx.send(Message::text(stop.to_string())).await;
                    break;
                }
                let frame: Vec<u8> = frames.get(sent).map_or(vec![0xff; 160], |f| f.iter().map(|&s| audio::ulaw_encode(s)).collect());
                let media = json!({"event": "media", "sequenceNumber": (sent + 2).to_string(), "streamSid": stream_sid,
                    "media": {"track": "inbound", "chunk": (sent + 1).to_string(), "timestamp": (sent * 20).to_string(), "payload": STANDARD.encode(frame)}});
                if tx.send(Message::text(media.to_string())).await.is_err() {
                    break;
                }
                sent += 1;
            }
            m = rx.next() => match m {
                Some(Ok(Message::Text(text))) => {
                    let v: Value = serde_json::from_str(text.as_str()).unwrap();
                    assert_eq!(v["streamSid"], stream_sid.as_str(), "{v}");
                    match v["event"].as_str() {
                        Some("media") => {
                            let bytes = STANDARD.decode(v["media"]["payload"].as_str().unwrap()).unwrap();
                            fake.heard.lock().unwrap().extend(bytes.iter().map(|&b| audio::ulaw_decode(b)));
                        }
                        // Played at once: this fake has no buffer to drain.
                        Some("mark") => {
                            let name = v["mark"]["name"].as_str().unwrap().to_owned();
                            fake.marks.lock().unwrap().push(name.clone());
                            let echo = json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}});
                            let _ = tx.send(Message::text(echo.to_string())).await;
                        }
                        Some("clear") => *fake.clears.lock().unwrap() += 1,
                        other => panic!("voxd sent an unknown event {other:?}: {v}"),
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}

struct Harness {
    app: TestApp,
    fake: Arc<Fake>,
    voxd: String,
    twilio: Arc<Twilio>,
    dispatcher: Dispatcher,
}

/// The app served on loopback with Twilio in it, the fake Twilio, the team's account and a
/// Twilio number set through the API, and a dispatcher whose carrier is Twilio.
async fn start(backend: Backend, engines: Option<Engines>) -> Option<Harness> {
    let app = TestApp::start(backend).await?;
    let fake = Arc::new(Fake::default());
    let fake_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_addr = fake_listener.local_addr().unwrap();
    let fake_app = Router::new()
        .route("/2010-04-01/Accounts/{account}/Calls.json", post(create_call))
        .route("/2010-04-01/Accounts/{account}/Calls/{call}", post(end_call))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(fake_listener, fake_app).await.unwrap() });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let voxd = format!("http://{addr}");
    *fake.voxd.lock().unwrap() = voxd.clone();
    let twilio = Twilio::new(
        app.db.clone(),
        engines,
        TwilioSettings {
            api_base: format!("http://{fake_addr}"),
            public_url: voxd.clone(),
            media_timeout: Duration::from_secs(10),
            ring_timeout: Duration::from_secs(20),
            recordings: None,
        },
    );
    let settings = ApiSettings {
        requests_per_second: 100_000,
        key_cache_ttl: Duration::ZERO,
        unauthenticated_per_second: 100_000,
        allow_private_network: true,
        ..ApiSettings::default()
    };
    let served = router(AppState::new(app.db.clone(), settings).with_twilio(twilio.clone()));
    tokio::spawn(async move {
        axum::serve(listener, served.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap()
    });

    let r = app
        .call(
            axum::http::Method::PUT,
            "/api/v1/twilio",
            Some(&json!({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN})),
            &[],
        )
        .await;
    assert_eq!(r.body["twilio"]["account_sid"], ACCOUNT_SID, "{}", r.body);
    assert!(!r.raw.windows(AUTH_TOKEN.len()).any(|w| w == AUTH_TOKEN.as_bytes()));
    let r = app
        .post(
            "/api/v1/phone-numbers",
            &json!({"phone_number": CALLER_ID, "twilio": true}),
        )
        .await;
    assert_eq!(r.ok(201)["phone_number"]["twilio"], true);
    let carrier = TwilioCarrier {
        twilio: twilio.clone(),
        fallback: Arc::new(voxd::carrier::sim::SimCarrier {
            delays: Default::default(),
        }),
    };
    let dispatcher = Dispatcher::new(
        app.db.clone(),
        Arc::new(SystemClock),
        Arc::new(carrier),
        Arc::new(RulesBrain),
        Arc::new(Tools::new(true, Arc::new(RecordingSms::default()))),
        DispatcherSettings {
            calls_per_second_per_number: 0,
            ..Default::default()
        },
    );
    twilio.set_dispatcher(dispatcher.clone());
    Some(Harness {
        app,
        fake,
        voxd,
        twilio,
        dispatcher,
    })
}

async fn place(app: &TestApp, script: &str, to: &str) -> String {
    let r = app
        .post(
            "/api/v1/create-phone-call",
            &json!({"from_number": CALLER_ID, "script_id": script, "contact": {"phone_number": to, "first_name": "Ava"}}),
        )
        .await;
    r.ok(201)["call_id"].as_str().unwrap().to_owned()
}

async fn result(app: &TestApp, call_id: &str) -> Value {
    app.get(&format!("/api/v1/get-call-result/{call_id}")).await.body["call"].clone()
}

/// Busy, no answer and a refused number end the call with their statuses and Twilio's reasons,
/// with no audio at all; the account is checked and kept secret through the API.
async fn refusals_map_to_call_statuses(backend: Backend) {
    let Some(h) = start(backend, None).await else { return };
    let script = common::voice::appointment_script(&h.app, json!({})).await;
    let cases = [
        (Answer::Busy, "+61412345671", "User rejected", "busy (SIP 486)"),
        (Answer::RingOut, "+61412345672", "rang-out", "no answer"),
        (
            Answer::Refuse,
            "+61412345673",
            "failed",
            "not a valid phone number (error 21211)",
        ),
    ];
    let mut busy_call = String::new();
    for (answer, to, status, why) in cases {
        *h.fake.answer.lock().unwrap() = Some(answer);
        let call_id = place(&h.app, &script, to).await;
        let ran = tokio::time::timeout(Duration::from_secs(30), h.dispatcher.run_once()).await;
        assert_eq!(ran.expect("the attempt ended within 30 s").unwrap(), 1);
        let events = h.app.get(&format!("/api/v1/calls/{call_id}/events")).await;
        let last = events.body["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["status"], status, "{to}: {}", events.body);
        let reason = last["detail"]["end_reason"].as_str().unwrap_or_default();
        assert!(reason.contains(why), "{to}: {}", events.body);
        let call = h.app.get(&format!("/api/v1/get-call/{call_id}")).await;
        assert_eq!(
            call.body["call"]["progress"], "ended",
            "{to}: no retry policy, no retry"
        );
        assert_eq!(result(&h.app, &call_id).await["simulated"], false);
        if busy_call.is_empty() {
            busy_call = call_id;
        }
    }
    // What voxd asked of Twilio: the team's number calling, TwiML streaming to voxd, callbacks.
    let created = h.fake.created.lock().unwrap().clone();
    assert_eq!(created.len(), 3);
    let first = &created[0];
    assert_eq!(field(first, "From"), Some(CALLER_ID));
    assert_eq!(field(first, "To"), Some("+61412345671"));
    assert_eq!(field(first, "Timeout"), Some("20"));
    let (stream_url, _) = stream_of(field(first, "Twiml").unwrap());
    assert!(
        stream_url.starts_with(&h.voxd.replace("http://", "ws://")),
        "{stream_url}"
    );
    let events: Vec<&str> = first
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(events, ["initiated", "ringing", "answered", "completed"]);
    let busy_events = h.app.get(&format!("/api/v1/calls/{busy_call}/events")).await;
    let progress: Vec<&str> = busy_events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["progress"].as_str().unwrap())
        .collect();
    assert!(progress.contains(&"ringing"), "ringing was reported: {progress:?}");

    // The account as the API shows it: no token, and bad input refused without a change.
    let got = h.app.get("/api/v1/twilio").await;
    assert_eq!(got.ok(200)["twilio"]["has_auth_token"], true);
    assert!(got.body["twilio"].get("auth_token").is_none());
    for (body, field_name) in [
        (json!({"account_sid": "PN123", "auth_token": AUTH_TOKEN}), "account_sid"),
        (json!({"account_sid": ACCOUNT_SID, "auth_token": "short"}), "auth_token"),
    ] {
        let r = h
            .app
            .call(axum::http::Method::PUT, "/api/v1/twilio", Some(&body), &[])
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["field"], field_name, "{}", r.body);
    }
    for body in [
        json!({"account_sid": ACCOUNT_SID}),
        json!({"account_sid": 5, "auth_token": AUTH_TOKEN}),
        json!({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "extra": 1}),
    ] {
        let r = h
            .app
            .call(axum::http::Method::PUT, "/api/v1/twilio", Some(&body), &[])
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    let after = h.app.get("/api/v1/twilio").await;
    assert_eq!(
        after.body["twilio"]["updated_at"], got.body["twilio"]["updated_at"],
        "nothing changed"
    );
    // Another team cannot take the account, nor see it.
    let (_, other_key) = h.app.other_team("globex").await;
    let put = axum::http::Request::builder()
        .method(axum::http::Method::PUT)
        .uri("/api/v1/twilio")
        .header("authorization", format!("Bearer {other_key}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}).to_string(),
        ))
        .unwrap();
    let r = h.app.send(put).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(h.app.get_as(&other_key, "/api/v1/twilio").await.status, 404);
    // A number is on a trunk or on Twilio, never both.
    let number = h.app.get("/api/v1/phone-numbers").await.body["phone_numbers"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trunk = h
        .app
        .post("/api/v1/trunks", &json!({"name": "pbx", "uri": "sip:127.0.0.1:5099"}))
        .await;
    let trunk_id = trunk.ok(201)["trunk"]["id"].as_str().unwrap().to_owned();
    let r = h
        .app
        .call(
            axum::http::Method::PATCH,
            &format!("/api/v1/phone-numbers/{number}"),
            Some(&json!({"trunk_id": trunk_id})),
            &[],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = h
        .app
        .call(
            axum::http::Method::PATCH,
            &format!("/api/v1/phone-numbers/{number}"),
            Some(&json!({"twilio": "yes"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // A number not on Twilio stays on the simulated network, and its results say so.
    h.app
        .post("/api/v1/phone-numbers", &json!({"phone_number": "+61291234599"}))
        .await
        .ok(201);
    let r = h
        .app
        .post(
            "/api/v1/create-phone-call",
            &json!({"from_number": "+61291234599", "script_id": script,
                    "contact": {"phone_number": "+61412345675"}, "metadata": {"sim_outcome": "busy"}}),
        )
        .await;
    let sim_call = r.ok(201)["call_id"].as_str().unwrap().to_owned();
    h.dispatcher.run_once().await.unwrap();
    assert_eq!(result(&h.app, &sim_call).await["simulated"], true);
    assert_eq!(h.fake.created.lock().unwrap().len(), 3, "nothing was sent to Twilio");
    // Without the account, the number's calls fail saying why.
    let r = h
        .app
        .call(axum::http::Method::DELETE, "/api/v1/twilio", None, &[])
        .await;
    r.ok(200);
    let call_id = place(&h.app, &script, "+61412345674").await;
    h.dispatcher.run_once().await.unwrap();
    let events = h.app.get(&format!("/api/v1/calls/{call_id}/events")).await;
    let last = events.body["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], "failed", "{}", events.body);
    let reason = last["detail"]["end_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no Twilio account"), "{}", events.body);
    assert_eq!(h.fake.created.lock().unwrap().len(), 3, "nothing was sent to Twilio");
    h.app.cleanup().await;
}

/// Requests that do not come from Twilio are refused and change nothing: an unsigned or
/// wrongly signed webhook, a stream without a waiting call, an unknown account; a call to a
/// number that is not the team's Twilio number is rejected in TwiML.
async fn requests_not_from_twilio_are_refused(backend: Backend) {
    let Some(h) = start(backend, None).await else { return };
    let voice_url = format!("{}/twilio/voice", h.voxd);
    let call = |to: &str, account: &str| {
        pairs(&[
            ("AccountSid", account),
            ("CallSid", "CA00000000000000000000000000000001"),
            ("From", "+61412345670"),
            ("To", to),
            ("Direction", "inbound"),
        ])
    };
    let before = h.app.count("calls").await;
    let (code, _) = post_signed(&voice_url, &call(CALLER_ID, ACCOUNT_SID), Some("bm90IGEgc2lnbmF0dXJl")).await;
    assert_eq!(code, 403);
    let (code, _) = post_signed(&voice_url, &call(CALLER_ID, ACCOUNT_SID), Some("")).await;
    assert_eq!(code, 403);
    let (code, _) = post_signed(&voice_url, &call(CALLER_ID, "AC99999999999999999999999999999999"), None).await;
    assert_eq!(code, 403, "an account no team has");
    let (code, _) = post_signed(&voice_url, &pairs(&[("To", CALLER_ID)]), None).await;
    assert_eq!(code, 400, "no AccountSid");
    // Signed over another URL (a replay to another endpoint).
    let elsewhere = twilio_sign(
        AUTH_TOKEN,
        "https://elsewhere.example/twilio/voice",
        &call(CALLER_ID, ACCOUNT_SID),
    );
    let (code, _) = post_signed(&voice_url, &call(CALLER_ID, ACCOUNT_SID), Some(&elsewhere)).await;
    assert_eq!(code, 403);
    // Signed, to a number that is not the team's (and to its number, which has no inbound script).
    for to in ["+61299990000", CALLER_ID] {
        let (code, twiml) = post_signed(&voice_url, &call(to, ACCOUNT_SID), None).await;
        assert_eq!(code, 200);
        assert!(twiml.contains("<Reject"), "{to}: {twiml}");
    }
    assert_eq!(h.app.count("calls").await, before, "refused calls leave no call behind");
    // Status callbacks and streams for calls that are not waiting.
    let unknown = uuid::Uuid::new_v4();
    let status_url = format!("{}/twilio/status/{unknown}", h.voxd);
    let (code, _) = post_signed(
        &status_url,
        &pairs(&[("AccountSid", ACCOUNT_SID), ("CallStatus", "ringing")]),
        None,
    )
    .await;
    assert_eq!(code, 404);
    let (code, _) = post_signed(&format!("{}/twilio/status/not-an-id", h.voxd), &[], None).await;
    assert_eq!(code, 404);
    let stream_url = format!("{}/twilio/stream/{unknown}", h.voxd.replace("http://", "ws://"));
    let mut request = stream_url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "X-Twilio-Signature",
        twilio_sign(AUTH_TOKEN, &stream_url, &[]).parse().unwrap(),
    );
    assert!(
        tokio_tungstenite::connect_async(request).await.is_err(),
        "no stream for a call not waiting"
    );
    drop(h.twilio);
    h.app.cleanup().await;
}

/// A `transfer_call` step on a Twilio call: once its line has played, the call's TwiML becomes a
/// `<Dial>` to the number (which ends the stream at Twilio), voxd does not hang the call up after
/// it, and the call ends `transferred`.
async fn a_transfer_redirects_the_call_to_a_dial(backend: Backend) {
    let Some(engines) = common::voice::scripted_engines(common::voice::ScriptedStt::new(&[])) else {
        return;
    };
    let Some(h) = start(backend, Some(engines)).await else {
        return;
    };
    let script = common::voice::transfer_script(&h.app).await;
    *h.fake.answer.lock().unwrap() = Some(Answer::Speak(Arc::new(vec![0; 8000 * 20])));
    let call_id = place(&h.app, &script, "+61412345679").await;
    let ran = tokio::time::timeout(Duration::from_secs(60), h.dispatcher.run_once()).await;
    assert_eq!(ran.expect("the call ended within 60 s").unwrap(), 1);
    let events = h.app.get(&format!("/api/v1/calls/{call_id}/events")).await;
    let last = events.body["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], "completed", "{}", events.body);
    assert_eq!(last["detail"]["end_reason"], "transferred", "{}", events.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ended = h.fake.ended.lock().unwrap().clone();
    assert_eq!(
        ended.len(),
        1,
        "one request, the transfer, and no hang-up after it: {ended:?}"
    );
    assert!(
        ended[0].1.contains("<Dial><Number>+61291110000</Number></Dial>"),
        "{ended:?}"
    );
    assert!(
        h.fake.heard.lock().unwrap().len() > 8000,
        "the line was streamed before the transfer"
    );
    h.app.cleanup().await;
}

fn heard_by_voxd(r: &Value) -> String {
    r["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["role"] == "user")
        .map(|t| t["text"].as_str().unwrap().to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Whisper tests take turns (two at once on 2 cores miss each other's lines).
static SPEECH: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A scheduled call through Twilio: answered, the script runs to its end on the callee's words,
/// what the fake heard is the assistant speaking, and voxd ends the call at Twilio after its
/// goodbye has played (a `mark`, then the REST hang-up).
async fn an_outbound_call_runs_over_a_media_stream(backend: Backend) {
    let _turn = SPEECH.lock().await;
    if whisper_engines().is_none() {
        return;
    }
    let engines = Engines::choose("whisper", "piper", common::voice::speech_source());
    let stt = engines.stt.clone().unwrap();
    let Some(h) = start(backend, Some(engines)).await else {
        return;
    };
    let script = common::voice::appointment_script(&h.app, json!({})).await;
    let lines = [
        (8.0, "Yes, now is fine."),
        (20.0, "Tuesday suits me."),
        (32.0, "No, that's all. Thanks."),
    ];
    *h.fake.answer.lock().unwrap() = Some(Answer::Speak(Arc::new(callee_audio(&lines, 44.0, 8000).await)));
    let call_id = place(&h.app, &script, "+61412345671").await;
    let ran = tokio::time::timeout(Duration::from_secs(90), h.dispatcher.run_once()).await;
    assert_eq!(ran.expect("the call ended within 90 s").unwrap(), 1);
    let r = result(&h.app, &call_id).await;
    let heard = heard_by_voxd(&r);
    assert!(
        heard.contains("fine") && heard.contains("that's all"),
        "the callee's words reached the transcript: {r}"
    );
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["simulated"], false, "{r}");
    // voxd hung up: after its last words played (the mark came back), through the REST API.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(*h.fake.marks.lock().unwrap(), ["hang-up"]);
    let ended = h.fake.ended.lock().unwrap().clone();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].1, "completed");
    // What the fake heard: the assistant's greeting, recognisably.
    let said: Vec<i16> = h.fake.heard.lock().unwrap().clone();
    assert!(
        said.len() > 8000 * 20,
        "voxd streamed audio the whole call: {} samples",
        said.len()
    );
    let greeting = audio::resample(&audio::to_f32(&said[..8000 * 5]), 8000, 16_000);
    let text = stt.transcribe(greeting, &[]).await.unwrap().to_lowercase();
    assert!(
        text.contains("clinic") || text.contains("good time"),
        "the fake heard: {text}"
    );
    h.app.cleanup().await;
}

/// A call to the team's Twilio number: the voice webhook answers TwiML streaming it to the
/// number's inbound script, and it shows in the API as an inbound call with its transcript;
/// the caller hangs up (`stop`).
async fn an_inbound_call_reaches_the_numbers_script(backend: Backend) {
    let _turn = SPEECH.lock().await;
    if whisper_engines().is_none() {
        return;
    }
    let engines = Engines::choose("whisper", "piper", common::voice::speech_source());
    let Some(h) = start(backend, Some(engines)).await else {
        return;
    };
    let receptionist = h
        .app
        .post("/api/v1/scripts", &common::example_script("receptionist"))
        .await;
    let receptionist = receptionist.ok(201)["script_id"].as_str().unwrap().to_owned();
    let number = h.app.get("/api/v1/phone-numbers").await.body["phone_numbers"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .app
        .call(
            axum::http::Method::PATCH,
            &format!("/api/v1/phone-numbers/{number}"),
            Some(&json!({"inbound_script_id": receptionist})),
            &[],
        )
        .await;
    r.ok(200);
    let call_sid = "CA00000000000000000000000000000002";
    let params = pairs(&[
        ("AccountSid", ACCOUNT_SID),
        ("CallSid", call_sid),
        ("From", "+61412345670"),
        ("To", CALLER_ID),
        ("Direction", "inbound"),
        ("CallStatus", "ringing"),
    ]);
    let (code, twiml) = post_signed(&format!("{}/twilio/voice", h.voxd), &params, None).await;
    assert_eq!(code, 200, "{twiml}");
    let lines = [(8.0, "Hi, I'd like to sell my house."), (20.0, "That's all, goodbye.")];
    let audio = callee_audio(&lines, 28.0, 8000).await;
    tokio::time::timeout(Duration::from_secs(70), stream(&h.fake, &twiml, call_sid, &audio))
        .await
        .expect("the call ended within 70 s");
    let mut call = Value::Null;
    for _ in 0..100 {
        call = h.app.get("/api/v1/calls?type=inbound").await.body["calls"][0].clone();
        if call["progress"] == "ended" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(call["progress"], "ended", "{call}");
    assert_eq!(call["to_number"], CALLER_ID);
    assert_eq!(call["script_id"], receptionist.as_str());
    let r = result(&h.app, call["id"].as_str().unwrap()).await;
    assert!(
        heard_by_voxd(&r).contains("sell"),
        "the caller's words reached the transcript: {r}"
    );
    assert!(
        r["transcript"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Harbour Realty"),
        "the inbound script answered: {r}"
    );
    let contact = h
        .app
        .get(&format!("/api/v1/contacts/{}", call["contact_id"].as_str().unwrap()))
        .await;
    assert_eq!(
        contact.body["contact"]["phone_number"], "+61412345670",
        "the caller is the contact"
    );
    h.app.cleanup().await;
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals_map_to_call_statuses() {
        super::refusals_map_to_call_statuses(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_not_from_twilio_are_refused() {
        super::requests_not_from_twilio_are_refused(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_outbound_call_runs_over_a_media_stream() {
        super::an_outbound_call_runs_over_a_media_stream(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_inbound_call_reaches_the_numbers_script() {
        super::an_inbound_call_reaches_the_numbers_script(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transfer_redirects_the_call_to_a_dial() {
        super::a_transfer_redirects_the_call_to_a_dial(Backend::Sqlite).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals_map_to_call_statuses() {
        super::refusals_map_to_call_statuses(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_not_from_twilio_are_refused() {
        super::requests_not_from_twilio_are_refused(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_outbound_call_runs_over_a_media_stream() {
        super::an_outbound_call_runs_over_a_media_stream(Backend::Postgres).await;
    }
}
