//! Audio as the pipeline carries it: 16-bit mono PCM in 20 ms frames at 8 kHz (the telephone's
//! rate: G.711 on trunks and PCMU in browsers), G.711 µ-law both ways, and resampling to and from
//! the rates of the speech engines (16 kHz for Whisper, the TTS voice's own).

/// Samples per second on the line.
pub const RATE: u32 = 8000;
/// One 20 ms frame at [`RATE`].
pub const FRAME: usize = 160;
/// Milliseconds per frame.
pub const FRAME_MS: u64 = 20;

/// G.711 µ-law: one byte from a 16-bit sample.
pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let exponent = (7 - (s.leading_zeros() as i32 - 17)).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// G.711 µ-law: the 16-bit sample of one byte.
pub fn ulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let sign = b & 0x80;
    let exponent = (b >> 4) & 0x07;
    let mantissa = i32::from(b & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// G.711 A-law: one byte from a 16-bit sample (13-bit segments, even bits inverted).
pub fn alaw_encode(sample: i16) -> u8 {
    let s = i32::from(sample) >> 3;
    let (sign, magnitude) = if s >= 0 { (0x80, s) } else { (0x00, -s - 1) };
    let magnitude = magnitude.min(0x0FFF);
    let byte = if magnitude < 32 {
        magnitude >> 1
    } else {
        // The segment: where the highest set bit is, 1 for 32..63 up to 7 for 2048..4095.
        let segment = 31 - magnitude.leading_zeros() as i32 - 4;
        (segment << 4) | ((magnitude >> segment) & 0x0F)
    };
    ((byte | sign) ^ 0x55) as u8
}

/// G.711 A-law: the 16-bit sample of one byte.
pub fn alaw_decode(byte: u8) -> i16 {
    let b = i32::from(byte ^ 0x55);
    let segment = (b >> 4) & 0x07;
    let mantissa = b & 0x0F;
    let magnitude = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    if b & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Resamples a whole mono buffer (a sentence of speech, an utterance) between two rates. The
/// tail is padded with silence (rubato's partial-chunk path refuses a short last chunk).
pub fn resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    use rubato::{FftFixedIn, Resampler};
    if from == to || samples.is_empty() {
        return samples.to_vec();
    }
    let Ok(mut r) = FftFixedIn::<f32>::new(from as usize, to as usize, 1024, 2, 1) else {
        return Vec::new();
    };
    let (chunk, delay) = (r.input_frames_next(), r.output_delay());
    let want = (samples.len() as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
    let mut out = Vec::with_capacity(want + delay + 2 * chunk);
    let (mut buf, mut pos) = (vec![0f32; chunk], 0usize);
    while out.len() < want + delay {
        let n = samples.len().saturating_sub(pos).min(chunk);
        buf[..n].copy_from_slice(&samples[pos..pos + n]);
        buf[n..].fill(0.0);
        pos += n;
        match r.process(std::slice::from_ref(&buf), None) {
            Ok(v) => out.extend_from_slice(&v[0]),
            Err(_) => break,
        }
    }
    out.drain(..delay.min(out.len()));
    out.truncate(want);
    out
}

pub fn to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| f32::from(s) / 32768.0).collect()
}

pub fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples.iter().map(|&s| (s.clamp(-1.0, 1.0) * 32767.0) as i16).collect()
}

/// Root mean square of a frame, 0..1: a cheap "is anything there".
pub fn rms(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    ((sum / samples.len() as f64).sqrt() / 32768.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_law_round_trips_within_its_step() {
        for s in (-32768i32..=32767).step_by(7) {
            let s = s as i16;
            let back = alaw_decode(alaw_encode(s));
            // The step doubles per segment: 16 at the bottom, 1024 at the top; the error is at
            // most one step, and a sixteenth of the sample above the first segments.
            let error = (i32::from(back) - i32::from(s)).abs();
            assert!(error <= 16 || error <= i32::from(s).abs() / 16 + 16, "{s} -> {back}");
            assert_eq!(alaw_encode(back), alaw_encode(s), "{s}");
        }
        // Reference points of G.711: silence is 0xD5 / 0x55.
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
    }

    #[test]
    fn ulaw_round_trips_within_its_step() {
        for s in [-32000i16, -1000, -8, 0, 8, 1000, 12345, 32000] {
            let back = ulaw_decode(ulaw_encode(s));
            let step = (i32::from(s).abs() / 16).max(8);
            assert!((i32::from(back) - i32::from(s)).abs() <= step, "{s} → {back}");
        }
        // Known points of the G.711 table.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
    }

    #[test]
    fn resampling_keeps_duration_and_pitch() {
        // One second of 440 Hz at 22050 Hz, to 8 kHz.
        let tone: Vec<f32> = (0..22050)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 22050.0).sin() * 0.5)
            .collect();
        let out = resample(&tone, 22050, 8000);
        assert_eq!(out.len(), 8000);
        // Zero crossings of 440 Hz over a second: about 880.
        let crossings = out.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        assert!((860..=900).contains(&crossings), "{crossings}");
        assert_eq!(resample(&out, 8000, 16000).len(), 16000);
    }
}
