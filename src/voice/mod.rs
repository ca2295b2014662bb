//! Live voice: calls that carry audio rather than text.
//!
//! - [`pipeline`]: a [`Leg`](crate::carrier::Leg) over audio frames: VAD, end of turn, speech to
//!   text, text to speech, barge-in, playout, recording. Transport-agnostic.
//! - [`webrtc`]: a browser's media (str0m, ICE-lite, DTLS-SRTP, Opus or PCMU).
//! - [`gateway`], [`sip`], [`digest`]: SIP over WebSocket for browser softphones, on the API port.
//! - [`speech`]: the STT and TTS engines; [`keywords`]: the script's terms spelled right in
//!   transcripts; [`audio`]: frames, G.711, resampling;
//!   [`recording`]: both sides to FLAC.

pub mod amd;
pub mod audio;
pub mod digest;
pub mod gateway;
pub mod keywords;
pub mod pipeline;
pub mod recording;
pub mod rtp;
pub mod sip;
pub mod speech;
pub mod trunk;
pub mod trunk_carrier;
pub mod twilio;
pub mod webrtc;
