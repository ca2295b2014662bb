//! Browser media: str0m as an ICE-lite answerer with DTLS-SRTP, one UDP port per call from the
//! configured range. voxd has a reachable address, so it needs no STUN of its own: ICE-lite
//! offers one host candidate (the public address when one is set) and learns the browser's
//! address from its connectivity checks. Audio is Opus when the browser offers it (every browser
//! does: less bandwidth, and its decoder conceals lost packets) and voxd is built with the `opus`
//! feature (libopus, needs Debian's libopus-dev or cmake), PCMU (G.711 µ-law) otherwise;
//! either way the pipeline hears and speaks the line rate (8 kHz). RFC 4733 telephone events
//! arrive as DTMF.

use std::{
    net::{IpAddr, SocketAddr},
    ops::RangeInclusive,
    time::{Duration, Instant},
};

use str0m::{
    change::SdpOffer,
    format::{Codec, CodecExtra, FormatParams},
    media::{Frequency, MediaKind, MediaTime, Mid},
    net::{Protocol, Receive},
    Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig,
};
use tokio::{net::UdpSocket, sync::mpsc};

use super::{
    audio,
    pipeline::{Inbound, Outbound},
};

/// Where media sockets are opened and what address the browser is told.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// The address media sockets bind to.
    pub bind: IpAddr,
    /// The address put in ICE candidates (behind NAT: the public one); default `bind`.
    pub public: Option<IpAddr>,
    pub ports: RangeInclusive<u16>,
    /// ICE and DTLS must be up this long after the answer, or the call is dropped.
    pub connect_timeout: Duration,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            bind: IpAddr::from([127, 0, 0, 1]),
            public: None,
            ports: 40000..=40999,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A browser's media, answered: the SDP answer to send back, the sender the pipeline plays into,
/// and what the signalling must carry (the hang-up becomes a BYE, transcript lines INFOs).
pub struct Answered {
    pub sdp: String,
    pub outbound: mpsc::Sender<Outbound>,
    pub notices: mpsc::UnboundedReceiver<Notice>,
}

/// What the pipeline tells the far end through signalling rather than media.
#[derive(Debug)]
pub enum Notice {
    HungUp,
    Transcript {
        role: &'static str,
        text: String,
    },
    /// Hand the call over (SIP REFER), replying whether the far end took it.
    Transfer {
        to: String,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
}

pub(crate) async fn bind(settings: &MediaSettings) -> Result<UdpSocket, String> {
    let (start, end) = (*settings.ports.start(), *settings.ports.end());
    if start > end {
        return Err("media port range is empty".into());
    }
    let span = u32::from(end - start) + 1;
    let offset = rand::random::<u32>() % span;
    for i in 0..span.min(64) {
        let port = start + ((offset + i) % span) as u16;
        if let Ok(s) = UdpSocket::bind(SocketAddr::new(settings.bind, port)).await {
            return Ok(s);
        }
    }
    Err(format!(
        "no free UDP port in {start}-{end} on {} (64 tried)",
        settings.bind
    ))
}

/// Answers the browser's offer and starts moving its media; frames and failures go to `inbound`.
pub async fn answer(offer: &str, settings: &MediaSettings, inbound: mpsc::Sender<Inbound>) -> Result<Answered, String> {
    let offer = SdpOffer::from_sdp_string(offer).map_err(|e| format!("bad SDP offer: {e}"))?;
    let socket = bind(settings).await?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let mut config = RtcConfig::new()
        .set_ice_lite(true)
        .clear_codecs()
        .enable_opus(cfg!(feature = "opus"), false)
        .enable_pcmu(true, false);
    // Telephone events at both clocks: browsers send them at the clock of the audio codec in use.
    for (pt, clock) in [(101, Frequency::EIGHT_KHZ), (126, Frequency::FORTY_EIGHT_KHZ)] {
        config
            .codec_config()
            .add_config(pt.into(), None, Codec::Tele, clock, None, FormatParams::default());
    }
    let mut rtc = config.build(Instant::now());
    let advertised = SocketAddr::new(settings.public.unwrap_or(settings.bind), local.port());
    let candidate = Candidate::host(advertised, "udp").map_err(|e| format!("bad media address {advertised}: {e}"))?;
    rtc.add_local_candidate(candidate);
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| format!("cannot answer the offer: {e}"))?;
    let sdp = answer.to_sdp_string();
    if !sdp.contains("opus/48000") && !sdp.contains("PCMU") {
        return Err("the offer has neither Opus nor PCMU audio (voxd speaks one of them to browsers)".into());
    }
    let voice = Voice::new()?;
    let (outbound, out_rx) = mpsc::channel(64);
    let (notices_tx, notices) = mpsc::unbounded_channel();
    let peer = Peer {
        rtc,
        socket,
        local,
        inbound,
        mid: None,
        connected: false,
        sent: 0,
        last_dtmf: None,
        voice,
    };
    tokio::spawn(peer.run(out_rx, notices_tx, settings.connect_timeout));
    Ok(Answered { sdp, outbound, notices })
}

struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
    mid: Option<Mid>,
    connected: bool,
    /// Samples sent so far: the RTP clock of the next frame.
    sent: u64,
    /// The last telephone event reported (its RTP time), so repeats of its end are not new keys.
    last_dtmf: Option<MediaTime>,
    voice: Voice,
}

#[cfg(feature = "opus")]
/// Opus at the line rate, both ways. libopus resamples inside: the browser's 48 kHz stream
/// decodes straight to 8 kHz, and 8 kHz frames encode as narrowband Opus the browser plays.
struct Voice {
    encoder: opus::Encoder,
    decoder: opus::Decoder,
    /// Decoded samples not yet handed on as a whole frame (Opus packets may be 10 to 120 ms).
    pending: Vec<i16>,
}

#[cfg(feature = "opus")]
impl Voice {
    fn new() -> Result<Self, String> {
        let encoder = opus::Encoder::new(audio::RATE, opus::Channels::Mono, opus::Application::Voip)
            .map_err(|e| format!("opus encoder: {e}"))?;
        let decoder =
            opus::Decoder::new(audio::RATE, opus::Channels::Mono).map_err(|e| format!("opus decoder: {e}"))?;
        Ok(Voice {
            encoder,
            decoder,
            pending: Vec::new(),
        })
    }

    /// One packet's audio as line-rate frames; a packet that does not decode is concealed
    /// (libopus fills the gap) rather than dropped, so the callee's timing holds.
    fn decode(&mut self, packet: &[u8]) -> Vec<Vec<i16>> {
        // The longest Opus packet: 120 ms.
        let mut buf = [0i16; audio::RATE as usize * 120 / 1000];
        let n = match self.decoder.decode(packet, &mut buf, false) {
            Ok(n) => n,
            Err(_) => self.decoder.decode(&[], &mut buf[..audio::FRAME], false).unwrap_or(0),
        };
        self.pending.extend_from_slice(&buf[..n]);
        let whole = self.pending.len() / audio::FRAME * audio::FRAME;
        self.pending
            .drain(..whole)
            .collect::<Vec<_>>()
            .chunks(audio::FRAME)
            .map(<[i16]>::to_vec)
            .collect()
    }

    fn encode(&mut self, frame: &[i16]) -> Option<Vec<u8>> {
        self.encoder.encode_vec(frame, 400).ok()
    }
}

/// Built without the `opus` feature, Opus is never negotiated and this is never fed.
#[cfg(not(feature = "opus"))]
struct Voice;

#[cfg(not(feature = "opus"))]
impl Voice {
    fn new() -> Result<Self, String> {
        Ok(Voice)
    }

    fn decode(&mut self, _packet: &[u8]) -> Vec<Vec<i16>> {
        Vec::new()
    }

    fn encode(&mut self, _frame: &[i16]) -> Option<Vec<u8>> {
        None
    }
}

enum Ended {
    Dropped(String),
    /// The pipeline hung up or went away.
    Local,
}

impl Peer {
    async fn run(
        mut self,
        mut out: mpsc::Receiver<Outbound>,
        notices: mpsc::UnboundedSender<Notice>,
        connect_timeout: Duration,
    ) {
        let started = Instant::now();
        let ended = self.drive(&mut out, &notices, started + connect_timeout).await;
        self.rtc.disconnect();
        // Let the DTLS close go out.
        let _ = self.flush().await;
        match ended {
            Ended::Dropped(why) => {
                let _ = self.inbound.send(Inbound::Dropped(why)).await;
            }
            Ended::Local => {
                let _ = notices.send(Notice::HungUp);
            }
        }
    }

    /// Sends what str0m has to send; the time it next wants to be woken.
    async fn flush(&mut self) -> Result<Instant, Ended> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => return Ok(t),
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(e)) => self.event(e).await?,
                Err(e) => return Err(Ended::Dropped(format!("media failed: {e}"))),
            }
        }
    }

    async fn event(&mut self, e: Event) -> Result<(), Ended> {
        match e {
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                return Err(Ended::Dropped("ICE disconnected".into()))
            }
            Event::Connected => self.connected = true,
            Event::MediaAdded(m) if m.kind == MediaKind::Audio => self.mid = Some(m.mid),
            Event::MediaData(d) => match d.params.spec().codec {
                Codec::Opus => {
                    for frame in self.voice.decode(&d.data) {
                        let _ = self.inbound.try_send(Inbound::Audio(frame));
                    }
                }
                Codec::PCMU => {
                    let frame: Vec<i16> = d.data.iter().map(|&b| audio::ulaw_decode(b)).collect();
                    let _ = self.inbound.try_send(Inbound::Audio(frame));
                }
                Codec::Tele => {
                    if let CodecExtra::Tele(ev) = d.codec_extra {
                        if ev.end && self.last_dtmf != Some(d.time) {
                            self.last_dtmf = Some(d.time);
                            if let Some(key) = dtmf_key(ev.event) {
                                let _ = self.inbound.send(Inbound::Dtmf(key)).await;
                            }
                        }
                    }
                }
                _ => {}
            },
            Event::Closed => return Err(Ended::Dropped("the browser closed the media".into())),
            _ => {}
        }
        Ok(())
    }

    async fn drive(
        &mut self,
        out: &mut mpsc::Receiver<Outbound>,
        notices: &mpsc::UnboundedSender<Notice>,
        connect_by: Instant,
    ) -> Ended {
        let mut buf = vec![0u8; 2048];
        loop {
            let wake = match self.flush().await {
                Ok(t) => t,
                Err(e) => return e,
            };
            if !self.rtc.is_alive() {
                return Ended::Dropped("media closed".into());
            }
            if !self.connected && Instant::now() > connect_by {
                return Ended::Dropped("ICE/DTLS did not connect in time".into());
            }
            let wake = wake.min(Instant::now() + Duration::from_millis(500));
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, source)) = r else { continue };
                    let Ok(contents) = buf[..n].try_into() else { continue };
                    let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: self.local, contents });
                    if let Err(e) = self.rtc.handle_input(input) {
                        return Ended::Dropped(format!("media failed: {e}"));
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    if let Err(e) = self.rtc.handle_input(Input::Timeout(Instant::now())) {
                        return Ended::Dropped(format!("media failed: {e}"));
                    }
                }
                o = out.recv() => match o {
                    Some(Outbound::Audio(frame)) => self.send(&frame),
                    Some(Outbound::Transcript { role, text }) => {
                        let _ = notices.send(Notice::Transcript { role, text });
                    }
                    Some(Outbound::Clear) => {}
                    Some(Outbound::Transfer { reply, .. }) => {
                        let _ = reply.send(Err("a web call cannot be handed over".into()));
                    }
                    Some(Outbound::HangUp) | None => return Ended::Local,
                },
            }
        }
    }

    fn send(&mut self, frame: &[i16]) {
        let (true, Some(mid)) = (self.connected, self.mid) else {
            return;
        };
        let Some(writer) = self.rtc.writer(mid) else { return };
        // Opus when the answer carries it; its RTP clock is always 48 kHz.
        let Some((pt, codec)) = [Codec::Opus, Codec::PCMU].into_iter().find_map(|c| {
            writer
                .payload_params()
                .find(|p| p.spec().codec == c)
                .map(|p| (p.pt(), c))
        }) else {
            return;
        };
        let (bytes, time) = if codec == Codec::Opus {
            let Some(packet) = self.voice.encode(frame) else { return };
            let time = MediaTime::new(self.sent * 6, Frequency::FORTY_EIGHT_KHZ);
            (packet, time)
        } else {
            let bytes = frame.iter().map(|&s| audio::ulaw_encode(s)).collect();
            (bytes, MediaTime::new(self.sent, Frequency::EIGHT_KHZ))
        };
        self.sent += frame.len() as u64;
        if let Err(e) = writer.write(pt, Instant::now(), time, bytes) {
            tracing::debug!(error = %e, "audio frame not sent");
        }
    }
}

/// RFC 4733 event codes of the keypad.
fn dtmf_key(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        _ => None,
    }
}
