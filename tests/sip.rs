//! Calls over a SIP trunk, against real SIP peers from Debian on loopback: baresip answers a
//! scheduled outbound call, plays the callee's lines (synthesised here) and records what voxd
//! says; sipp plays far ends that are busy, unavailable or never answer.

mod common;

use std::{path::Path, process::Stdio, sync::Arc, time::Duration};

use common::{
    voice::{callee_audio, espeak, have, scripted_engines, whisper_engines, ScriptedStt},
    Backend, TestApp, CALLER_ID,
};
use serde_json::json;
use voxd::{
    clock::SystemClock,
    conversation::{
        brain::rules::RulesBrain,
        tools::{RecordingSms, Tools},
    },
    dispatcher::{Dispatcher, DispatcherSettings},
    domain::{new_id, now, sealed::SealKey},
    store::trunks::Trunk,
    voice::{
        speech::Engines,
        trunk::Endpoint,
        trunk_carrier::{TrunkCarrier, TrunkSettings},
        webrtc::MediaSettings,
    },
};

fn tool(name: &str, package: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    have(&format!("{name} (apt install {package})"), found)
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The team's caller id (added the first time) on a new trunk at 127.0.0.1:`port`, and the voice
/// tests' script.
async fn trunk_and_script(app: &TestApp, name: &str, port: u16) -> String {
    let script = common::voice::appointment_script(app, json!({})).await;
    if app.db.trunk_for_number(app.team_id, CALLER_ID).await.unwrap().is_none()
        && app.db.list_trunks(app.team_id).await.unwrap().is_empty()
    {
        common::number_and_script(app, app.team_id, &app.key, CALLER_ID).await;
    }
    let trunk = Trunk {
        id: new_id(),
        team_id: app.team_id,
        name: name.into(),
        host: "127.0.0.1".into(),
        port: i32::from(port),
        transport: "udp".into(),
        username: None,
        password: None,
        created_at: now(),
    };
    app.db.add_trunk(&trunk).await.unwrap();
    put_caller_id_on(app, Some(trunk.id)).await;
    script
}

/// A dispatcher whose carrier places trunk calls from a SIP endpoint of its own.
/// The tests that run Whisper on live calls take turns: on a 2-core machine two of them at once
/// make each other's turns late enough to miss the callee's lines.
static SPEECH: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Puts the team's caller id on a trunk (or off any) through the API.
async fn put_caller_id_on(app: &TestApp, trunk: Option<uuid::Uuid>) {
    let number = app.db.team_number(app.team_id, CALLER_ID).await.unwrap().unwrap();
    let res = app
        .call(
            axum::http::Method::PATCH,
            &format!("/api/v1/phone-numbers/{}", number.id),
            Some(&json!({ "trunk_id": trunk.map(|t| t.to_string()) })),
            &[],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        res.body["phone_number"]["trunk_id"],
        json!(trunk.map(|t| t.to_string()))
    );
}

async fn dispatcher(app: &TestApp, engines: Engines, recordings: Option<&Path>, ring: Duration) -> Dispatcher {
    dispatcher_with(app, engines, recordings, ring, None).await
}

/// The same, with answering-machine detection.
async fn dispatcher_with(
    app: &TestApp,
    engines: Engines,
    recordings: Option<&Path>,
    ring: Duration,
    machine_detection: Option<voxd::voice::amd::Settings>,
) -> Dispatcher {
    let endpoint = Endpoint::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let carrier = TrunkCarrier {
        db: app.db.clone(),
        endpoint: Some(endpoint),
        engines: Some(engines),
        seal: Arc::new(SealKey::new(&[3; 32]).unwrap()),
        settings: TrunkSettings {
            media: MediaSettings {
                ports: 42000..=42999,
                ..MediaSettings::default()
            },
            media_timeout: Duration::from_secs(5),
            ring_timeout: ring,
            recordings: recordings.map(Path::to_owned),
            public_url: "http://127.0.0.1:8080".into(),
            machine_detection,
            probe: None,
        },
        fallback: Arc::new(voxd::carrier::sim::SimCarrier {
            delays: Default::default(),
        }),
    };
    Dispatcher::new(
        app.db.clone(),
        Arc::new(SystemClock),
        Arc::new(carrier),
        Arc::new(RulesBrain),
        Arc::new(Tools::new(true, Arc::new(RecordingSms::default()))),
        DispatcherSettings {
            calls_per_second_per_number: 0,
            ..Default::default()
        },
    )
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

/// 16-bit mono PCM as a WAV file.
fn write_wav(path: &Path, samples: &[i16], rate: u32) {
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    let data = (samples.len() * 2) as u32;
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, out).unwrap();
}

/// baresip as the far end, the phone of `number`: answers at once, plays `wav` (and hangs up when it ends), records
/// what it hears into `dir/rec`.
fn baresip(dir: &Path, port: u16, number: &str, wav: &Path) -> tokio::process::Child {
    std::fs::create_dir_all(dir.join("rec")).unwrap();
    let config = format!(
        "poll_method poll\nsip_listen 127.0.0.1:{port}\naudio_player aufile,{rec}/ignored.wav\n\
         audio_source aufile,{wav}\naudio_alert aufile,{rec}/alert.wav\naudio_srate 8000\naudio_channels 1\n\
         rtp_ports 41000-41999\nrtcp_mux no\njitter_buffer_delay 5-10\nnet_interface 127.0.0.1\n\
         module_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\nmodule aufile.so\nmodule sndfile.so\n\
         module_app account.so\nmodule_app menu.so\nsnd_path {rec}\n",
        rec = dir.join("rec").display(),
        wav = wav.display()
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(
        dir.join("accounts"),
        // The account is the number dialled: baresip answers 404 to any other user.
        format!("<sip:{number}@127.0.0.1:{port}>;regint=0;answermode=auto;audio_codecs=PCMU\n"),
    )
    .unwrap();
    tokio::process::Command::new("baresip")
        .args(["-4", "-f"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start baresip")
}

/// A scheduled call over the trunk to baresip: the script runs to its end on the callee's
/// words, and what baresip recorded is the assistant speaking.
async fn an_outbound_call_over_a_trunk_reaches_baresip(backend: Backend) {
    let _turn = SPEECH.lock().await;
    if !tool("baresip", "baresip-core") {
        return;
    }
    if whisper_engines().is_none() {
        return;
    }
    // Piper speaks for the assistant: Whisper hears its voice through G.711 far better than
    // espeak-ng's.
    let engines = Engines::choose("whisper", "piper", common::voice::speech_source());
    assert!(engines.tts.is_some(), "{:?}", engines.tts_missing);
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let port = free_udp_port();
    let script = trunk_and_script(&app, "baresip", port).await;
    let dir = tempfile::tempdir().unwrap();
    // The callee answers each question well after the assistant asks it (a synthesised callee
    // follows the script by timing; baresip hangs up when the audio ends).
    let lines = [
        (8.0, "Yes, now is fine."),
        (20.0, "Tuesday suits me."),
        (32.0, "No, that's all. Thanks."),
    ];
    // Twelve seconds apart: on a CPU without AVX-512 Whisper tiny takes 3 to 7 s per utterance.
    let audio = callee_audio(&lines, 44.0, 8000).await;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("voxd=debug")
        .with_test_writer()
        .try_init();
    let wav = dir.path().join("callee.wav");
    write_wav(&wav, &audio, 8000);
    let _far = baresip(dir.path(), port, "+61412345671", &wav);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let recordings = tempfile::tempdir().unwrap();
    let stt = engines.stt.clone().unwrap();
    let d = dispatcher(&app, engines, Some(recordings.path()), Duration::from_secs(20)).await;
    let call_id = place(&app, &script, "+61412345671").await;
    let ran = tokio::time::timeout(Duration::from_secs(90), d.run_once()).await;
    assert_eq!(ran.expect("the call ended within 90 s").unwrap(), 1);

    let call = app.get(&format!("/api/v1/get-call/{call_id}")).await;
    let events = app.get(&format!("/api/v1/calls/{call_id}/events")).await;
    let result = app.get(&format!("/api/v1/get-call-result/{call_id}")).await;
    let r = &result.body["call"];
    assert_eq!(call.body["call"]["progress"], "ended", "{}", events.body);
    assert_eq!(r["simulated"], false, "{r}");
    let progress: Vec<&str> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["progress"].as_str().unwrap())
        .collect();
    assert!(
        progress.contains(&"ringing") && progress.contains(&"in_progress"),
        "{progress:?}: {}",
        events.body
    );
    let heard: String = r["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["role"] == "user")
        .map(|t| t["text"].as_str().unwrap().to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    // Whisper tiny on 8 kHz audio misreads some words ("Tuesday" came out "2-day"): these it keeps.
    assert!(
        heard.contains("fine") && heard.contains("that's all"),
        "the callee's words reached the transcript: {r}"
    );
    assert_eq!(r["status"], "completed", "{r}");

    // What baresip heard: the assistant, recognisably.
    // sndfile writes what baresip decoded from voxd (`-dec.wav`) and what it sent (`-enc.wav`).
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path().join("rec"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    let recorded = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("baresip recorded what it heard: {files:?}"));
    let (samples, rate) = voxd::voice::speech::read_wav(&std::fs::read(recorded).unwrap()).unwrap();
    // The greeting, which plays from the answer on (one utterance, as the recogniser expects).
    let samples = &samples[..samples.len().min(rate as usize * 5)];
    let samples = voxd::voice::audio::resample(&voxd::voice::audio::to_f32(samples), rate, 16_000);
    let said = stt.transcribe(samples, &[]).await.unwrap().to_lowercase();
    assert!(
        said.contains("clinic") || said.contains("good time"),
        "baresip heard: {said}"
    );
    app.cleanup().await;
}

/// A sipp far end running `scenario` on `port` for one call.
fn sipp(scenario: &str, port: u16) -> tokio::process::Child {
    let path = format!("{}/tests/sip/{scenario}", env!("CARGO_MANIFEST_DIR"));
    tokio::process::Command::new("sipp")
        .args([
            "-sf",
            &path,
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            "1",
            "-timeout",
            "40s",
            "-nostdin",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start sipp")
}

/// Busy, unavailable and unanswered far ends end the call with the contract's statuses, the SIP
/// reason in its events, and the retry policy deciding what happens next.
async fn refusals_over_a_trunk_map_to_call_statuses(backend: Backend) {
    if !tool("sipp", "sip-tester") || espeak().is_none() {
        return;
    }
    let Some(engines) = scripted_engines(ScriptedStt::new(&[])) else {
        return;
    };
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    for (scenario, status, reason) in [
        ("uas_busy.xml", "User rejected", "486 Busy Here"),
        ("uas_unavailable.xml", "User unavailable", "480 Temporarily Unavailable"),
        ("uas_no_answer.xml", "rang-out", "no answer"),
    ] {
        let port = free_udp_port();
        let script = trunk_and_script(&app, scenario, port).await;
        let mut far = sipp(scenario, port);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let d = dispatcher(&app, engines.clone(), None, Duration::from_secs(3)).await;
        let call_id = place(&app, &script, "+61412345672").await;
        let ran = tokio::time::timeout(Duration::from_secs(30), d.run_once()).await;
        assert_eq!(ran.expect("the attempt ended within 30 s").unwrap(), 1);
        let call = app.get(&format!("/api/v1/get-call/{call_id}")).await;
        let events = app.get(&format!("/api/v1/calls/{call_id}/events")).await;
        let last = events.body["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["status"], status, "{scenario}: {}", events.body);
        assert_eq!(last["detail"]["end_reason"], reason, "{scenario}: {}", events.body);
        assert_eq!(
            call.body["call"]["progress"], "ended",
            "{scenario}: no retry policy, no retry"
        );
        // sipp saw its scenario through (our ACK, our CANCEL).
        let done = tokio::time::timeout(Duration::from_secs(10), far.wait()).await;
        assert!(
            done.expect("sipp finished").unwrap().success(),
            "{scenario}: sipp's scenario failed"
        );
    }
    app.cleanup().await;
}

/// A trunk that challenges voxd: the second INVITE carries a digest made with the trunk's
/// (sealed) credentials, and the trunk accepts it.
async fn digest_challenges_are_answered_with_the_trunks_credentials(backend: Backend) {
    if !tool("sipp", "sip-tester") || espeak().is_none() {
        return;
    }
    let Some(engines) = scripted_engines(ScriptedStt::new(&[])) else {
        return;
    };
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let port = free_udp_port();
    let script = trunk_and_script(&app, "plain", port).await;
    // The same trunk, now with credentials (sealed with the key the test dispatcher opens them with).
    let t = app.db.trunk_by_name(app.team_id, "plain").await.unwrap().unwrap();
    let id = new_id();
    let sealed = SealKey::new(&[3; 32]).unwrap().seal("trunk-pass-1", id.as_bytes());
    let with_auth = Trunk {
        id,
        name: "authenticated".into(),
        username: Some("voxd-user".into()),
        password: Some(sealed),
        ..t
    };
    app.db.add_trunk(&with_auth).await.unwrap();
    put_caller_id_on(&app, Some(with_auth.id)).await;
    let mut far = sipp("uas_auth.xml", port);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = dispatcher(&app, engines, None, Duration::from_secs(5)).await;
    let call_id = place(&app, &script, "+61412345673").await;
    let ran = tokio::time::timeout(Duration::from_secs(30), d.run_once()).await;
    assert_eq!(ran.expect("the attempt ended").unwrap(), 1);
    let events = app.get(&format!("/api/v1/calls/{call_id}/events")).await;
    let last = events.body["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["status"], "User rejected",
        "the trunk took the digest: {}",
        events.body
    );
    let done = tokio::time::timeout(Duration::from_secs(10), far.wait()).await;
    assert!(done.unwrap().unwrap().success());
    app.cleanup().await;
}

/// The G.711 law of a far end's audio.
#[derive(Clone, Copy)]
enum Law {
    Mu,
    A,
}

/// G.711 µ-law as a WAV file (format 7), what sipp's `rtp_stream` plays.
fn write_ulaw_wav(path: &Path, samples: &[i16]) {
    write_g711_wav(path, samples, Law::Mu);
}

/// G.711 as a WAV file: format 7 (µ-law) or 6 (A-law).
fn write_g711_wav(path: &Path, samples: &[i16], law: Law) {
    let (format, encode): (u16, fn(i16) -> u8) = match law {
        Law::Mu => (7, voxd::voice::audio::ulaw_encode),
        Law::A => (6, voxd::voice::audio::alaw_encode),
    };
    let data = samples.len() as u32;
    let mut out = Vec::with_capacity(58 + samples.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(50 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&18u32.to_le_bytes());
    out.extend_from_slice(&format.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(b"fact");
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&data.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    out.extend(samples.iter().map(|&s| encode(s)));
    std::fs::write(path, out).unwrap();
}

/// sipp as a far end that answers every call on `port` (tests/sip/uas_answer.xml), playing `wav`
/// once in `law` (A-law: its answer picks PCMA from voxd's offer); ends after `calls` calls if given.
fn sipp_answering(dir: &Path, port: u16, wav: &Path, law: Law, calls: Option<u32>) -> tokio::process::Child {
    sipp_far_end("uas_answer.xml", &[], dir, port, wav, law, calls)
}

/// sipp running an answering `scenario` from tests/sip, with `fills` (placeholder, text) written
/// in besides the WAV; as [`sipp_answering`] otherwise.
fn sipp_far_end(
    scenario: &str,
    fills: &[(&str, &str)],
    dir: &Path,
    port: u16,
    wav: &Path,
    law: Law,
    calls: Option<u32>,
) -> tokio::process::Child {
    let mut template = std::fs::read_to_string(format!("{}/tests/sip/{scenario}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for (placeholder, text) in fills {
        assert!(template.contains(placeholder), "{scenario} has no {placeholder}");
        template = template.replace(placeholder, text);
    }
    let text = match law {
        Law::Mu => template.replace("WAVFILE,1,0", &format!("{},1,0", wav.display())),
        Law::A => template
            .replace("RTP/AVP 0", "RTP/AVP 8")
            .replace("rtpmap:0 PCMU/8000", "rtpmap:8 PCMA/8000")
            .replace("WAVFILE,1,0", &format!("{},1,8", wav.display())),
    };
    assert!(
        text.contains(&wav.display().to_string()),
        "{scenario} no longer has `WAVFILE,1,0`"
    );
    let scenario = dir.join(scenario);
    std::fs::write(&scenario, text).unwrap();
    let mut sipp = tokio::process::Command::new("sipp");
    sipp.args([
        "-sf",
        &scenario.display().to_string(),
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ])
    .args(["-mp", &free_udp_port().to_string(), "-timeout", "90s", "-nostdin"]);
    if let Some(n) = calls {
        sipp.args(["-m", &n.to_string()]);
    }
    sipp.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start sipp")
}

/// sipp as a caller over the trunk, running `scenario` (from tests/sip, WAVFILE replaced) once
/// against voxd's endpoint at `voxd`, dialling `number`.
fn sipp_caller(
    scenario: &str,
    dir: &Path,
    wav: &Path,
    voxd: std::net::SocketAddr,
    number: &str,
) -> tokio::process::Child {
    let template = std::fs::read_to_string(format!("{}/tests/sip/{scenario}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let path = dir.join(scenario);
    std::fs::write(&path, template.replace("WAVFILE", &wav.display().to_string())).unwrap();
    tokio::process::Command::new("sipp")
        .arg(voxd.to_string())
        .args([
            "-sf",
            &path.display().to_string(),
            "-s",
            number,
            "-i",
            "127.0.0.1",
            "-p",
            &free_udp_port().to_string(),
        ])
        .args([
            "-m",
            "1",
            "-timeout",
            "60s",
            "-nostdin",
            "-mp",
            &free_udp_port().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start sipp")
}

/// A call to the team's number over its trunk is answered by the number's inbound script and
/// shows in the API as an inbound call with its transcript; an unknown number gets 404, and the
/// team's number called from an address other than its trunk's gets 403.
async fn inbound_calls_over_a_trunk_reach_the_numbers_script(backend: Backend) {
    let _turn = SPEECH.lock().await;
    if !tool("sipp", "sip-tester") {
        return;
    }
    if whisper_engines().is_none() {
        return;
    }
    let engines = Engines::choose("whisper", "piper", common::voice::speech_source());
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let receptionist = app
        .post("/api/v1/scripts", &common::example_script("receptionist"))
        .await;
    let receptionist = receptionist.ok(201)["script_id"].as_str().unwrap().to_owned();
    // The number, on a trunk at 127.0.0.1 (where sipp calls from).
    trunk_and_script(&app, "pbx", 5060).await;
    let r = app
        .call(
            axum::http::Method::PATCH,
            &format!(
                "/api/v1/phone-numbers/{}",
                app.db.numbers_by_value(CALLER_ID).await.unwrap()[0].id
            ),
            Some(&json!({"inbound_script_id": receptionist})),
            &[],
        )
        .await;
    r.ok(200);
    let endpoint = Endpoint::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let d = dispatcher(&app, engines.clone(), None, Duration::from_secs(20)).await;
    voxd::voice::trunk_carrier::InboundCalls {
        db: app.db.clone(),
        endpoint: endpoint.clone(),
        engines,
        settings: TrunkSettings {
            media: MediaSettings {
                ports: 43000..=43999,
                ..MediaSettings::default()
            },
            media_timeout: Duration::from_secs(10),
            ring_timeout: Duration::from_secs(20),
            recordings: None,
            public_url: "http://127.0.0.1:8080".into(),
            machine_detection: None,
            probe: None,
        },
        dispatcher: d,
    }
    .start();

    let dir = tempfile::tempdir().unwrap();
    // After the greeting (about 6 s), and 12 s apart for a slow Whisper.
    let lines = [(8.0, "Hi, I'd like to sell my house."), (20.0, "That's all, goodbye.")];
    let wav = dir.path().join("caller.wav");
    write_ulaw_wav(&wav, &callee_audio(&lines, 28.0, 8000).await);
    let mut caller = sipp_caller("uac_call.xml", dir.path(), &wav, endpoint.local, CALLER_ID);
    let done = tokio::time::timeout(Duration::from_secs(70), caller.wait()).await;
    assert!(
        done.expect("sipp's call ended within 70 s").unwrap().success(),
        "sipp's call failed"
    );

    // The call as the API shows it (the dispatcher may still be writing its result).
    let mut call = serde_json::Value::Null;
    for _ in 0..100 {
        let list = app.get("/api/v1/calls?type=inbound").await;
        call = list.body["calls"][0].clone();
        if call["progress"] == "ended" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(call["progress"], "ended", "{call}");
    assert_eq!(call["to_number"], CALLER_ID);
    assert_eq!(call["script_id"], receptionist.as_str());
    let id = call["id"].as_str().unwrap();
    let result = app.get(&format!("/api/v1/get-call-result/{id}")).await;
    let r = &result.body["call"];
    let heard: String = r["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["role"] == "user")
        .map(|t| t["text"].as_str().unwrap().to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(heard.contains("sell"), "the caller's words reached the transcript: {r}");
    let said = r["transcript"][0]["text"].as_str().unwrap_or_default();
    assert!(said.contains("Harbour Realty"), "the inbound script answered: {r}");
    let contact = app
        .get(&format!("/api/v1/contacts/{}", call["contact_id"].as_str().unwrap()))
        .await;
    assert_eq!(
        contact.body["contact"]["phone_number"], "+61412345670",
        "the caller is the contact"
    );

    // A number no team has; the team's number from elsewhere than its trunk.
    let mut unknown = sipp_caller("uac_unknown.xml", dir.path(), &wav, endpoint.local, "+61299990000");
    let done = tokio::time::timeout(Duration::from_secs(20), unknown.wait()).await;
    assert!(
        done.unwrap().unwrap().success(),
        "an unknown number is not answered 404"
    );
    let t = app.db.trunk_by_name(app.team_id, "pbx").await.unwrap().unwrap();
    put_caller_id_on(&app, None).await;
    let elsewhere = Trunk {
        id: new_id(),
        name: "elsewhere".into(),
        host: "127.0.0.2".into(),
        ..t
    };
    app.db.add_trunk(&elsewhere).await.unwrap();
    put_caller_id_on(&app, Some(elsewhere.id)).await;
    let mut forbidden = sipp_caller("uac_forbidden.xml", dir.path(), &wav, endpoint.local, CALLER_ID);
    let done = tokio::time::timeout(Duration::from_secs(20), forbidden.wait()).await;
    assert!(
        done.unwrap().unwrap().success(),
        "a call from elsewhere than the trunk is not answered 403"
    );
    let inbound = app.get("/api/v1/calls?type=inbound").await;
    assert_eq!(
        inbound.body["calls"].as_array().unwrap().len(),
        1,
        "refused calls leave no call behind"
    );
    app.cleanup().await;
}

/// A real `voxd serve` killed with SIGKILL while a call over its trunk is answered: after a
/// restart the lost attempt is settled once (`dropout`, "worker lost"), the retry policy dials
/// again (never while the first attempt is open), and the second attempt, whose far end falls
/// silent, ends on the media timeout. The trunk and the number are set up through the API.
async fn killed_mid_call_over_a_trunk_ends_once(backend: Backend) {
    let _turn = SPEECH.lock().await;
    if !tool("sipp", "sip-tester") || whisper_engines().is_none() {
        return;
    }
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let script = common::voice::appointment_script(&app, json!({})).await;
    common::number_and_script(&app, app.team_id, &app.key, CALLER_ID).await;
    let far_port = free_udp_port();
    let r = app
        .post(
            "/api/v1/trunks",
            &json!({"name": "pbx", "uri": format!("sip:127.0.0.1:{far_port}")}),
        )
        .await;
    let trunk: uuid::Uuid = r.ok(201)["trunk"]["id"].as_str().unwrap().parse().unwrap();
    put_caller_id_on(&app, Some(trunk)).await;

    // The far end answers every INVITE and plays 4 s of low noise, then nothing.
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("noise.wav");
    let noise: Vec<i16> = (0..32_000).map(|i| ((i * 7919 % 61) as i16 - 30) * 4).collect();
    write_ulaw_wav(&wav, &noise);
    let mut far = sipp_answering(dir.path(), far_port, &wav, Law::Mu, None);

    let r = app
        .post(
            "/api/v1/create-phone-call",
            &json!({"from_number": CALLER_ID, "script_id": script, "contact": {"phone_number": "+61412345673"},
                    "retry_policy": {"max_attempts": 2, "backoff_seconds": 0}}),
        )
        .await;
    let call_id = r.ok(201)["call_id"].as_str().unwrap().to_owned();
    let config = dir.path().join("voxd.toml");
    std::fs::write(
        &config,
        format!(
            "dispatch_lease_seconds = 2\nsip_listen = \"127.0.0.1:{}\"\nmedia_ports = \"45100-45199\"\n\
             media_timeout_seconds = 3\ntts = \"espeak\"\nrecordings = false\n",
            free_udp_port()
        ),
    )
    .unwrap();
    let progress = |events: &serde_json::Value| -> Vec<(String, String, String)> {
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
                (
                    text(&e["progress"]),
                    text(&e["status"]),
                    text(&e["detail"]["end_reason"]),
                )
            })
            .collect()
    };
    let events = || async { progress(&app.get(&format!("/api/v1/calls/{call_id}/events")).await.body) };

    let mut first = common::spawn_serve(&app, &config);
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    while !events().await.iter().any(|(p, _, _)| p == "in_progress") {
        assert!(
            std::time::Instant::now() < deadline,
            "the call was never answered: {:?}",
            events().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::process::Command::new("kill")
        .args(["-9", &first.id().to_string()])
        .status()
        .unwrap();
    first.wait().unwrap();
    assert!(
        !events().await.iter().any(|(p, _, _)| p == "ended"),
        "the kill came mid-call"
    );

    let mut second = common::spawn_serve(&app, &config);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !events().await.iter().any(|(p, _, _)| p == "ended") {
        assert!(
            std::time::Instant::now() < deadline,
            "the call never ended after the restart: {:?}",
            events().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();
    let _ = far.kill().await;

    let timeline = events().await;
    let dials = timeline.iter().filter(|(p, _, _)| p == "dialing").count();
    assert_eq!(dials, 2, "the lost attempt was retried once: {timeline:?}");
    assert_eq!(
        timeline.iter().filter(|(p, _, _)| p == "ended").count(),
        1,
        "{timeline:?}"
    );
    let lost = timeline
        .iter()
        .position(|(_, _, reason)| reason == "worker lost")
        .unwrap_or_else(|| panic!("the lost attempt is settled with its reason: {timeline:?}"));
    assert_eq!(timeline[lost].1, "dropout", "{timeline:?}");
    let second_dial = timeline.iter().rposition(|(p, _, _)| p == "dialing").unwrap();
    assert!(
        lost < second_dial,
        "dialled again only after the lost attempt settled: {timeline:?}"
    );
    let call = app.get(&format!("/api/v1/get-call/{call_id}")).await;
    assert_eq!(call.body["call"]["attempts"], 2, "{}", call.body);
    app.cleanup().await;
}

/// An answering machine picks up an outbound call over the trunk, answering in A-law: its
/// greeting and beep (sipp plays them) are heard as a machine's, the script's voicemail message
/// is left after the beep, and the call ends `voicemail`.
async fn an_answering_machine_gets_the_voicemail_message(backend: Backend) {
    if !tool("sipp", "sip-tester") || espeak().is_none() {
        return;
    }
    let Some(engines) = scripted_engines(ScriptedStt::new(&[])) else {
        return;
    };
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/voice/appointment.yaml")).unwrap();
    let mut body = serde_json::to_value(voxd::conversation::script::Script::from_yaml_or_json(&yaml).unwrap()).unwrap();
    body["voicemail_message"] =
        json!("Hi {{contact.first_name}}, it's the clinic about your appointment. Please call us back.");
    let script = app.post("/api/v1/scripts", &body).await.ok(201)["script_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let far_port = free_udp_port();
    let _ = trunk_and_script(&app, "machine", far_port).await;

    let dir = tempfile::tempdir().unwrap();
    let greeting = callee_audio(
        &[(
            0.4,
            "Hi, you've reached Ava. I can't take your call, please leave a message after the tone.",
        )],
        6.0,
        8000,
    )
    .await;
    let speech_end = greeting.iter().rposition(|s| s.unsigned_abs() > 500).unwrap_or(0) + 2400;
    let mut audio = greeting[..speech_end.min(greeting.len())].to_vec();
    audio.extend(
        (0..3200).map(|i| (9000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / 8000.0).sin()) as i16),
    );
    audio.extend(std::iter::repeat_n(0i16, 8000 * 8));
    let wav = dir.path().join("greeting.wav");
    write_g711_wav(&wav, &audio, Law::A);
    let mut far = sipp_answering(dir.path(), far_port, &wav, Law::A, Some(1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = dispatcher_with(
        &app,
        engines,
        None,
        Duration::from_secs(10),
        Some(voxd::voice::amd::Settings::default()),
    )
    .await;
    let call_id = place(&app, &script, "+61412345674").await;
    let ran = tokio::time::timeout(Duration::from_secs(60), d.run_once()).await;
    assert_eq!(ran.expect("the call ended within 60 s").unwrap(), 1);
    let result = app.get(&format!("/api/v1/get-call-result/{call_id}")).await;
    let r = &result.body["call"];
    assert_eq!(r["status"], "voicemail", "{r}");
    assert_eq!(r["end_reason"], "voicemail", "{r}");
    let said = r["transcript"][0]["text"].as_str().unwrap_or_default();
    assert!(said.starts_with("Hi Ava, it's the clinic"), "{r}");
    // voxd hung up after its message: sipp got the BYE and finished its scenario.
    let done = tokio::time::timeout(Duration::from_secs(20), far.wait()).await;
    assert!(
        done.expect("sipp finished").unwrap().success(),
        "sipp's scenario failed"
    );
    app.cleanup().await;
}

/// A `transfer_call` step over a trunk: once its line has played, voxd sends a blind REFER
/// naming the number at the trunk (sipp checks `Refer-To`), takes the NOTIFY's 200 and hangs
/// up; the call ends `transferred`, its line in the transcript.
async fn a_transfer_over_a_trunk_is_a_refer(backend: Backend) {
    if !tool("sipp", "sip-tester") || espeak().is_none() {
        return;
    }
    let Some(engines) = scripted_engines(ScriptedStt::new(&[])) else {
        return;
    };
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let port = free_udp_port();
    trunk_and_script(&app, "pbx", port).await;
    let script = common::voice::transfer_script(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("callee.wav");
    write_ulaw_wav(&wav, &vec![0i16; 8000 * 15]);
    let target = r"sip:\+61291110000@127\.0\.0\.1";
    let mut far = sipp_far_end(
        "uas_refer.xml",
        &[("TARGET", target)],
        dir.path(),
        port,
        &wav,
        Law::Mu,
        Some(1),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = dispatcher(&app, engines, None, Duration::from_secs(20)).await;
    let call_id = place(&app, &script, "+61412345679").await;
    let ran = tokio::time::timeout(Duration::from_secs(60), d.run_once()).await;
    assert_eq!(ran.expect("the call ended within 60 s").unwrap(), 1);
    let events = app.get(&format!("/api/v1/calls/{call_id}/events")).await;
    let last = events.body["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], "completed", "{}", events.body);
    assert_eq!(last["detail"]["end_reason"], "transferred", "{}", events.body);
    let result = app.get(&format!("/api/v1/get-call-result/{call_id}")).await;
    let said = result.body["call"]["transcript"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(said.contains("putting you through"), "{}", result.body);
    let done = tokio::time::timeout(Duration::from_secs(15), far.wait()).await;
    assert!(
        done.expect("sipp finished").unwrap().success(),
        "sipp's scenario failed: no REFER to the number, or no BYE after the NOTIFY"
    );
    app.cleanup().await;
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transfer_over_a_trunk_is_a_refer() {
        super::a_transfer_over_a_trunk_is_a_refer(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn digest_challenges_are_answered_with_the_trunks_credentials() {
        super::digest_challenges_are_answered_with_the_trunks_credentials(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inbound_calls_over_a_trunk_reach_the_numbers_script() {
        super::inbound_calls_over_a_trunk_reach_the_numbers_script(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_outbound_call_over_a_trunk_reaches_baresip() {
        super::an_outbound_call_over_a_trunk_reaches_baresip(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals_over_a_trunk_map_to_call_statuses() {
        super::refusals_over_a_trunk_map_to_call_statuses(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_mid_call_over_a_trunk_ends_once() {
        super::killed_mid_call_over_a_trunk_ends_once(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answering_machine_gets_the_voicemail_message() {
        super::an_answering_machine_gets_the_voicemail_message(Backend::Sqlite).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inbound_calls_over_a_trunk_reach_the_numbers_script() {
        super::inbound_calls_over_a_trunk_reach_the_numbers_script(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals_over_a_trunk_map_to_call_statuses() {
        super::refusals_over_a_trunk_map_to_call_statuses(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_mid_call_over_a_trunk_ends_once() {
        super::killed_mid_call_over_a_trunk_ends_once(Backend::Postgres).await;
    }
}
