//! The live pipeline: a [`Leg`] over audio. The callee's frames go through voice activity
//! detection (earshot) to utterances, speech-to-text and the engine's events; the engine's lines
//! are spoken by text-to-speech, sentence by sentence as they come, and played out in 20 ms frames.
//!
//! - **Barge-in**: callee speech while an interruptible line plays stops it here at once (without
//!   waiting for the engine) and reports how much had played; lines of tool and function steps
//!   play on.
//! - **End of turn**: a pause as long as the step's eagerness allows (keen 400 ms, normal 700 ms,
//!   patient 1100 ms; the callee's first two turns 30% shorter, since greetings are short).
//! - **Times** of the callee's turns are the audio's: when their speech started.
//!
//! The transport (WebRTC, a SIP trunk's RTP) only moves frames: it is a [`Line`].

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::{sync::mpsc, task::JoinHandle};
use uuid::Uuid;

use super::{
    audio::{self, FRAME, FRAME_MS},
    keywords,
    recording::{self, Recorder},
    speech::{SpeechToText, TextToSpeech},
};
use crate::{
    carrier::{Leg, LegEvent, Listening},
    conversation::{engine::UtteranceId, script::Eagerness},
    domain::call::CallStatus,
};

/// What the transport delivers from the callee's side.
#[derive(Debug)]
pub enum Inbound {
    /// One frame of the callee's audio (line rate).
    Audio(Vec<i16>),
    Dtmf(char),
    /// The callee hung up (a BYE).
    HungUp,
    /// The connection failed (ICE, DTLS, the signalling socket closed): why.
    Dropped(String),
    /// The call was ended from outside (end-web-call): the outcome to record.
    Ended(CallStatus, String),
}

/// What the pipeline asks of the transport.
#[derive(Debug)]
pub enum Outbound {
    /// One frame of the assistant's audio (line rate, [`FRAME`] samples).
    Audio(Vec<i16>),
    /// Everything has played: end the call from this side.
    HangUp,
    /// What was queued to play was dropped (barge-in): a transport that buffers audio on the far
    /// side (Twilio) flushes it there too.
    Clear,
    /// Everything has played: hand the call to `to` and say whether that worked.
    Transfer {
        to: String,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// A line of the live transcript (`user` or `assistant`), for a softphone to show.
    Transcript { role: &'static str, text: String },
}

/// The transport's two directions.
pub struct Line {
    pub inbound: mpsc::Receiver<Inbound>,
    pub outbound: mpsc::Sender<Outbound>,
}

pub struct Options {
    pub call_id: Uuid,
    pub stt: Arc<dyn SpeechToText>,
    pub tts: Arc<dyn TextToSpeech>,
    /// Where to save the recording; None: not recorded.
    pub recordings: Option<PathBuf>,
    pub recording_url: Option<String>,
    /// No callee audio for this long and the line counts as dropped (a tab closed without a BYE).
    pub media_timeout: Duration,
    /// Turn latencies are added here when set (the benchmark reads them).
    pub timings: Option<Arc<Mutex<Vec<TurnTiming>>>>,
}

/// One callee turn to the assistant's first audio, split by stage (milliseconds).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TurnTiming {
    /// End of speech to end of turn (the pause the eagerness waits for).
    pub vad_ms: u64,
    pub stt_ms: u64,
    /// Words handed to the engine to its first line.
    pub brain_ms: u64,
    /// The first line's text to its audio.
    pub tts_ms: u64,
    /// End of the callee's speech to the first frame of the reply sent.
    pub total_ms: u64,
    pub text: String,
}

enum Command {
    Say {
        id: UtteranceId,
        text: String,
        interruptible: bool,
    },
    Stop,
    HangUp,
    Listen(Listening),
    Transfer {
        to: String,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
}

/// A leg whose far end speaks audio.
pub struct VoiceLeg {
    events: mpsc::UnboundedReceiver<LegEvent>,
    commands: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
    recording_url: Option<String>,
    outcome: Arc<Mutex<Option<(CallStatus, String)>>>,
    last: Option<Listening>,
}

impl VoiceLeg {
    /// Starts the pipeline over the line.
    pub fn start(line: Line, options: Options) -> VoiceLeg {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let outcome = Arc::new(Mutex::new(None));
        let recording_url = options.recordings.as_ref().and(options.recording_url.clone());
        let pipeline = Pipeline::new(options, events_tx, outcome.clone());
        let task = tokio::spawn(pipeline.run(line, commands_rx));
        VoiceLeg {
            events,
            commands,
            task: Some(task),
            recording_url,
            outcome,
            last: None,
        }
    }
}

#[async_trait]
impl Leg for VoiceLeg {
    async fn next_event(&mut self, deadline: Option<DateTime<Utc>>) -> LegEvent {
        let wait = deadline.map(|d| (d - Utc::now()).to_std().unwrap_or_default());
        let next = async {
            match wait {
                Some(w) => tokio::time::timeout(w, self.events.recv()).await.ok(),
                None => Some(self.events.recv().await),
            }
        };
        match next.await {
            Some(Some(e)) => e,
            Some(None) => LegEvent::Dropped,
            None => LegEvent::Deadline,
        }
    }

    async fn say(&mut self, id: UtteranceId, text: &str, interruptible: bool) {
        let _ = self.commands.send(Command::Say {
            id,
            text: text.to_owned(),
            interruptible,
        });
    }

    async fn stop_speaking(&mut self) {
        let _ = self.commands.send(Command::Stop);
    }

    async fn hang_up(&mut self) {
        let _ = self.commands.send(Command::HangUp);
    }

    async fn transfer(&mut self, to: &str) -> Result<(), String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let _ = self.commands.send(Command::Transfer {
            to: to.to_owned(),
            reply,
        });
        // What is playing plays out first; a trunk answers a REFER within its transaction time.
        match tokio::time::timeout(Duration::from_secs(90), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the line ended before the transfer".into()),
            Err(_) => Err("the transfer took longer than 90 s".into()),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn recording_url(&self) -> Option<String> {
        self.recording_url.clone()
    }

    fn listen(&mut self, listening: Listening) {
        if self.last.as_ref() != Some(&listening) {
            self.last = Some(listening.clone());
            let _ = self.commands.send(Command::Listen(listening));
        }
    }

    fn outcome(&self) -> Option<(CallStatus, String)> {
        self.outcome.lock().ok().and_then(|o| o.clone())
    }

    async fn close(&mut self) {
        let _ = self.commands.send(Command::HangUp);
        if let Some(task) = self.task.take() {
            // The goodbye plays out, then the recording is written; bounded either way.
            if tokio::time::timeout(Duration::from_secs(30), task).await.is_err() {
                tracing::warn!("voice pipeline did not finish within 30 s");
            }
        }
    }
}

struct Clip {
    id: UtteranceId,
    text: String,
    samples: Vec<i16>,
    pos: usize,
    interruptible: bool,
}

/// An utterance being heard.
struct Hearing {
    started_at: DateTime<Utc>,
    samples: Vec<i16>,
    voiced_ms: u64,
    silence_ms: u64,
    last_voiced: Instant,
}

/// A transcription of the utterance in the pause after it, and whether the pause has become the
/// end of the turn.
struct Early {
    seq: u64,
    result: Option<Result<String, String>>,
    turn_over: bool,
    started_at: DateTime<Utc>,
}

struct Transcribed {
    seq: u64,
    text: Result<String, String>,
}

type Heard = mpsc::UnboundedSender<Transcribed>;

/// Silence after which the utterance so far is transcribed (before the turn is known to be over).
const EARLY_MS: u64 = 192;

/// The clock of the turn in flight, for [`TurnTiming`].
#[derive(Default)]
struct TurnClock {
    speech_end: Option<Instant>,
    endpoint: Option<Instant>,
    heard: Option<Instant>,
    said: Option<Instant>,
    synthesized: Option<Instant>,
    text: String,
}

/// Voiced frames in a row before speech counts as started (48 ms: one click is not speech).
const ONSET_MS: u64 = 48;
/// Speech this long over an interruptible line stops it (the line stops within 200 ms of speech).
const BARGE_IN_MS: u64 = 112;
/// Utterances with less voice than this are noise.
const MIN_VOICED_MS: u64 = 150;
/// Audio kept from before the onset, so the first syllable is not clipped: the detector is sure
/// of speech only at the first vowel, and a soft onset ("Thursday") starts well before it.
const PREROLL: usize = audio::RATE as usize * 6 / 10;
const VAD_FRAME: usize = 256;
const VAD_FRAME_MS: u64 = 16;

fn end_of_turn_ms(l: &Listening) -> u64 {
    let base = match l.eagerness {
        Eagerness::Keen => 400,
        Eagerness::Normal => 700,
        Eagerness::Patient => 1100,
    };
    if l.callee_turns < 2 {
        base * 7 / 10
    } else {
        base
    }
}

struct Pipeline {
    options: Options,
    events: mpsc::UnboundedSender<LegEvent>,
    outcome: Arc<Mutex<Option<(CallStatus, String)>>>,
    vad: Box<earshot::Detector>,
    vad_buf: Vec<f32>,
    preroll: VecDeque<i16>,
    voiced_run_ms: u64,
    hearing: Option<Hearing>,
    listening: Listening,
    playing: VecDeque<Clip>,
    /// Lines sent to TTS and not back yet (this generation).
    synthesizing: Vec<UtteranceId>,
    generation: u64,
    hanging_up: bool,
    recorder: Option<Recorder>,
    last_audio: Instant,
    clock: TurnClock,
    early: Option<Early>,
    seq: u64,
    /// The turn ended with its words already transcribed: deliver them.
    turn_ready: bool,
    /// Playback was stopped: the next frame out tells the transport.
    cleared: bool,
    /// A transfer asked for, sent to the transport once everything has played.
    transfer: Option<(String, tokio::sync::oneshot::Sender<Result<(), String>>)>,
}

impl Pipeline {
    fn new(
        options: Options,
        events: mpsc::UnboundedSender<LegEvent>,
        outcome: Arc<Mutex<Option<(CallStatus, String)>>>,
    ) -> Self {
        Pipeline {
            recorder: options.recordings.as_ref().map(|_| Recorder::default()),
            options,
            events,
            outcome,
            vad: earshot::Detector::default_boxed(),
            vad_buf: Vec::with_capacity(2 * VAD_FRAME),
            preroll: VecDeque::with_capacity(PREROLL),
            voiced_run_ms: 0,
            hearing: None,
            listening: Listening::default(),
            playing: VecDeque::new(),
            synthesizing: Vec::new(),
            generation: 0,
            hanging_up: false,
            last_audio: Instant::now(),
            clock: TurnClock::default(),
            early: None,
            seq: 0,
            turn_ready: false,
            cleared: false,
            transfer: None,
        }
    }

    fn emit(&self, e: LegEvent) {
        let _ = self.events.send(e);
    }

    async fn run(mut self, mut line: Line, mut commands: mpsc::UnboundedReceiver<Command>) {
        // Lines are synthesised one after another, in order, beside the playout.
        let (synth_tx, mut synth_rx) = mpsc::unbounded_channel::<(u64, UtteranceId, String, bool)>();
        let transcript = line.outbound.clone();
        let (voiced_tx, mut voiced) =
            mpsc::unbounded_channel::<(u64, UtteranceId, bool, String, Result<Vec<i16>, String>)>();
        let tts = self.options.tts.clone();
        let synth = tokio::spawn(async move {
            while let Some((generation, id, text, interruptible)) = synth_rx.recv().await {
                let pcm = crate::metrics::timed(&crate::metrics::METRICS.tts, &[tts.name()], tts.synthesize(&text))
                    .await
                    .map_err(|e| e.to_string());
                if voiced_tx.send((generation, id, interruptible, text, pcm)).is_err() {
                    break;
                }
            }
        });
        let (heard_tx, mut heard) = mpsc::unbounded_channel::<Transcribed>();
        let mut tick = tokio::time::interval(Duration::from_millis(FRAME_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut commands_open = true;
        loop {
            tokio::select! {
                c = commands.recv(), if commands_open => match c {
                    Some(c) => self.command(c, &synth_tx),
                    // The leg is gone: nobody listens any more.
                    None => { commands_open = false; self.hanging_up = true; self.playing.clear(); self.synthesizing.clear(); }
                },
                Some(inbound) = line.inbound.recv() => match inbound {
                    Inbound::Audio(frame) => {
                        self.audio(&frame, &heard_tx);
                        if std::mem::take(&mut self.turn_ready) {
                            self.deliver(&transcript);
                        }
                    }
                    Inbound::Dtmf(d) => self.emit(LegEvent::Dtmf(d)),
                    Inbound::HungUp => { self.emit(LegEvent::HungUp); break; }
                    Inbound::Dropped(why) => {
                        tracing::info!(call_id = %self.options.call_id, reason = %why, "live call dropped");
                        self.emit(LegEvent::Dropped);
                        break;
                    }
                    Inbound::Ended(status, reason) => {
                        if let Ok(mut o) = self.outcome.lock() { *o = Some((status, reason)); }
                        self.emit(LegEvent::HungUp);
                        let _ = line.outbound.send(Outbound::HangUp).await;
                        break;
                    }
                },
                Some((generation, id, interruptible, text, pcm)) = voiced.recv() => {
                    if generation == self.generation {
                        self.synthesizing.retain(|s| *s != id);
                        match pcm {
                            Ok(samples) if !samples.is_empty() => {
                                if self.clock.said.is_some() && self.clock.synthesized.is_none() {
                                    self.clock.synthesized = Some(Instant::now());
                                }
                                self.playing.push_back(Clip { id, text, samples, pos: 0, interruptible });
                            }
                            Ok(_) => self.emit(LegEvent::Played(id)),
                            Err(e) => {
                                tracing::warn!(call_id = %self.options.call_id, error = %e, "text-to-speech failed; the line is skipped");
                                self.emit(LegEvent::Played(id));
                            }
                        }
                    }
                },
                Some(t) = heard.recv() => {
                    let Some(early) = self.early.as_mut().filter(|e| e.seq == t.seq) else {
                        // The callee went on speaking after the pause it was started in.
                        continue;
                    };
                    early.result = Some(t.text);
                    if early.turn_over {
                        self.deliver(&transcript);
                    }
                },
                _ = tick.tick() => {
                    if self.play(&line.outbound) {
                        let _ = line.outbound.send(Outbound::HangUp).await;
                        break;
                    }
                    if self.playing.is_empty() && self.synthesizing.is_empty() {
                        if let Some((to, reply)) = self.transfer.take() {
                            tracing::info!(call_id = %self.options.call_id, %to, "handing the call over");
                            let _ = line.outbound.send(Outbound::Transfer { to, reply }).await;
                        }
                    }
                    if self.last_audio.elapsed() > self.options.media_timeout {
                        tracing::info!(call_id = %self.options.call_id, "no audio from the callee: the line counts as dropped");
                        self.emit(LegEvent::Dropped);
                        break;
                    }
                },
            }
        }
        synth.abort();
        self.finish().await;
    }

    fn command(&mut self, c: Command, synth: &mpsc::UnboundedSender<(u64, UtteranceId, String, bool)>) {
        match c {
            Command::Say {
                id,
                text,
                interruptible,
            } => {
                if self.clock.heard.is_some() && self.clock.said.is_none() {
                    self.clock.said = Some(Instant::now());
                }
                if text.trim().is_empty() {
                    self.emit(LegEvent::Played(id));
                } else {
                    self.synthesizing.push(id);
                    let _ = synth.send((self.generation, id, text, interruptible));
                }
            }
            Command::Stop => {
                self.generation += 1;
                self.cleared |= !self.playing.is_empty();
                self.playing.clear();
                self.synthesizing.clear();
            }
            Command::HangUp => self.hanging_up = true,
            Command::Listen(l) => self.listening = l,
            Command::Transfer { to, reply } => self.transfer = Some((to, reply)),
        }
    }

    /// One 20 ms frame out; true when the call should now end (hanging up, all played).
    fn play(&mut self, out: &mpsc::Sender<Outbound>) -> bool {
        if std::mem::take(&mut self.cleared) {
            let _ = out.try_send(Outbound::Clear);
        }
        let mut frame = vec![0i16; FRAME];
        let mut done = None;
        if let Some(clip) = self.playing.front_mut() {
            if clip.pos == 0 {
                let text = std::mem::take(&mut clip.text);
                let _ = out.try_send(Outbound::Transcript {
                    role: "assistant",
                    text,
                });
            }
            let end = (clip.pos + FRAME).min(clip.samples.len());
            frame[..end - clip.pos].copy_from_slice(&clip.samples[clip.pos..end]);
            clip.pos = end;
            if clip.pos >= clip.samples.len() {
                done = Some(clip.id);
            }
            if let (Some(end), Some(_)) = (self.clock.speech_end, self.clock.synthesized) {
                self.turn_timed(end);
            }
        }
        if let Some(id) = done {
            self.playing.pop_front();
            self.emit(LegEvent::Played(id));
        }
        if let Some(r) = self.recorder.as_mut() {
            r.assistant(&frame);
        }
        // A full queue means the transport is stuck; dropping a frame beats blocking the pipeline.
        let _ = out.try_send(Outbound::Audio(frame));
        self.hanging_up && self.playing.is_empty() && self.synthesizing.is_empty()
    }

    fn turn_timed(&mut self, speech_end: Instant) {
        let c = std::mem::take(&mut self.clock);
        let ms = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_millis() as u64,
            _ => 0,
        };
        let timing = TurnTiming {
            vad_ms: ms(Some(speech_end), c.endpoint),
            stt_ms: ms(c.endpoint, c.heard),
            brain_ms: ms(c.heard, c.said),
            tts_ms: ms(c.said, c.synthesized),
            total_ms: Instant::now().saturating_duration_since(speech_end).as_millis() as u64,
            text: c.text,
        };
        tracing::debug!(call_id = %self.options.call_id, ?timing, "turn latency");
        if let Some(t) = &self.options.timings {
            if let Ok(mut t) = t.lock() {
                t.push(timing);
            }
        }
    }

    /// The transcription of a finished turn goes to the engine (and the live transcript).
    fn deliver(&mut self, transcript: &mpsc::Sender<Outbound>) {
        let Some(Early {
            result: Some(result),
            started_at,
            ..
        }) = self.early.take()
        else {
            return;
        };
        match result {
            Ok(text) if !text.trim().is_empty() => {
                self.clock.heard = Some(Instant::now());
                self.clock.text = text.clone();
                tracing::debug!(call_id = %self.options.call_id, %text, "heard");
                let _ = transcript.try_send(Outbound::Transcript {
                    role: "user",
                    text: text.clone(),
                });
                self.emit(LegEvent::Utterance { text, started_at });
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(call_id = %self.options.call_id, error = %e, "speech-to-text failed; the utterance is lost")
            }
        }
    }

    fn audio(&mut self, frame: &[i16], heard: &Heard) {
        self.last_audio = Instant::now();
        if let Some(r) = self.recorder.as_mut() {
            r.callee(frame);
        }
        match self.hearing.as_mut() {
            Some(h) => h.samples.extend_from_slice(frame),
            None => {
                for &s in frame {
                    if self.preroll.len() == PREROLL {
                        self.preroll.pop_front();
                    }
                    self.preroll.push_back(s);
                }
            }
        }
        // The detector wants 16 kHz: each line sample twice, midpoints between (enough for a VAD).
        for (i, &s) in frame.iter().enumerate() {
            let next = frame.get(i + 1).copied().unwrap_or(s);
            self.vad_buf.push(f32::from(s) / 32768.0);
            self.vad_buf.push((f32::from(s) + f32::from(next)) / 65536.0);
        }
        while self.vad_buf.len() >= VAD_FRAME {
            let chunk: Vec<f32> = self.vad_buf.drain(..VAD_FRAME).collect();
            let voiced = self.vad.predict_f32(&chunk) >= 0.5;
            self.vad_frame(voiced, heard);
        }
    }

    fn vad_frame(&mut self, voiced: bool, heard: &Heard) {
        if voiced {
            self.voiced_run_ms += VAD_FRAME_MS;
        } else {
            self.voiced_run_ms = 0;
        }
        let (mut barge, mut start_early, mut turn_end, mut voiced_enough) = (false, false, false, false);
        match self.hearing.as_mut() {
            None if self.voiced_run_ms >= ONSET_MS => {
                let back = chrono::Duration::milliseconds(self.voiced_run_ms as i64 + 150);
                self.hearing = Some(Hearing {
                    started_at: Utc::now() - back,
                    samples: self.preroll.drain(..).collect(),
                    voiced_ms: self.voiced_run_ms,
                    silence_ms: 0,
                    last_voiced: Instant::now(),
                });
            }
            None => {}
            Some(h) if voiced => {
                h.voiced_ms += VAD_FRAME_MS;
                h.silence_ms = 0;
                h.last_voiced = Instant::now();
                barge = h.voiced_ms >= BARGE_IN_MS;
                // Speech again: what was transcribed in the pause is not the whole turn.
                self.early = None;
            }
            Some(h) => {
                h.silence_ms += VAD_FRAME_MS;
                let end = end_of_turn_ms(&self.listening);
                voiced_enough = h.voiced_ms >= MIN_VOICED_MS;
                start_early = voiced_enough && self.early.is_none() && h.silence_ms >= EARLY_MS.min(end);
                turn_end = h.silence_ms >= end;
            }
        }
        if start_early {
            self.transcribe(heard);
        }
        if turn_end {
            let h = self.hearing.take().expect("hearing");
            if voiced_enough {
                self.clock = TurnClock {
                    speech_end: Some(h.last_voiced),
                    endpoint: Some(Instant::now()),
                    ..TurnClock::default()
                };
                if let Some(early) = self.early.as_mut() {
                    early.turn_over = true;
                    self.turn_ready = early.result.is_some();
                }
            } else {
                self.early = None;
            }
        }
        if barge {
            self.barge_in();
        }
    }

    /// The callee talks over an interruptible line: it stops now, and the engine hears where.
    fn barge_in(&mut self) {
        let Some(clip) = self.playing.front() else { return };
        if !clip.interruptible {
            return;
        }
        let (utterance, played_ms) = (clip.id, clip.pos as u64 * 1000 / u64::from(audio::RATE));
        self.playing.retain(|c| !c.interruptible);
        self.generation += 1;
        self.synthesizing.clear();
        tracing::debug!(call_id = %self.options.call_id, utterance, played_ms, "barge-in");
        self.emit(LegEvent::BargeIn { utterance, played_ms });
    }

    /// Transcribes what the callee said so far, in the pause: when the pause turns out to end the
    /// turn, the words are (nearly) ready, instead of recognition starting only then.
    fn transcribe(&mut self, heard: &Heard) {
        let Some(h) = self.hearing.as_ref() else { return };
        self.seq += 1;
        let (seq, samples, started_at) = (self.seq, h.samples.clone(), h.started_at);
        self.early = Some(Early {
            seq,
            result: None,
            turn_over: false,
            started_at,
        });
        let (stt, keywords, heard) = (self.options.stt.clone(), self.listening.keywords.clone(), heard.clone());
        tokio::spawn(async move {
            let samples = audio::resample(&audio::to_f32(&samples), audio::RATE, 16000);
            let text = crate::metrics::timed(
                &crate::metrics::METRICS.stt,
                &[stt.name()],
                stt.transcribe(samples, &keywords),
            )
            .await
            .map(|t| keywords::spell(&t, &keywords))
            .map_err(|e| e.to_string());
            let _ = heard.send(Transcribed { seq, text });
        });
    }

    async fn finish(mut self) {
        let Some(dir) = self.options.recordings.clone() else {
            return;
        };
        let Some(recorder) = self.recorder.take() else { return };
        let call_id = self.options.call_id;
        let saved = tokio::task::spawn_blocking(move || {
            recording::save(&dir, call_id, &recorder).map(|p| (p, recorder.seconds()))
        })
        .await;
        match saved {
            Ok(Ok((path, seconds))) => tracing::info!(%call_id, path = %path.display(), seconds, "recording saved"),
            Ok(Err(e)) => tracing::warn!(%call_id, error = %e, "recording not saved"),
            Err(e) => tracing::warn!(%call_id, error = %e, "recording not saved"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_turns_end_sooner_and_eagerness_sets_the_pause() {
        let l = |eagerness, callee_turns| Listening {
            eagerness,
            callee_turns,
            keywords: vec![],
        };
        assert_eq!(end_of_turn_ms(&l(Eagerness::Normal, 0)), 490);
        assert_eq!(end_of_turn_ms(&l(Eagerness::Normal, 2)), 700);
        assert_eq!(end_of_turn_ms(&l(Eagerness::Keen, 5)), 400);
        assert_eq!(end_of_turn_ms(&l(Eagerness::Patient, 5)), 1100);
    }
}
