//! Telephony load: sipp places N concurrent inbound calls over a trunk on loopback, each playing
//! a callee who answers six questions ten seconds apart as RTP for about a minute, against voxd's
//! SIP endpoint and RTP media with the voice pipeline (Whisper, the TTS engine, the `rules`
//! brain). Per step: calls that came through whole (answered, every line heard, ended by the
//! script), p50/p95 turn latency (end of the callee's speech to the first frame of the reply),
//! split into end of turn, STT and TTS (p50), the p99 deviation of voxd's RTP send interval from
//! 20 ms, and CPU and memory per call. Steps stop at the first N where calls fail; the first N
//! whose p95 passes 1.5 s is named.
//!
//! Run: `apt-get install sip-tester`, `scripts/speech.sh install`, then
//! `cargo bench --features whisper --bench telephony`. `VOXD_BENCH_CALLS` (default `1,2,3,4,6`),
//! `VOXD_BENCH_TTS` (default `piper`).

mod support;

use std::{
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};
use support::{cpu_seconds, percentile, rss_mb};

use voxd::{
    carrier::sim::SimCarrier,
    clock::SystemClock,
    conversation::{
        brain::rules::RulesBrain,
        script::Script,
        tools::{RecordingSms, Tools},
    },
    dispatcher::{Dispatcher, DispatcherSettings},
    domain::{new_id, now},
    store::{numbers::PhoneNumber, teams::Team, trunks::Trunk, Db, DbOptions},
    voice::{
        audio, rtp,
        speech::{self, Engines, TextToSpeech},
        trunk::Endpoint,
        trunk_carrier::{InboundCalls, TrunkSettings},
        webrtc::MediaSettings,
    },
};

const NUMBER: &str = "+61291230000";
const LINES: [&str; 6] = [
    "Yes, that's right.",
    "Thursday works for me.",
    "No, thank you.",
    "About three hundred dollars.",
    "Maybe next week.",
    "I think so, goodbye.",
];
/// The first line after the greeting, then one every ten seconds.
const FIRST_AT: f64 = 6.0;
const SPACING: f64 = 10.0;

fn script() -> Script {
    let steps: Vec<String> = (1..=LINES.len())
        .map(|i| {
            let next = if i == LINES.len() { "end_flow: success".to_owned() } else { format!("next: q{}", i + 1) };
            let say = if i == 1 { "Hello, this is the clinic. Is that right?".to_owned() } else { format!("Question {i}, is that right?") };
            format!(
                "      - id: q{i}\n        type: voice\n        silence_tolerance: patient\n        script: \"Say: {say}\"\n        conditions:\n          - otherwise: true\n            {next}\n"
            )
        })
        .collect();
    let yaml = format!(
        "name: Telephony bench\ntype: inbound\nmain_flow_id: main\nsettings:\n  recording: false\n  max_duration_seconds: 120\nflows:\n  - id: main\n    steps:\n{}",
        steps.concat()
    );
    Script::from_yaml_or_json(&yaml).expect("bench script")
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The callee's side of one call as a µ-law WAV (what sipp's `rtp_stream` plays).
async fn callee_wav(path: &std::path::Path, voice: &dyn TextToSpeech) -> anyhow::Result<()> {
    let total = FIRST_AT + SPACING * LINES.len() as f64 + 4.0;
    let mut samples = vec![0i16; (total * 8000.0) as usize];
    for (i, line) in LINES.iter().enumerate() {
        let pcm = voice.synthesize(line).await?;
        let start = ((FIRST_AT + SPACING * i as f64) * 8000.0) as usize;
        for (j, s) in pcm.iter().enumerate() {
            if let Some(o) = samples.get_mut(start + j) {
                *o = *s;
            }
        }
    }
    let data = samples.len() as u32;
    let mut out = Vec::with_capacity(58 + samples.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(50 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&18u32.to_le_bytes());
    for v in [7u16, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    for v in [1u16, 8, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(b"fact");
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&data.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    out.extend(samples.iter().map(|&s| audio::ulaw_encode(s)));
    std::fs::write(path, out)?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sipp_found = std::process::Command::new("sipp").arg("-v").output().is_ok();
    anyhow::ensure!(sipp_found, "sipp is needed: apt-get install sip-tester");
    let tts_choice = std::env::var("VOXD_BENCH_TTS").unwrap_or_else(|_| "piper".into());
    let dir = speech::default_speech_dir();
    let engines = Engines::choose(
        "whisper",
        &tts_choice,
        speech::EngineSource {
            speech_dir: dir.clone(),
            openai: None,
        },
    );
    anyhow::ensure!(
        engines.stt.is_some() && engines.tts.is_some(),
        "{}",
        engines.unavailable().unwrap_or_default()
    );
    let steps: Vec<usize> = std::env::var("VOXD_BENCH_CALLS")
        .unwrap_or_else(|_| "1,2,3,4,6".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();

    let work = tempfile::tempdir()?;
    let db = Db::connect(&DbOptions {
        url: format!("sqlite://{}", work.path().join("bench.db").display()),
        max_connections: 8,
    })
    .await?;
    db.migrate().await?;
    let team = Team {
        id: new_id(),
        name: "bench".into(),
        region: "AU".into(),
        timezone: "Australia/Sydney".into(),
        requests_per_second: None,
        max_concurrent_calls: None,
        created_at: now(),
        recordings: false,
    };
    db.create_team(&team).await?;
    let stored = db.insert_script(team.id, new_id(), &script(), now()).await?;
    let trunk = Trunk {
        id: new_id(),
        team_id: team.id,
        name: "sipp".into(),
        host: "127.0.0.1".into(),
        port: 5060,
        transport: "udp".into(),
        username: None,
        password: None,
        created_at: now(),
    };
    db.add_trunk(&trunk).await?;
    db.add_number(&PhoneNumber {
        id: new_id(),
        team_id: team.id,
        number: NUMBER.into(),
        inbound_script_id: Some(stored.id),
        trunk_id: Some(trunk.id),
        twilio: false,
        created_at: now(),
    })
    .await?;

    let dispatcher = Dispatcher::new(
        db.clone(),
        Arc::new(SystemClock),
        Arc::new(SimCarrier {
            delays: Default::default(),
        }),
        Arc::new(RulesBrain),
        Arc::new(Tools::new(true, Arc::new(RecordingSms::default()))),
        DispatcherSettings::default(),
    );
    let endpoint = Endpoint::bind("127.0.0.1:0".parse()?)
        .await
        .map_err(anyhow::Error::msg)?;
    let probe = Arc::new(rtp::Probe::default());
    InboundCalls {
        db: db.clone(),
        endpoint: endpoint.clone(),
        engines: engines.clone(),
        settings: TrunkSettings {
            media: MediaSettings {
                ports: 45000..=45999,
                ..MediaSettings::default()
            },
            media_timeout: Duration::from_secs(20),
            ring_timeout: Duration::from_secs(20),
            recordings: None,
            public_url: "http://127.0.0.1:8080".into(),
            machine_detection: None,
            probe: Some(probe.clone()),
        },
        dispatcher,
    }
    .start();

    let wav = work.path().join("callee.wav");
    callee_wav(&wav, &*speech::load_piper(&dir).map_err(anyhow::Error::msg)?).await?;
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sip/uac_call.xml"))?;
    let scenario = work.path().join("uac_call.xml");
    // The callee stays on the line until voxd's goodbye (a minute and a half at most).
    std::fs::write(
        &scenario,
        template
            .replace("WAVFILE", &wav.display().to_string())
            .replace("timeout=\"40000\"", "timeout=\"90000\""),
    )?;

    println!(
        "telephony load: {} lines per call, {SPACING} s apart; STT {}, TTS {}; {} cores",
        LINES.len(),
        engines.stt.as_ref().map_or("-", |s| s.name()),
        engines.tts.as_ref().map_or("-", |t| t.name()),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("calls  through  turns  p50 ms  p95 ms  (vad/stt/tts p50 ms)  rtp gap p99 dev ms  cpu/call %  rss/call MB  wall s");
    let mut over: Option<usize> = None;
    let mut before_calls = 0usize;
    for n in steps {
        probe.timings.lock().unwrap().clear();
        probe.send_gaps_us.lock().unwrap().clear();
        let (cpu0, rss0, t0) = (cpu_seconds(), rss_mb(), Instant::now());
        let mut peak_rss = rss0;
        let mut sipp = tokio::process::Command::new("sipp")
            .arg(endpoint.local.to_string())
            .args(["-sf", &scenario.display().to_string(), "-s", NUMBER, "-i", "127.0.0.1"])
            .args(["-p", &free_udp_port().to_string(), "-mp", &free_udp_port().to_string()])
            .args([
                "-m",
                &n.to_string(),
                "-l",
                &n.to_string(),
                "-r",
                &n.to_string(),
                "-rp",
                "1000",
            ])
            .args(["-timeout", "150s", "-nostdin"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let status = loop {
            tokio::select! {
                s = sipp.wait() => break s?,
                _ = tokio::time::sleep(Duration::from_millis(500)) => peak_rss = peak_rss.max(rss_mb()),
            }
        };
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        // Results are written just after the BYE.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let filter = voxd::store::calls::CallFilter {
            page: voxd::store::Seek::oldest_first(10_000),
            ..Default::default()
        };
        let calls = db.list_calls(team.id, &filter).await?;
        let fresh = &calls[before_calls.min(calls.len())..];
        before_calls = calls.len();
        let mut through = 0;
        for c in fresh {
            let completed = db.call_events(c.id).await?.iter().any(|e| {
                e.progress == voxd::domain::call::Progress::Ended
                    && e.status == Some(voxd::domain::call::CallStatus::Completed)
            });
            if completed {
                through += 1;
            }
        }
        let recorded = probe.timings.lock().unwrap().clone();
        let timings: Vec<f64> = recorded.iter().map(|t| t.total_ms as f64).collect();
        let part = |f: fn(&voxd::voice::pipeline::TurnTiming) -> u64| {
            percentile(recorded.iter().map(|t| f(t) as f64).collect(), 0.5)
        };
        let split = format!(
            "{:.0}/{:.0}/{:.0}",
            part(|t| t.vad_ms),
            part(|t| t.stt_ms),
            part(|t| t.tts_ms)
        );
        let deviations: Vec<f64> = probe
            .send_gaps_us
            .lock()
            .unwrap()
            .iter()
            .map(|&g| (f64::from(g) / 1000.0 - 20.0).abs())
            .collect();
        let (p50, p95) = (percentile(timings.clone(), 0.5), percentile(timings.clone(), 0.95));
        println!(
            "{n:>5}  {through:>7}  {:>5}  {p50:>6.0}  {p95:>6.0}  {split:>20}  {:>18.2}  {:>10.1}  {:>11.1}  {wall:>6.1}",
            timings.len(),
            percentile(deviations, 0.99),
            100.0 * cpu / wall / n as f64,
            (peak_rss - rss0).max(0.0) / n as f64,
        );
        if p95 > 1500.0 && over.is_none() {
            over = Some(n);
        }
        if !status.success() || through < n {
            println!("stopped at {n} concurrent calls: {through} of {n} came through (sipp {status})");
            break;
        }
    }
    match over {
        Some(n) => println!("p95 turn latency passed 1.5 s at {n} concurrent call(s)"),
        None => println!("p95 turn latency stayed within 1.5 s"),
    }
    Ok(())
}
