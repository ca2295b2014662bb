//! Answering-machine detection on the first seconds of an outbound call's audio, the way a
//! listener tells: a person answers with a short "Hello?" and waits; a machine talks on (a long
//! greeting, several phrases in a row) and then beeps. No crate does this on raw audio, so it is
//! ours: an energy voice-activity test per 20 ms frame with an adaptive noise floor, timing rules
//! on the speech it finds, and a Goertzel tone test for the beep.
//!
//! [`Detector::push`] takes frames until it has a [`Verdict`]. After `Machine`, keep pushing: it
//! reports [`Verdict::ReadyToSpeak`] once the greeting is over (the beep ended, or a long pause),
//! which is when a voicemail message should start.

use std::time::Duration;

/// Frame length the rules count in (20 ms at any rate).
const FRAME_MS: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A person: a short greeting, then a pause (or silence, or no decision in time: the
    /// assistant speaks, which is what a person who said nothing expects).
    Human(Reason),
    /// A machine: the greeting ran long, came in many phrases, or a beep was heard.
    Machine(Reason),
    /// After `Machine`: the greeting is over; speak now.
    ReadyToSpeak,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Short speech followed by a pause.
    ShortGreeting,
    /// Nothing said for the initial-silence time.
    Silence,
    /// Still undecided at the end of the analysis time.
    Undecided,
    /// Speech longer than a person's greeting.
    LongGreeting,
    /// Several phrases back to back.
    ManyPhrases,
    /// A beep.
    Beep,
}

/// The timings of the rules, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// No speech at all for this long: a person who waits for us.
    pub initial_silence_ms: u64,
    /// Speech totalling more than this before a pause: a machine.
    pub greeting_max_ms: u64,
    /// This much silence after speech ends the greeting.
    pub after_greeting_silence_ms: u64,
    /// This many phrases (speech separated by short gaps) before a pause: a machine.
    pub max_phrases: u32,
    /// The whole decision takes at most this long.
    pub total_ms: u64,
    /// After `Machine` without a beep, this much silence means the greeting is over.
    pub end_of_greeting_silence_ms: u64,
    /// After `Machine`, speak at the latest this long after the answer.
    pub max_wait_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            initial_silence_ms: 3000,
            greeting_max_ms: 2200,
            after_greeting_silence_ms: 900,
            max_phrases: 4,
            total_ms: 5000,
            end_of_greeting_silence_ms: 1500,
            max_wait_ms: 25_000,
        }
    }
}

/// Mean square energy below which a frame is never speech (-50 dBFS).
const SPEECH_FLOOR: f64 = 32768.0 * 32768.0 * 1e-5;

/// Tone frames in a row that make a beep (120 ms).
const BEEP_FRAMES: u32 = 6;

pub struct Detector {
    settings: Settings,
    rate: u32,
    elapsed_ms: u64,
    noise_floor: f64,
    speech_ms: u64,
    silence_run_ms: u64,
    in_speech: bool,
    phrases: u32,
    heard_speech: bool,
    tone_run: u32,
    tone_bin: Option<usize>,
    beeped: bool,
    machine: bool,
    done: bool,
}

impl Detector {
    pub fn new(rate: u32, settings: Settings) -> Detector {
        Detector {
            settings,
            rate,
            elapsed_ms: 0,
            noise_floor: SPEECH_FLOOR / 16.0,
            speech_ms: 0,
            silence_run_ms: 0,
            in_speech: false,
            phrases: 0,
            heard_speech: false,
            tone_run: 0,
            tone_bin: None,
            beeped: false,
            machine: false,
            done: false,
        }
    }

    /// How long the detector has listened.
    pub fn elapsed(&self) -> Duration {
        Duration::from_millis(self.elapsed_ms)
    }

    /// One 20 ms frame of the callee's audio; a verdict when there is a new one.
    pub fn push(&mut self, frame: &[i16]) -> Option<Verdict> {
        if self.done || frame.is_empty() {
            return None;
        }
        self.elapsed_ms += FRAME_MS;
        let energy = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / frame.len() as f64;
        let tone = self.tone_bin_of(frame, energy);
        let speech = self.is_speech(energy);

        // A beep: the same pure tone for BEEP_FRAMES frames; the greeting is over when it stops.
        match (tone, self.tone_bin) {
            (Some(b), Some(prev)) if b.abs_diff(prev) <= 1 => self.tone_run += 1,
            (Some(b), _) => {
                self.tone_run = 1;
                self.tone_bin = Some(b);
            }
            (None, _) => {
                if self.tone_run >= BEEP_FRAMES {
                    self.beeped = true;
                }
                self.tone_run = 0;
                self.tone_bin = None;
            }
        }
        if self.machine {
            return self.after_machine(speech);
        }
        if self.tone_run >= BEEP_FRAMES || self.beeped {
            self.machine = true;
            return Some(Verdict::Machine(Reason::Beep));
        }

        if speech && tone.is_none() {
            if !self.in_speech && (self.silence_run_ms >= 150 || !self.heard_speech) {
                self.phrases += 1;
            }
            self.in_speech = true;
            self.heard_speech = true;
            self.speech_ms += FRAME_MS;
            self.silence_run_ms = 0;
        } else {
            self.silence_run_ms += FRAME_MS;
            if self.silence_run_ms >= 150 {
                self.in_speech = false;
            }
        }

        if self.speech_ms > self.settings.greeting_max_ms {
            self.machine = true;
            return Some(Verdict::Machine(Reason::LongGreeting));
        }
        if self.phrases >= self.settings.max_phrases {
            self.machine = true;
            return Some(Verdict::Machine(Reason::ManyPhrases));
        }
        if self.heard_speech && self.silence_run_ms >= self.settings.after_greeting_silence_ms {
            self.done = true;
            return Some(Verdict::Human(Reason::ShortGreeting));
        }
        if !self.heard_speech && self.elapsed_ms >= self.settings.initial_silence_ms {
            self.done = true;
            return Some(Verdict::Human(Reason::Silence));
        }
        if self.elapsed_ms >= self.settings.total_ms {
            self.done = true;
            return Some(Verdict::Human(Reason::Undecided));
        }
        None
    }

    /// Waiting for the end of a machine's greeting: the beep's end, a long pause, or the limit.
    fn after_machine(&mut self, speech: bool) -> Option<Verdict> {
        if speech && self.tone_run == 0 {
            self.silence_run_ms = 0;
        } else if self.tone_run == 0 {
            self.silence_run_ms += FRAME_MS;
        }
        let over = self.beeped
            || self.silence_run_ms >= self.settings.end_of_greeting_silence_ms
            || self.elapsed_ms >= self.settings.max_wait_ms;
        if over {
            self.done = true;
            return Some(Verdict::ReadyToSpeak);
        }
        None
    }

    /// Speech: well above the quietest frames heard so far, and above an absolute floor (-50
    /// dBFS), so line noise and comfort noise are not speech.
    fn is_speech(&mut self, energy: f64) -> bool {
        self.noise_floor = if energy < self.noise_floor {
            // Falls fast to quiet frames, rises slowly: a long greeting does not become the floor.
            0.7 * self.noise_floor + 0.3 * energy
        } else {
            self.noise_floor * 1.002
        };
        energy > SPEECH_FLOOR && energy > self.noise_floor * 16.0
    }

    /// The frequency bin (25 Hz steps from 350 Hz to 2 kHz) of a pure tone filling this frame,
    /// if it is one: a single Goertzel bin holding most of the frame's energy. Voices spread
    /// theirs over many harmonics and do not pass.
    fn tone_bin_of(&self, frame: &[i16], energy: f64) -> Option<usize> {
        const ABSOLUTE: f64 = 32768.0 * 32768.0 * 1e-4;
        if energy < ABSOLUTE {
            return None;
        }
        let n = frame.len() as f64;
        let total = energy * n;
        let mut best = (0usize, 0.0f64);
        for (i, f) in (350..=2000).step_by(25).enumerate() {
            let w = 2.0 * std::f64::consts::PI * f64::from(f) / f64::from(self.rate);
            let coeff = 2.0 * w.cos();
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for &x in frame {
                let s0 = f64::from(x) + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
            if power > best.1 {
                best = (i, power);
            }
        }
        // A pure tone at a bin's frequency gives power = total * n / 2.
        (best.1 * 2.0 / (n * total) > 0.6).then_some(best.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 8000;

    fn tone(ms: u32, hz: f64, amp: f64) -> Vec<i16> {
        (0..ms * RATE / 1000)
            .map(|i| (amp * (2.0 * std::f64::consts::PI * hz * f64::from(i) / f64::from(RATE)).sin()) as i16)
            .collect()
    }

    /// Voice-like: a 150 Hz buzz with many harmonics.
    fn voice(ms: u32) -> Vec<i16> {
        (0..ms * RATE / 1000)
            .map(|i| {
                let t = f64::from(i) / f64::from(RATE);
                let s: f64 = (1..=12)
                    .map(|h| (2.0 * std::f64::consts::PI * 150.0 * f64::from(h) * t).sin() / f64::from(h))
                    .sum();
                (s * 3000.0) as i16
            })
            .collect()
    }

    fn silence(ms: u32) -> Vec<i16> {
        (0..ms * RATE / 1000).map(|i| ((i * 7919) % 7) as i16 - 3).collect()
    }

    fn run(audio: &[i16]) -> Vec<(u64, Verdict)> {
        let mut d = Detector::new(RATE, Settings::default());
        let mut out = Vec::new();
        for frame in audio.chunks(160) {
            if let Some(v) = d.push(frame) {
                out.push((d.elapsed().as_millis() as u64, v));
            }
        }
        out
    }

    #[test]
    fn a_short_hello_then_a_pause_is_a_person() {
        let audio = [silence(400), voice(700), silence(2000)].concat();
        let v = run(&audio);
        assert_eq!(v, vec![(2000, Verdict::Human(Reason::ShortGreeting))]);
    }

    #[test]
    fn silence_is_a_person_waiting() {
        assert_eq!(run(&silence(4000)), vec![(3000, Verdict::Human(Reason::Silence))]);
    }

    #[test]
    fn a_long_greeting_then_a_beep_is_a_machine_ready_after_the_beep() {
        let audio = [voice(3000), silence(300), tone(400, 1000.0, 12000.0), silence(1000)].concat();
        let v = run(&audio);
        assert_eq!(v[0].1, Verdict::Machine(Reason::LongGreeting));
        assert_eq!(v[1].1, Verdict::ReadyToSpeak);
        // Ready at the end of the beep, not before it.
        assert!((3700..=3760).contains(&v[1].0), "{v:?}");
    }

    #[test]
    fn a_beep_alone_is_a_machine() {
        let audio = [silence(500), tone(300, 850.0, 9000.0), silence(500)].concat();
        let v = run(&audio);
        assert_eq!(v[0].1, Verdict::Machine(Reason::Beep));
        assert_eq!(v.last().unwrap().1, Verdict::ReadyToSpeak);
    }

    #[test]
    fn many_short_phrases_are_a_machine_and_a_long_pause_ends_the_greeting() {
        let mut audio = Vec::new();
        for _ in 0..5 {
            audio.extend(voice(350));
            audio.extend(silence(300));
        }
        audio.extend(silence(2000));
        let v = run(&audio);
        assert_eq!(v[0].1, Verdict::Machine(Reason::ManyPhrases));
        assert_eq!(v[1].1, Verdict::ReadyToSpeak);
    }
}
