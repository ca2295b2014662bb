//! Plain RTP (RFC 3550) for SIP trunks: G.711 µ-law at 8 kHz, 20 ms packets as the pipeline plays
//! them (it paces its frames), RFC 4733 telephone events in, symmetric RTP (packets go back to
//! where the far end's come from once they arrive; to the SDP's address before that), and a
//! media timeout. Our own code: a 12-byte header and µ-law are smaller than any crate's API.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use tokio::{net::UdpSocket, sync::mpsc};

use super::{
    audio::{self, FRAME},
    pipeline::{Inbound, Outbound},
    webrtc::{self, MediaSettings, Notice},
};

pub const PCMU: u8 = 0;
pub const PCMA: u8 = 8;

/// The G.711 law a call's audio travels in, agreed in the SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// µ-law (North America, Japan; what voxd offers first).
    Pcmu,
    /// A-law (Europe, Australia and most of the world's trunks).
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => PCMU,
            Codec::Pcma => PCMA,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    fn encode(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => audio::ulaw_encode(sample),
            Codec::Pcma => audio::alaw_encode(sample),
        }
    }
}
pub const TELEPHONE_EVENT: u8 = 101;

/// A media socket, opened for one call before its SDP is written.
pub struct Media {
    socket: UdpSocket,
    pub local: SocketAddr,
    /// The address written in our SDP.
    pub advertised: IpAddr,
}

pub async fn open(settings: &MediaSettings) -> Result<Media, String> {
    let socket = webrtc::bind(settings).await?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    Ok(Media {
        socket,
        local,
        advertised: settings.public.unwrap_or(settings.bind),
    })
}

/// Our SDP (an offer: both laws, µ-law first; an answer: the one agreed) with telephone events.
pub fn sdp(address: IpAddr, port: u16, session: u64, codecs: &[Codec]) -> String {
    let ip = if address.is_ipv6() { "IP6" } else { "IP4" };
    let types: Vec<String> = codecs.iter().map(|c| c.payload_type().to_string()).collect();
    let maps: String = codecs
        .iter()
        .map(|c| format!("a=rtpmap:{} {}/8000\r\n", c.payload_type(), c.name()))
        .collect();
    format!(
        "v=0\r\no=voxd {session} {session} IN {ip} {address}\r\ns=voxd\r\nc=IN {ip} {address}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {} {TELEPHONE_EVENT}\r\n{maps}\
         a=rtpmap:{TELEPHONE_EVENT} telephone-event/8000\r\na=fmtp:{TELEPHONE_EVENT} 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
        types.join(" ")
    )
}

/// What voxd offers on outbound calls.
pub const OFFER: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

/// The far end's audio address, and the first G.711 law in its list (its preference), from its SDP.
pub fn remote(sdp: &str) -> Result<(SocketAddr, Codec), String> {
    let mut session_ip: Option<IpAddr> = None;
    let mut media_ip: Option<IpAddr> = None;
    let mut port: Option<u16> = None;
    let mut codec = None;
    let mut in_audio = false;
    for line in sdp.lines().map(str::trim) {
        if let Some(c) = line.strip_prefix("c=") {
            let ip = c
                .split_whitespace()
                .nth(2)
                .and_then(|a| a.split('/').next()?.parse().ok());
            if in_audio {
                media_ip = ip;
            } else {
                session_ip = ip;
            }
        } else if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            in_audio = parts.next() == Some("audio");
            if in_audio {
                port = parts.next().and_then(|p| p.parse().ok());
                codec = parts.skip(1).find_map(|pt| match pt {
                    "0" => Some(Codec::Pcmu),
                    "8" => Some(Codec::Pcma),
                    _ => None,
                });
            }
        }
    }
    let ip = media_ip.or(session_ip).ok_or("the SDP has no connection address")?;
    let port = port.filter(|p| *p != 0).ok_or("the SDP has no audio stream")?;
    let codec = codec.ok_or("the far end offers neither PCMU nor PCMA (G.711)")?;
    Ok((SocketAddr::new(ip, port), codec))
}

/// The RFC 4733 event codes of the keypad.
fn dtmf_key(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

struct Header {
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    /// Where the payload starts.
    offset: usize,
}

fn parse(packet: &[u8]) -> Option<Header> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(packet[0] & 0x0f);
    let mut offset = 12 + 4 * csrc;
    if packet[0] & 0x10 != 0 {
        // Header extension: 4 bytes of profile and length, then length words.
        let ext = packet.get(offset + 2..offset + 4)?;
        offset += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    (offset <= packet.len()).then(|| Header {
        payload_type: packet[1] & 0x7f,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        offset,
    })
}

/// Packets a gap may wait for: 3 × 20 ms.
const REORDER_DEPTH: usize = 3;

/// A small jitter buffer for audio packets: in order, a packet plays at once; after a gap it
/// waits (up to [`REORDER_DEPTH`] packets) for the missing one, so a packet overtaken on the way
/// still plays in its place; a gap that does not fill is skipped as loss, and a packet older than
/// what has played is dropped. Sequence numbers wrap.
#[derive(Default)]
struct Reorder {
    next: Option<u16>,
    held: std::collections::BTreeMap<u16, Vec<u8>>,
    /// Late packets in a row: many mean the far end started its numbering again.
    late: u32,
}

impl Reorder {
    /// Takes one packet's payload; the payloads now ready, in sequence order.
    fn push(&mut self, sequence: u16, payload: &[u8]) -> Vec<Vec<u8>> {
        let next = *self.next.get_or_insert(sequence);
        // Ahead of `next` (0 = the one expected) or behind it, modulo 2^16.
        let ahead = sequence.wrapping_sub(next);
        if ahead >= 0x8000 {
            self.late += 1;
            if self.late > 25 {
                // Half a second of "late" packets is a new numbering: follow it.
                *self = Reorder::default();
                return self.push(sequence, payload);
            }
            return Vec::new();
        }
        self.late = 0;
        self.held.insert(ahead, payload.to_vec());
        let mut ready = Vec::new();
        loop {
            if let Some(p) = self.held.remove(&0) {
                ready.push(p);
                self.advance(1);
            } else if self.held.len() > REORDER_DEPTH {
                // Give up on the gap: jump to the oldest packet held.
                let skip = *self.held.keys().next().expect("held is not empty");
                self.advance(skip);
            } else {
                return ready;
            }
        }
    }

    /// Moves `next` on by `by`, re-keying what is held.
    fn advance(&mut self, by: u16) {
        self.next = self.next.map(|n| n.wrapping_add(by));
        self.held = std::mem::take(&mut self.held)
            .into_iter()
            .map(|(k, v)| (k - by, v))
            .collect();
    }
}

struct Sender {
    codec: Codec,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    first: bool,
}

impl Sender {
    fn packet(&mut self, frame: &[i16]) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + frame.len());
        p.push(0x80);
        p.push(if self.first { 0x80 } else { 0 } | self.codec.payload_type());
        p.extend_from_slice(&self.sequence.to_be_bytes());
        p.extend_from_slice(&self.timestamp.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend(frame.iter().map(|&s| self.codec.encode(s)));
        self.first = false;
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(frame.len() as u32);
        p
    }
}

/// Starts moving the call's media with the far end at `remote`: its audio and keys go to
/// `inbound`, the pipeline's frames come in on the returned sender; the pipeline's hang-up comes
/// back as a notice for the signalling to send its BYE.
/// What a benchmark watches of live trunk calls: turn latencies, and the gaps between the RTP
/// packets voxd sends (microseconds; 20 ms when on time).
#[derive(Default)]
pub struct Probe {
    pub timings: std::sync::Arc<std::sync::Mutex<Vec<super::pipeline::TurnTiming>>>,
    pub send_gaps_us: std::sync::Mutex<Vec<u32>>,
}

pub fn start(
    media: Media,
    (remote, codec): (SocketAddr, Codec),
    inbound: mpsc::Sender<Inbound>,
    timeout: Duration,
    probe: Option<std::sync::Arc<Probe>>,
) -> (mpsc::Sender<Outbound>, mpsc::UnboundedReceiver<Notice>) {
    let (outbound, mut out) = mpsc::channel::<Outbound>(64);
    let (notices_tx, notices) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let socket = media.socket;
        let mut peer = remote;
        let mut sender = Sender {
            codec,
            ssrc: rand::random(),
            sequence: rand::random(),
            timestamp: rand::random(),
            first: true,
        };
        let mut last_event: Option<u32> = None;
        let mut reorder = Reorder::default();
        let mut pending: Vec<i16> = Vec::with_capacity(FRAME);
        let mut buf = vec![0u8; 2048];
        let mut heard = tokio::time::Instant::now();
        let mut last_sent: Option<std::time::Instant> = None;
        loop {
            tokio::select! {
                r = socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    let Some(h) = parse(&buf[..n]) else { continue };
                    // Symmetric RTP: answer where the audio comes from (NAT on the far side).
                    peer = from;
                    heard = tokio::time::Instant::now();
                    let payload = &buf[h.offset..n];
                    match h.payload_type {
                        // Either law is understood, whichever was agreed.
                        PCMU | PCMA => {
                            let decode = if h.payload_type == PCMU { audio::ulaw_decode } else { audio::alaw_decode };
                            for p in reorder.push(h.sequence, payload) {
                                pending.extend(p.iter().map(|&b| decode(b)));
                            }
                            while pending.len() >= FRAME {
                                let frame: Vec<i16> = pending.drain(..FRAME).collect();
                                let _ = inbound.try_send(Inbound::Audio(frame));
                            }
                        }
                        // The end bit, once per event (its end packet is sent three times).
                        TELEPHONE_EVENT
                            if payload.len() >= 4 && payload[1] & 0x80 != 0 && last_event != Some(h.timestamp) =>
                        {
                            last_event = Some(h.timestamp);
                            if let Some(key) = dtmf_key(payload[0]) {
                                let _ = inbound.send(Inbound::Dtmf(key)).await;
                            }
                        }
                        _ => {}
                    }
                }
                o = out.recv() => match o {
                    Some(Outbound::Audio(frame)) => {
                        let _ = socket.send_to(&sender.packet(&frame), peer).await;
                        if let Some(p) = &probe {
                            let now = std::time::Instant::now();
                            if let (Some(last), Ok(mut gaps)) = (last_sent, p.send_gaps_us.lock()) {
                                gaps.push(now.duration_since(last).as_micros() as u32);
                            }
                            last_sent = Some(now);
                        }
                    }
                    Some(Outbound::Transcript { .. } | Outbound::Clear) => {}
                    Some(Outbound::Transfer { to, reply }) => {
                        let _ = notices_tx.send(Notice::Transfer { to, reply });
                    }
                    Some(Outbound::HangUp) | None => {
                        let _ = notices_tx.send(Notice::HungUp);
                        return;
                    }
                },
                _ = tokio::time::sleep_until(heard + timeout) => {
                    let why = format!("no RTP from the far end for {} s", timeout.as_secs());
                    let _ = inbound.send(Inbound::Dropped(why)).await;
                    return;
                }
            }
        }
    });
    (outbound, notices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn played(r: &mut Reorder, packets: &[u16]) -> Vec<u16> {
        packets
            .iter()
            .flat_map(|&seq| r.push(seq, &seq.to_be_bytes()))
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect()
    }

    #[test]
    fn the_jitter_buffer_reorders_skips_losses_and_drops_late_packets() {
        // In order: at once.
        assert_eq!(played(&mut Reorder::default(), &[7, 8, 9]), [7, 8, 9]);
        // Overtaken: 11 waits for 10, then both play in order.
        assert_eq!(played(&mut Reorder::default(), &[9, 11, 10, 12]), [9, 10, 11, 12]);
        // Lost: 21 never comes; after REORDER_DEPTH more the gap is skipped; 21 late is dropped.
        assert_eq!(
            played(&mut Reorder::default(), &[20, 22, 23, 24, 25, 21, 26]),
            [20, 22, 23, 24, 25, 26]
        );
        // Across the wrap of the sequence number.
        assert_eq!(
            played(&mut Reorder::default(), &[65534, 0, 65535, 1]),
            [65534, 65535, 0, 1]
        );
        // A far end that starts its numbering again is followed after half a second.
        let mut r = Reorder::default();
        let restarted: Vec<u16> = (1000..1010).chain(100..140).collect();
        let out = played(&mut r, &restarted);
        assert_eq!(&out[..10], (1000..1010).collect::<Vec<_>>().as_slice());
        assert_eq!(out[10..], (125..140).collect::<Vec<_>>());
    }

    #[test]
    fn the_far_ends_audio_address_comes_from_its_sdp() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                   m=audio 4000 RTP/AVP 8 0 101\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:0 PCMU/8000\r\n";
        assert_eq!(remote(sdp).unwrap(), ("10.0.0.2:4000".parse().unwrap(), Codec::Pcma));
        let mu_first = sdp.replace("RTP/AVP 8 0 101", "RTP/AVP 0 8 101");
        assert_eq!(remote(&mu_first).unwrap().1, Codec::Pcmu);
        let neither = sdp.replace("RTP/AVP 8 0 101", "RTP/AVP 9 101");
        assert!(remote(&neither).unwrap_err().contains("PCMA"));
        let ours = super::sdp("127.0.0.1".parse().unwrap(), 40002, 7, &OFFER);
        assert!(
            ours.contains("RTP/AVP 0 8 101") && ours.contains("a=rtpmap:8 PCMA/8000"),
            "{ours}"
        );
        assert_eq!(
            remote(&ours).unwrap(),
            ("127.0.0.1:40002".parse().unwrap(), Codec::Pcmu)
        );
        let answer = super::sdp("127.0.0.1".parse().unwrap(), 40002, 7, &[Codec::Pcma]);
        assert_eq!(remote(&answer).unwrap().1, Codec::Pcma);
    }

    #[test]
    fn packets_carry_a_header_and_advance_by_a_frame() {
        let mut s = Sender {
            codec: Codec::Pcmu,
            ssrc: 9,
            sequence: u16::MAX,
            timestamp: 0,
            first: true,
        };
        let a = s.packet(&[0; FRAME]);
        let b = s.packet(&[0; FRAME]);
        assert_eq!(a.len(), 12 + FRAME);
        assert_eq!(a[1], 0x80, "marker on the first packet");
        assert_eq!(b[1], PCMU);
        assert_eq!(u16::from_be_bytes([b[2], b[3]]), 0, "sequence wraps");
        let h = parse(&b).unwrap();
        assert_eq!((h.payload_type, h.timestamp, h.offset), (PCMU, FRAME as u32, 12));
        assert!(parse(&[0u8; 8]).is_none());
        assert_eq!(dtmf_key(11), Some('#'));
    }
}
