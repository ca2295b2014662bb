//! Live voice: voice-to-voice turn latency (end of the callee's speech to the first frame of the
//! assistant's reply handed to the transport), split into end of turn, STT, brain and TTS, over
//! 36 turns; then capacity: concurrent calls on this machine until p95 turn latency passes 1.5 s,
//! with CPU and memory per live call.
//!
//! The calls are real: the pipeline (earshot, Whisper, the TTS engine), the session and the engine
//! with the `rules` brain; the callee is a driver speaking Piper lines in real time into the line
//! after each reply and listening for the next. Only the transport is left out (it moves frames).
//! The reference in the same run: Whisper alone on one of the callee's lines.
//!
//! Run: `scripts/speech.sh install`, then `cargo bench --features whisper --bench voice`.
//! `VOXD_BENCH_TTS` (default `espeak,piper`), `VOXD_BENCH_EAGERNESS` (default `keen,normal`),
//! `VOXD_BENCH_CALLS` (capacity steps, default `1,2,3,4,6,8`).

mod support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use support::{cpu_seconds, percentile, rss_mb};

use tokio::sync::mpsc;
use voxd::{
    carrier::Leg,
    conversation::{
        brain::rules::RulesBrain,
        context::CallContext,
        script::Script,
        tools::{RecordingSms, Tools},
    },
    session,
    voice::{
        audio,
        pipeline::{Inbound, Line, Options, Outbound, TurnTiming, VoiceLeg},
        speech::{self, SpeechToText, TextToSpeech},
    },
};

const TURNS: usize = 12;
const ANSWERS: [&str; 6] = [
    "Yes, that's right.",
    "Thursday works for me.",
    "No, thank you.",
    "About three hundred dollars.",
    "Maybe next week.",
    "I think so.",
];

fn script(eagerness: &str) -> Arc<Script> {
    let steps: Vec<String> = (1..=TURNS)
        .map(|i| {
            let next = if i == TURNS { "end_flow: success".to_owned() } else { format!("next: q{}", i + 1) };
            format!(
                "      - id: q{i}\n        type: voice\n        eagerness: {eagerness}\n        silence_tolerance: patient\n        script: \"Say: Question {i}, is that right?\"\n        conditions:\n          - otherwise: true\n            {next}\n"
            )
        })
        .collect();
    let yaml = format!(
        "name: Latency bench\ntype: outbound\nmain_flow_id: main\nsettings:\n  recording: false\nflows:\n  - id: main\n    steps:\n{}",
        steps.concat()
    );
    Arc::new(Script::from_yaml_or_json(&yaml).expect("bench script"))
}

/// One turn as the callee measured it, with the pipeline's split.
struct Turn {
    total_ms: f64,
}

/// Runs one call to its end; the callee's measured turns.
async fn call(
    script: Arc<Script>,
    stt: Arc<dyn SpeechToText>,
    tts: Arc<dyn TextToSpeech>,
    lines: Arc<Vec<Vec<i16>>>,
    timings: Arc<Mutex<Vec<TurnTiming>>>,
) -> Vec<Turn> {
    let (inbound_tx, inbound_rx) = mpsc::channel(512);
    let (out_tx, mut out_rx) = mpsc::channel(64);
    let mut leg = VoiceLeg::start(
        Line {
            inbound: inbound_rx,
            outbound: out_tx,
        },
        Options {
            call_id: uuid::Uuid::now_v7(),
            stt,
            tts,
            recordings: None,
            recording_url: None,
            media_timeout: Duration::from_secs(30),
            timings: Some(timings),
        },
    );
    let conversation = tokio::spawn(async move {
        let setup = session::Setup {
            script,
            variables: serde_json::json!({}),
            context: CallContext::default(),
            brain: Arc::new(RulesBrain),
            tools: Arc::new(Tools::new(true, Arc::new(RecordingSms::default()))),
        };
        session::converse(&mut leg, setup).await;
        leg.close().await;
    });
    // The callee: silence, and a line after each reply has finished (400 ms quiet, then 300 ms).
    let mut turns = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut speaking, mut quiet_ms, mut heard_reply) = (None::<(usize, usize)>, 0u64, false);
    let mut ended_line: Option<Instant> = None;
    let mut next = 0usize;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let frame = match speaking.as_mut() {
                    Some((line, pos)) => {
                        let l = &lines[*line];
                        let f: Vec<i16> = (0..audio::FRAME).map(|i| l.get(*pos + i).copied().unwrap_or(0)).collect();
                        *pos += audio::FRAME;
                        if *pos >= l.len() {
                            speaking = None;
                            ended_line = Some(Instant::now());
                        }
                        f
                    }
                    None => vec![0; audio::FRAME],
                };
                if inbound_tx.send(Inbound::Audio(frame)).await.is_err() {
                    break;
                }
                if speaking.is_none() && heard_reply && quiet_ms >= 700 {
                    heard_reply = false;
                    speaking = Some((next % lines.len(), 0));
                    next += 1;
                }
            }
            o = out_rx.recv() => match o {
                Some(Outbound::Audio(frame)) => {
                    if audio::rms(&frame) > 0.002 {
                        if let Some(end) = ended_line.take() {
                            turns.push(Turn { total_ms: end.elapsed().as_secs_f64() * 1000.0 });
                        }
                        heard_reply = true;
                        quiet_ms = 0;
                    } else {
                        quiet_ms += 20;
                    }
                }
                Some(Outbound::HangUp) | None => break,
                Some(Outbound::Transcript { .. } | Outbound::Clear | Outbound::Transfer { .. }) => {}
            },
        }
    }
    drop(inbound_tx);
    let _ = conversation.await;
    turns
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = speech::default_speech_dir();
    let engines = speech::Engines::choose(
        "whisper",
        "espeak",
        speech::EngineSource {
            speech_dir: dir.clone(),
            openai: None,
        },
    );
    let stt = engines
        .stt
        .clone()
        .ok_or_else(|| anyhow::anyhow!("{}", engines.unavailable().unwrap_or_default()))?;
    let piper = speech::load_piper(&dir).map_err(anyhow::Error::msg)?;
    let mut lines = Vec::new();
    for a in ANSWERS {
        lines.push(piper.synthesize(a).await?);
    }
    let lines = Arc::new(lines);
    // The reference: Whisper alone on the second line, warmed up.
    let sample = audio::resample(&audio::to_f32(&lines[1]), audio::RATE, 16000);
    stt.transcribe(sample.clone(), &[]).await?;
    let mut alone = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        stt.transcribe(sample.clone(), &[]).await?;
        alone.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let stt_alone = percentile(alone, 0.5);
    println!(
        "reference: Whisper tiny.en alone on a {:.1} s line: {stt_alone:.0} ms (median of 5)\n",
        lines[1].len() as f64 / 8000.0
    );

    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.into());
    for tts_name in env("VOXD_BENCH_TTS", "espeak,piper").split(',') {
        let tts: Arc<dyn TextToSpeech> = match tts_name.trim() {
            "piper" => piper.clone(),
            _ => Arc::new(speech::Espeak::find().ok_or_else(|| anyhow::anyhow!("espeak-ng missing"))?),
        };
        for eagerness in env("VOXD_BENCH_EAGERNESS", "keen,normal").split(',') {
            let timings = Arc::new(Mutex::new(Vec::new()));
            let mut turns = Vec::new();
            for _ in 0..3 {
                turns.extend(
                    call(
                        script(eagerness.trim()),
                        stt.clone(),
                        tts.clone(),
                        lines.clone(),
                        timings.clone(),
                    )
                    .await,
                );
            }
            let t = timings.lock().unwrap().clone();
            let stage = |f: fn(&TurnTiming) -> u64| percentile(t.iter().map(|x| f(x) as f64).collect(), 0.5);
            let totals: Vec<f64> = turns.iter().map(|t| t.total_ms).collect();
            println!(
                "latency tts={tts_name} eagerness={eagerness}: {} turns, end of speech → first reply audio p50 {:.0} ms, p95 {:.0} ms \
                 ({:.1}× Whisper alone); stage p50: end of turn {:.0} ms, STT after it {:.0} ms, brain {:.0} ms, TTS first sentence {:.0} ms",
                totals.len(),
                percentile(totals.clone(), 0.5),
                percentile(totals.clone(), 0.95),
                percentile(totals, 0.5) / stt_alone,
                stage(|x| x.vad_ms),
                stage(|x| x.stt_ms),
                stage(|x| x.brain_ms),
                stage(|x| x.tts_ms),
            );
        }
    }

    println!();
    let base_rss = rss_mb();
    for n in env("VOXD_BENCH_CALLS", "1,2,3,4,6,8")
        .split(',')
        .filter_map(|n| n.trim().parse::<usize>().ok())
    {
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        let peak = Arc::new(Mutex::new(base_rss));
        let sampler = {
            let peak = peak.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let mut p = peak.lock().unwrap();
                    *p = p.max(rss_mb());
                }
            })
        };
        let tts: Arc<dyn TextToSpeech> = Arc::new(speech::Espeak::find().unwrap());
        let calls: Vec<_> = (0..n)
            .map(|_| {
                tokio::spawn(call(
                    script("keen"),
                    stt.clone(),
                    tts.clone(),
                    lines.clone(),
                    Arc::new(Mutex::new(Vec::new())),
                ))
            })
            .collect();
        let mut totals = Vec::new();
        for c in calls {
            totals.extend(c.await?.into_iter().map(|t| t.total_ms));
        }
        sampler.abort();
        let cores = (cpu_seconds() - cpu0) / wall0.elapsed().as_secs_f64();
        let p95 = percentile(totals.clone(), 0.95);
        let peak = *peak.lock().unwrap();
        println!(
            "capacity: {n} concurrent calls (espeak, keen): {} turns, p50 {:.0} ms, p95 {:.0} ms; CPU {:.2} cores ({:.2} per call); \
             memory +{:.0} MB ({:.1} MB per call)",
            totals.len(),
            percentile(totals, 0.5),
            p95,
            cores,
            cores / n as f64,
            peak - base_rss,
            (peak - base_rss) / n as f64,
        );
        if p95 > 1500.0 {
            println!("capacity: p95 passed 1.5 s at {n} concurrent calls");
            break;
        }
    }
    Ok(())
}
