//! Speech engines behind two traits, chosen by settings: text-to-speech gives line-rate PCM for a
//! sentence; speech-to-text gives the words of one utterance.
//!
//! - `espeak` runs `espeak-ng` as a process (kept out of the binary: it is GPL), 5 ms to first
//!   byte; robotic, but always there, and the test double.
//! - `piper` runs a Piper voice (VITS, ONNX) through ONNX Runtime, loaded at run time from the
//!   library `scripts/speech.sh install` unpacks; phonemes come from `espeak-ng --ipa` (a process,
//!   as above). ~250 ms to the first sentence's audio, and a voice a recogniser understands.
//! - `whisper` (cargo feature `whisper`) decodes in-process with CTranslate2 (`ct2rs`), the
//!   tiny.en model `scripts/speech.sh install` unpacks. Chosen over a Python sidecar: one binary,
//!   no interpreter to supervise; ~1.3× slower than faster-whisper in the research notes.
//! - `openai` speaks to any OpenAI-compatible server: `/v1/audio/speech`, `/v1/audio/transcriptions`.

use std::{path::PathBuf, sync::Arc, time::Duration};

use async_trait::async_trait;

use super::audio;

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("{0}")]
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> SpeechError {
    SpeechError::Failed(e.to_string())
}

#[async_trait]
pub trait TextToSpeech: Send + Sync {
    fn name(&self) -> &'static str;
    /// One sentence, as 16-bit PCM at [`audio::RATE`].
    async fn synthesize(&self, text: &str) -> Result<Vec<i16>, SpeechError>;
}

#[async_trait]
pub trait SpeechToText: Send + Sync {
    fn name(&self) -> &'static str;
    /// The words of one utterance, 16 kHz mono f32; `keywords` (names, products) bias the result
    /// where the engine takes a prompt.
    async fn transcribe(&self, samples_16k: Vec<f32>, keywords: &[String]) -> Result<String, SpeechError>;
}

/// A WAV file's 16-bit mono samples and rate (what espeak-ng writes).
pub fn read_wav(bytes: &[u8]) -> Result<(Vec<i16>, u32), SpeechError> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(failed("not a WAV file"));
    }
    let (mut at, mut rate, mut channels, mut bits) = (12usize, 0u32, 1u16, 16u16);
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = at + 8;
        if id == b"fmt " && body + 16 <= bytes.len() {
            channels = u16::from_le_bytes([bytes[body + 2], bytes[body + 3]]);
            rate = u32::from_le_bytes(bytes[body + 4..body + 8].try_into().unwrap());
            bits = u16::from_le_bytes([bytes[body + 14], bytes[body + 15]]);
        } else if id == b"data" {
            if bits != 16 || channels == 0 {
                return Err(failed(format!("WAV is {bits}-bit, {channels} channels: want 16-bit")));
            }
            // espeak-ng writing to a pipe leaves the size unknown (0 or 0xFFFFFFFF): take the rest.
            let end = if size == 0 || body + size > bytes.len() {
                bytes.len()
            } else {
                body + size
            };
            let samples = bytes[body..end]
                .chunks_exact(2 * channels as usize)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return Ok((samples, rate));
        }
        at = body + size + (size & 1);
    }
    Err(failed("WAV has no data"))
}

/// A 16-bit mono WAV file of `samples` at `rate`.
pub fn write_wav(samples: &[i16], rate: u32) -> Vec<u8> {
    let data = samples.len() as u32 * 2;
    let mut out = Vec::with_capacity(44 + data as usize);
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
    out
}

/// `espeak-ng` as a process.
pub struct Espeak {
    pub program: PathBuf,
    pub voice: String,
    /// Words per minute.
    pub speed: u32,
}

impl Espeak {
    /// espeak-ng on the PATH, if it runs.
    pub fn find() -> Option<Espeak> {
        let ok = std::process::Command::new("espeak-ng")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Espeak {
            program: "espeak-ng".into(),
            voice: "en-us".into(),
            speed: 160,
        })
    }
}

#[async_trait]
impl TextToSpeech for Espeak {
    fn name(&self) -> &'static str {
        "espeak"
    }

    async fn synthesize(&self, text: &str) -> Result<Vec<i16>, SpeechError> {
        let out = tokio::process::Command::new(&self.program)
            .args(["--stdout", "-v", &self.voice, "-s", &self.speed.to_string(), "--"])
            .arg(text)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| failed(format!("cannot run {}: {e}", self.program.display())))?;
        if !out.status.success() {
            return Err(failed(format!(
                "espeak-ng failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let (samples, rate) = read_wav(&out.stdout)?;
        Ok(audio::to_i16(&audio::resample(
            &audio::to_f32(&samples),
            rate,
            audio::RATE,
        )))
    }
}

/// A Piper voice: `<name>.onnx` and its `<name>.onnx.json` (sample rate, phoneme ids, scales).
pub struct Piper {
    session: Arc<std::sync::Mutex<ort::session::Session>>,
    ids: std::collections::HashMap<char, Vec<i64>>,
    rate: u32,
    scales: [f32; 3],
    espeak_voice: String,
}

impl Piper {
    /// Loads the voice, with ONNX Runtime from `runtime` (its `.so`).
    pub fn load(runtime: &std::path::Path, model: &std::path::Path) -> Result<Piper, SpeechError> {
        static RUNTIME: std::sync::OnceLock<Result<ort::environment::Environment, String>> = std::sync::OnceLock::new();
        let env = RUNTIME
            .get_or_init(|| {
                ort::init_from(runtime)
                    .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", runtime.display()))?
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| failed(e.clone()))?;
        let config_path = model.with_extension("onnx.json");
        let config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&config_path).map_err(|e| failed(format!("{}: {e}", config_path.display())))?,
        )
        .map_err(|e| failed(format!("{}: {e}", config_path.display())))?;
        let ids = config["phoneme_id_map"]
            .as_object()
            .ok_or_else(|| failed("voice config has no phoneme_id_map"))?
            .iter()
            .filter_map(|(k, v)| {
                let c = k.chars().next()?;
                let ids = v.as_array()?.iter().filter_map(|i| i.as_i64()).collect();
                Some((c, ids))
            })
            .collect();
        let inference = &config["inference"];
        let scale = |k: &str, d: f32| inference[k].as_f64().map_or(d, |v| v as f32);
        // One intra-op thread: faster than two on two cores, and calls run side by side.
        let session = ort::session::Session::builder(env)
            .and_then(|b| b.with_intra_threads(1).map_err(Into::into))
            .and_then(|mut b| b.commit_from_file(model))
            .map_err(|e| failed(format!("cannot load the voice {}: {e}", model.display())))?;
        Ok(Piper {
            session: Arc::new(std::sync::Mutex::new(session)),
            ids,
            rate: config["audio"]["sample_rate"].as_u64().unwrap_or(22050) as u32,
            scales: [
                scale("noise_scale", 0.667),
                scale("length_scale", 1.0),
                scale("noise_w", 0.8),
            ],
            espeak_voice: config["espeak"]["voice"].as_str().unwrap_or("en-us").to_owned(),
        })
    }

    /// The voice's phoneme ids for IPA text: start, each known phoneme padded, end.
    fn phoneme_ids(&self, ipa: &str) -> Vec<i64> {
        let id = |c: char| self.ids.get(&c).cloned().unwrap_or_default();
        let mut out = id('^');
        out.extend(id('_'));
        for c in ipa.chars() {
            if let Some(ids) = self.ids.get(&c) {
                out.extend(ids);
                out.extend(id('_'));
            }
        }
        out.extend(id('$'));
        out
    }
}

#[async_trait]
impl TextToSpeech for Piper {
    fn name(&self) -> &'static str {
        "piper"
    }

    async fn synthesize(&self, text: &str) -> Result<Vec<i16>, SpeechError> {
        let out = tokio::process::Command::new("espeak-ng")
            .args(["-q", "--ipa", "-v", &self.espeak_voice, "--"])
            .arg(text)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| failed(format!("cannot run espeak-ng for phonemes: {e}")))?;
        // espeak-ng prints a clause per line without its punctuation: clauses become pauses.
        let clauses: Vec<&str> = std::str::from_utf8(&out.stdout)
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let ipa = format!("{}.", clauses.join(", "));
        let ids = self.phoneme_ids(&ipa);
        let (session, scales, rate) = (self.session.clone(), self.scales, self.rate);
        let audio = tokio::task::spawn_blocking(move || -> Result<Vec<f32>, SpeechError> {
            use ort::value::Tensor;
            let n = ids.len();
            let inputs = ort::inputs![
                "input" => Tensor::from_array(([1usize, n], ids)).map_err(failed)?,
                "input_lengths" => Tensor::from_array(([1usize], vec![n as i64])).map_err(failed)?,
                "scales" => Tensor::from_array(([3usize], scales.to_vec())).map_err(failed)?,
            ];
            let mut session = session.lock().map_err(|_| failed("voice poisoned"))?;
            let outputs = session.run(inputs).map_err(failed)?;
            let (_, samples) = outputs["output"].try_extract_tensor::<f32>().map_err(failed)?;
            Ok(samples.to_vec())
        })
        .await
        .map_err(failed)??;
        Ok(audio::to_i16(&audio::resample(&audio, rate, audio::RATE)))
    }
}

/// An OpenAI-compatible speech server (`/v1/audio/speech`, `/v1/audio/transcriptions`).
pub struct OpenAiSpeech {
    pub base_url: String,
    pub api_key: Option<String>,
    pub tts_model: String,
    pub voice: String,
    pub stt_model: String,
    client: reqwest::Client,
}

impl OpenAiSpeech {
    pub fn new(base_url: &str, api_key: Option<String>) -> OpenAiSpeech {
        OpenAiSpeech {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            tts_model: "tts-1".into(),
            voice: "alloy".into(),
            stt_model: "whisper-1".into(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("a client with a timeout"),
        }
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let req = self.client.post(format!("{}{path}", self.base_url));
        match &self.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }
}

#[async_trait]
impl TextToSpeech for OpenAiSpeech {
    fn name(&self) -> &'static str {
        "openai"
    }

    async fn synthesize(&self, text: &str) -> Result<Vec<i16>, SpeechError> {
        let body =
            serde_json::json!({"model": self.tts_model, "input": text, "voice": self.voice, "response_format": "wav"});
        let resp = self.post("/audio/speech").json(&body).send().await.map_err(failed)?;
        if !resp.status().is_success() {
            return Err(failed(format!("speech server answered {}", resp.status())));
        }
        let bytes = resp.bytes().await.map_err(failed)?;
        let (samples, rate) = read_wav(&bytes)?;
        Ok(audio::to_i16(&audio::resample(
            &audio::to_f32(&samples),
            rate,
            audio::RATE,
        )))
    }
}

#[async_trait]
impl SpeechToText for OpenAiSpeech {
    fn name(&self) -> &'static str {
        "openai"
    }

    async fn transcribe(&self, samples_16k: Vec<f32>, keywords: &[String]) -> Result<String, SpeechError> {
        let wav = write_wav(&audio::to_i16(&samples_16k), 16000);
        let part = reqwest::multipart::Part::bytes(wav)
            .file_name("utterance.wav")
            .mime_str("audio/wav")
            .map_err(failed)?;
        let mut form = reqwest::multipart::Form::new()
            .part("file", part)
            .text("model", self.stt_model.clone())
            .text("response_format", "json");
        if !keywords.is_empty() {
            form = form.text("prompt", keywords.join(", "));
        }
        let resp = self
            .post("/audio/transcriptions")
            .multipart(form)
            .send()
            .await
            .map_err(failed)?;
        if !resp.status().is_success() {
            return Err(failed(format!("transcription server answered {}", resp.status())));
        }
        let v: serde_json::Value = resp.json().await.map_err(failed)?;
        Ok(v["text"].as_str().unwrap_or_default().trim().to_owned())
    }
}

/// Whisper in-process (CTranslate2). One model serves every call; decodes run on the blocking
/// pool, one at a time per model (two would only fight over the same cores).
#[cfg(feature = "whisper")]
pub struct Whisper {
    model: Arc<std::sync::Mutex<ct2rs::Whisper>>,
}

#[cfg(feature = "whisper")]
impl Whisper {
    pub fn load(dir: &std::path::Path, threads: usize) -> Result<Whisper, SpeechError> {
        let config = ct2rs::Config {
            num_threads_per_replica: threads,
            compute_type: ct2rs::ComputeType::INT8,
            ..Default::default()
        };
        let model = ct2rs::Whisper::new(dir, config).map_err(failed)?;
        Ok(Whisper {
            model: Arc::new(std::sync::Mutex::new(model)),
        })
    }
}

#[cfg(feature = "whisper")]
#[async_trait]
impl SpeechToText for Whisper {
    fn name(&self) -> &'static str {
        "whisper"
    }

    async fn transcribe(&self, samples_16k: Vec<f32>, _keywords: &[String]) -> Result<String, SpeechError> {
        let model = self.model.clone();
        tokio::task::spawn_blocking(move || {
            let options = ct2rs::WhisperOptions {
                beam_size: 1,
                max_length: 64,
                ..Default::default()
            };
            let model = model.lock().map_err(|_| failed("whisper model poisoned"))?;
            let texts = model
                .generate(&samples_16k, Some("en"), false, &options)
                .map_err(failed)?;
            Ok(clean_transcript(&texts.join(" ")))
        })
        .await
        .map_err(failed)?
    }
}

/// Whisper's text without special tokens (`<|notimestamps|>` leaks through) and without the
/// runaway repetition it falls into on unclear audio ("2-0-0-0-0-…"): a word or character group
/// repeated more than three times in a row is cut to its first.
pub fn clean_transcript(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<|") {
        out.push_str(&rest[..start]);
        rest = rest[start..].find("|>").map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    // Runs of one token (split at spaces and dashes/commas/dots, case aside) are cut.
    let mut kept: Vec<&str> = Vec::new();
    let (mut last, mut run, mut keeping) = (String::new(), 0, true);
    for t in out.split_inclusive([' ', '-', ',', '.']) {
        let key = t.trim_matches([' ', '-', ',', '.']).to_lowercase();
        if !key.is_empty() {
            run = if key == last { run + 1 } else { 0 };
            keeping = run < 3;
            last = key;
        }
        if keeping {
            kept.push(t);
        }
    }
    kept.concat()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_matches([' ', '-', ','])
        .to_owned()
}

/// Where the offline models are looked for.
pub fn default_speech_dir() -> PathBuf {
    std::env::var_os("VOXD_SPEECH_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/voxd/speech")))
        .unwrap_or_else(|| PathBuf::from("./speech"))
}

/// Where the other engines come from, for scripts that ask for one other than the server's.
#[derive(Clone, Default)]
pub struct EngineSource {
    pub speech_dir: PathBuf,
    /// An OpenAI-compatible speech server (`…/v1`) and its key.
    pub openai: Option<(String, Option<String>)>,
}

/// The engines a server runs live calls with, and why: each missing one has its reason, which a
/// web call placed without it is refused with. A script may name other engines
/// (`settings.stt` / `settings.tts`); those are loaded on first use and kept.
#[derive(Clone, Default)]
pub struct Engines {
    pub stt: Option<Arc<dyn SpeechToText>>,
    pub tts: Option<Arc<dyn TextToSpeech>>,
    pub stt_missing: Option<String>,
    pub tts_missing: Option<String>,
    pub source: EngineSource,
    loaded_stt: Loaded<dyn SpeechToText>,
    loaded_tts: Loaded<dyn TextToSpeech>,
}

/// Engines loaded for scripts that named them, by name.
type Loaded<E> = Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<E>>>>;

/// One engine for a call: the server's when none is named or the named one is the server's, else
/// the named one, loaded once and kept (the lock is held while it loads, so it loads once).
fn pick_one<E: ?Sized>(
    server: Option<&Arc<E>>,
    missing: &Option<String>,
    wanted: Option<&str>,
    name_of: impl Fn(&E) -> &'static str,
    loaded: &Loaded<E>,
    load: impl FnOnce(&str) -> Result<Arc<E>, String>,
) -> Result<Arc<E>, String> {
    let Some(name) = wanted.filter(|n| server.is_none_or(|e| name_of(e) != *n)) else {
        return server.cloned().ok_or_else(|| missing.clone().unwrap_or_default());
    };
    let mut loaded = loaded.lock().expect("engines");
    if let Some(e) = loaded.get(name) {
        return Ok(e.clone());
    }
    let e = load(name)?;
    loaded.insert(name.to_owned(), e.clone());
    Ok(e)
}

/// The engine pair a call speaks and listens with.
pub type Pair = (Arc<dyn SpeechToText>, Arc<dyn TextToSpeech>);

impl Engines {
    /// Why live calls cannot run with the server's engines, if they cannot.
    pub fn unavailable(&self) -> Option<String> {
        match (&self.stt_missing, &self.tts_missing) {
            (None, None) => None,
            (a, b) => Some(
                [a.as_deref(), b.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        }
    }

    /// The given pair as the server's engines (tests, embedders); others from `source`.
    pub fn with(stt: Arc<dyn SpeechToText>, tts: Arc<dyn TextToSpeech>, source: EngineSource) -> Engines {
        Engines {
            stt: Some(stt),
            tts: Some(tts),
            source,
            ..Engines::default()
        }
    }

    /// Chooses engines by name (`whisper`|`openai`|`none` for STT, `auto`|`piper`|`espeak`|
    /// `openai`|`none` for TTS), saying for each that is missing why.
    pub fn choose(stt: &str, tts: &str, source: EngineSource) -> Engines {
        let mut e = Engines::default();
        match load_stt(stt, &source) {
            Ok(engine) => e.stt = Some(engine),
            Err(why) => e.stt_missing = Some(why),
        }
        let tts = match tts {
            // The best voice installed: Piper when it is there, else espeak.
            "auto" => match load_tts("piper", &source) {
                Ok(p) => Ok(p),
                Err(why) => load_tts("espeak", &source)
                    .inspect(|_| tracing::info!(reason = %why, "no Piper voice: speaking with espeak-ng"))
                    .map_err(|no| format!("{why}; and {no}")),
            },
            other => load_tts(other, &source),
        };
        match tts {
            Ok(engine) => e.tts = Some(engine),
            Err(why) => e.tts_missing = Some(why),
        }
        e.source = source;
        e
    }

    /// The engines for a call whose script names `stt` / `tts` (None: the server's), or why
    /// there are none. Loading a named engine the first time reads its model (blocking).
    pub fn pick(&self, stt: Option<&str>, tts: Option<&str>) -> Result<Pair, String> {
        let stt = pick_one(
            self.stt.as_ref(),
            &self.stt_missing,
            stt,
            |e| e.name(),
            &self.loaded_stt,
            |name| load_stt(name, &self.source),
        );
        let tts = pick_one(
            self.tts.as_ref(),
            &self.tts_missing,
            tts,
            |e| e.name(),
            &self.loaded_tts,
            |name| load_tts(name, &self.source),
        );
        match (stt, tts) {
            (Ok(stt), Ok(tts)) => Ok((stt, tts)),
            (a, b) => Err([a.err(), b.err()].into_iter().flatten().collect::<Vec<_>>().join("; ")),
        }
    }
}

/// One speech-to-text engine by name.
fn load_stt(name: &str, source: &EngineSource) -> Result<Arc<dyn SpeechToText>, String> {
    match name {
        "openai" => match &source.openai {
            Some((url, key)) => Ok(Arc::new(OpenAiSpeech::new(url, key.clone()))),
            None => Err("STT `openai` needs speech_base_url".into()),
        },
        "whisper" => load_whisper(&source.speech_dir.join("whisper-tiny.en")),
        "none" => Err("STT is off (stt = none)".into()),
        other => Err(format!("unknown STT engine `{other}` (whisper, openai, none)")),
    }
}

/// One text-to-speech engine by name.
fn load_tts(name: &str, source: &EngineSource) -> Result<Arc<dyn TextToSpeech>, String> {
    match name {
        "openai" => match &source.openai {
            Some((url, key)) => Ok(Arc::new(OpenAiSpeech::new(url, key.clone()))),
            None => Err("TTS `openai` needs speech_base_url".into()),
        },
        "espeak" => Espeak::find()
            .map(|es| Arc::new(es) as Arc<dyn TextToSpeech>)
            .ok_or_else(|| "espeak-ng is not installed (apt install espeak-ng)".into()),
        "piper" => load_piper(&source.speech_dir),
        "none" => Err("TTS is off (tts = none)".into()),
        other => Err(format!(
            "unknown TTS engine `{other}` (auto, piper, espeak, openai, none)"
        )),
    }
}

/// The Piper voice `scripts/speech.sh install` puts in the speech dir (needs espeak-ng too).
pub fn load_piper(speech_dir: &std::path::Path) -> Result<Arc<dyn TextToSpeech>, String> {
    let model = speech_dir.join("piper/en_US-joe-medium.onnx");
    let runtime = speech_dir.join("onnxruntime/libonnxruntime.so");
    for needed in [&model, &runtime] {
        if !needed.exists() {
            return Err(format!(
                "no Piper voice: {} is missing (run scripts/speech.sh install)",
                needed.display()
            ));
        }
    }
    if Espeak::find().is_none() {
        return Err("Piper needs espeak-ng for phonemes (apt install espeak-ng)".into());
    }
    Piper::load(&runtime, &model)
        .map(|p| Arc::new(p) as Arc<dyn TextToSpeech>)
        .map_err(|e| e.to_string())
}

#[cfg(feature = "whisper")]
fn load_whisper(dir: &std::path::Path) -> Result<Arc<dyn SpeechToText>, String> {
    if !dir.join("model.bin").exists() {
        return Err(format!(
            "no whisper model in {} (run scripts/speech.sh install)",
            dir.display()
        ));
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
    Whisper::load(dir, threads)
        .map(|w| Arc::new(w) as Arc<dyn SpeechToText>)
        .map_err(|e| format!("whisper model in {} did not load: {e}", dir.display()))
}

#[cfg(not(feature = "whisper"))]
fn load_whisper(_dir: &std::path::Path) -> Result<Arc<dyn SpeechToText>, String> {
    Err("this voxd was built without the `whisper` feature (cargo build --features whisper; needs cmake)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_lose_special_tokens_and_runaway_repeats() {
        assert_eq!(clean_transcript("<|notimestamps|> Good for me."), "Good for me.");
        assert_eq!(clean_transcript(" 2-0-0-0-0-0-0-0-0-"), "2-0-0-0");
        assert_eq!(clean_transcript("No, no, no, no, no, no, no, no,"), "No, no, no");
        assert_eq!(clean_transcript(" Yes, please."), "Yes, please.");
    }

    #[test]
    fn wav_round_trips() {
        let samples: Vec<i16> = (0..100).map(|i| i * 300 - 15000).collect();
        let (back, rate) = read_wav(&write_wav(&samples, 8000)).unwrap();
        assert_eq!((back, rate), (samples, 8000));
        assert!(read_wav(b"RIFF....WAVEjunk").is_err());
        assert!(read_wav(b"not a wav").is_err());
    }
}
