//! Answering-machine detection measured on a labelled set: voicemail greetings (with and without
//! a beep) and people answering ("Hello?"), synthesised by espeak-ng in two accents and by Piper,
//! over line noise, through G.711. Prints precision, recall, the time to a verdict and every miss;
//! fails below 90% precision or 80% recall (a person taken for a machine is the costly error:
//! they hear a voicemail message and the call ends).

mod common;

use std::sync::Arc;

use common::voice::{espeak, piper};
use voxd::voice::{
    amd::{Detector, Settings, Verdict},
    audio,
    speech::{Espeak, TextToSpeech},
};

const MACHINES: [&str; 14] = [
    "Hi, you've reached Sam Taylor. I can't take your call right now, please leave a message after the tone.",
    "The person you are calling is not available. Please leave a message after the beep.",
    "Hello, this is Ava. Sorry I missed you. Leave your name and number and I'll call you back.",
    "You have reached the voicemail of 0412 345 678. Please leave a message.",
    "G'day, it's Jack. I'm out on a job at the moment. Leave a message and I'll get back to you.",
    "Thank you for calling Harbour Realty. Our office is now closed. Please leave a message.",
    "Hi, it's Mia. Can't talk now. Text me or leave a message.",
    "Hello. You've reached the Nguyen family. We're not home right now, please leave a message.",
    "This is Priya's phone. I'm in a meeting. Please leave a short message after the tone.",
    "The number you have called is unable to take your call. Please leave a message after the tone.",
    "Hey, this is Tom. Leave a message.",
    "Hi, you've reached Olivia at Coastal Homes. I'm away from my desk, leave a message and I'll call you back today.",
    "Welcome to the message bank service. The person you have called is not available. Please leave a message.",
    "Hello, you've reached Daniel. I'm driving right now. Leave a message, thanks.",
];

const PEOPLE: [&str; 14] = [
    "Hello?",
    "Hello, Sam speaking.",
    "Yeah?",
    "Hi, who's this?",
    "G'day.",
    "Hello, this is Ava.",
    "Speaking.",
    "Yes, hello?",
    "Ava here.",
    "Hello, who's calling?",
    "Hi.",
    "Mm, hello?",
    "Jack speaking.",
    "Hello, Harbour Realty.",
];

/// A beep as voicemail systems play it.
fn beep(hz: f64) -> Vec<i16> {
    (0..(audio::RATE as usize * 2 / 5))
        .map(|i| (9000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(audio::RATE)).sin()) as i16)
        .collect()
}

/// Low line noise, deterministic.
fn noise(samples: usize, seed: u32) -> Vec<i16> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..samples)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 161) as i16 - 80
        })
        .collect()
}

/// `speech` after `lead` ms of noise, then `tail` (a beep, or nothing), then 3 s of noise, with
/// noise under all of it, through G.711 µ-law.
fn line(speech: &[i16], lead_ms: usize, tail: &[i16], seed: u32) -> Vec<i16> {
    let lead = lead_ms * audio::RATE as usize / 1000;
    let gap = audio::RATE as usize * 3 / 10;
    let mut out = noise(lead + speech.len() + gap + tail.len() + audio::RATE as usize * 3, seed);
    for (i, s) in speech.iter().enumerate() {
        out[lead + i] = out[lead + i].saturating_add(*s);
    }
    let at = lead + speech.len() + gap;
    for (i, s) in tail.iter().enumerate() {
        out[at + i] = out[at + i].saturating_add(*s);
    }
    out.iter().map(|&s| audio::ulaw_decode(audio::ulaw_encode(s))).collect()
}

/// The detector's first verdict on `audio`, and when (ms after the answer).
fn verdict(audio_in: &[i16]) -> (Verdict, u64) {
    let mut d = Detector::new(audio::RATE, Settings::default());
    for frame in audio_in.chunks(audio::FRAME) {
        if let Some(v) = d.push(frame) {
            return (v, d.elapsed().as_millis() as u64);
        }
    }
    (
        Verdict::Human(voxd::voice::amd::Reason::Undecided),
        d.elapsed().as_millis() as u64,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machines_and_people_are_told_apart() {
    let Some(e) = espeak() else {
        return;
    };
    let mut voices: Vec<(String, Arc<dyn TextToSpeech>)> = vec![
        (
            "espeak en-gb 170".into(),
            Arc::new(Espeak {
                program: e.program.clone(),
                voice: "en-gb".into(),
                speed: 170,
            }),
        ),
        (
            "espeak en-us 150".into(),
            Arc::new(Espeak {
                program: e.program.clone(),
                voice: "en-us".into(),
                speed: 150,
            }),
        ),
    ];
    if let Some(p) = piper() {
        voices.push(("piper".into(), p));
    }
    let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
    let mut misses = Vec::new();
    let (mut machine_ms, mut person_ms) = (Vec::new(), Vec::new());
    let mut seed = 1;
    for (voice, tts) in &voices {
        for (i, text) in MACHINES.iter().enumerate() {
            let speech = tts.synthesize(text).await.unwrap();
            let tail = if i % 2 == 0 {
                beep([1000.0, 850.0, 1400.0][i % 3])
            } else {
                Vec::new()
            };
            seed += 1;
            let (v, ms) = verdict(&line(&speech, 300 + 100 * (i % 5), &tail, seed));
            if matches!(v, Verdict::Machine(_)) {
                tp += 1;
                machine_ms.push(ms);
            } else {
                fn_ += 1;
                misses.push(format!(
                    "machine taken for a person ({voice}, {v:?} at {ms} ms): {text}"
                ));
            }
        }
        for (i, text) in PEOPLE.iter().enumerate() {
            let speech = tts.synthesize(text).await.unwrap();
            seed += 1;
            let (v, ms) = verdict(&line(&speech, 200 + 150 * (i % 5), &[], seed));
            if matches!(v, Verdict::Human(_)) {
                tn += 1;
                person_ms.push(ms);
            } else {
                fp += 1;
                misses.push(format!(
                    "person taken for a machine ({voice}, {v:?} at {ms} ms): {text}"
                ));
            }
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    eprintln!(
        "answering-machine detection over {} voices: {} machines, {} people; precision {:.1}% recall {:.1}%; \
         median verdict: machines {} ms, people {} ms after the answer",
        voices.len(),
        tp + fn_,
        tn + fp,
        precision * 100.0,
        recall * 100.0,
        median(&mut machine_ms),
        median(&mut person_ms)
    );
    for m in &misses {
        eprintln!("  miss: {m}");
    }
    assert!(precision >= 0.9, "precision {precision:.2}: {misses:#?}");
    assert!(recall >= 0.8, "recall {recall:.2}: {misses:#?}");
}
