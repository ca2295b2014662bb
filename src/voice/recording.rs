//! Recordings of live calls: the callee on the left channel, the assistant on the right, at the
//! line's rate, FLAC-compressed (lossless, about half of WAV for speech; `<audio>` plays it in
//! Chromium and Firefox), one file per call in the data dir.

use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::audio::RATE;

/// Both sides of a call as they happened, sample-aligned by the line's 20 ms clock.
#[derive(Default)]
pub struct Recorder {
    callee: Vec<i16>,
    assistant: Vec<i16>,
}

/// Longest recording kept (an hour); audio past it is not recorded.
const MAX_SAMPLES: usize = RATE as usize * 3600;

impl Recorder {
    pub fn callee(&mut self, frame: &[i16]) {
        if self.callee.len() < MAX_SAMPLES {
            // A gap (packets lost) is silence, so both sides stay aligned.
            if self.callee.len() + frame.len() < self.assistant.len() {
                self.callee.resize(self.assistant.len() - frame.len(), 0);
            }
            self.callee.extend_from_slice(frame);
        }
    }

    pub fn assistant(&mut self, frame: &[i16]) {
        if self.assistant.len() < MAX_SAMPLES {
            self.assistant.extend_from_slice(frame);
        }
    }

    pub fn seconds(&self) -> f64 {
        self.callee.len().max(self.assistant.len()) as f64 / f64::from(RATE)
    }

    /// FLAC bytes of the two channels.
    pub fn flac(&self) -> Result<Vec<u8>, String> {
        use flacenc::{bitsink::ByteSink, component::BitRepr, error::Verify, source::MemSource};
        let n = self.callee.len().max(self.assistant.len());
        let mut interleaved = Vec::with_capacity(n * 2);
        for i in 0..n {
            interleaved.push(i32::from(self.callee.get(i).copied().unwrap_or(0)));
            interleaved.push(i32::from(self.assistant.get(i).copied().unwrap_or(0)));
        }
        let config = flacenc::config::Encoder::default()
            .into_verified()
            .map_err(|(_, e)| format!("{e:?}"))?;
        let source = MemSource::from_samples(&interleaved, 2, 16, RATE as usize);
        let stream =
            flacenc::encode_with_fixed_block_size(&config, source, config.block_size).map_err(|e| format!("{e:?}"))?;
        let mut sink = ByteSink::new();
        stream.write(&mut sink).map_err(|e| format!("{e:?}"))?;
        Ok(sink.into_inner())
    }
}

/// Where a call's recording lives.
pub fn path(dir: &Path, call_id: Uuid) -> PathBuf {
    dir.join(format!("{call_id}.flac"))
}

/// Deletes a call's recording; whether there was one. A failure other than "not there" is
/// logged and counts as not deleted.
pub fn remove(dir: &Path, call_id: Uuid) -> bool {
    match std::fs::remove_file(path(dir, call_id)) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::error!(%call_id, error = %e, "recording not deleted");
            false
        }
    }
}

/// Writes the recording (through a temporary file, so a reader never sees half of one).
pub fn save(dir: &Path, call_id: Uuid, recorder: &Recorder) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let bytes = recorder.flac()?;
    let target = path(dir, call_id);
    let tmp = target.with_extension("flac.part");
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &target).map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_both_sides_as_flac() {
        let mut r = Recorder::default();
        let tone: Vec<i16> = (0..160).map(|i| ((i as f32 / 10.0).sin() * 8000.0) as i16).collect();
        for _ in 0..100 {
            r.assistant(&tone);
        }
        // The callee joined late: the gap before is silence.
        r.callee(&tone);
        assert_eq!(r.callee.len(), r.assistant.len());
        let flac = r.flac().unwrap();
        assert_eq!(&flac[..4], b"fLaC");
        assert!(flac.len() < 100 * 160 * 4, "compressed: {} bytes", flac.len());
        assert!((r.seconds() - 2.0).abs() < 0.01);
    }
}
