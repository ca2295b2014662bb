//! SIP over UDP with teams' trunks (RFC 3261): voxd's endpoint places outbound calls and is
//! offered inbound ones (handed to whoever [`Endpoint::accept_calls`]). One UDP
//! socket; messages are routed to their call by Call-ID. Requests are retransmitted on the
//! RFC's timer (T1 = 500 ms, doubling) until answered; digest challenges (401/407) are answered
//! once with the trunk's credentials; 180/183 is ringing, 2xx is answered (ACKed, media starts),
//! 486/600/603 is `User rejected`, 404/480 `User unavailable`, no answer before the ring timeout is
//! a CANCEL and `rang-out`, anything else `failed` with the SIP reason. Once answered, a BYE from
//! either side ends the call.
//!
//! Our own code on [`super::sip`] (as for the WebSocket gateway): a client transaction and a
//! dialog are small when voxd only ever calls out, and it keeps one SIP parser in the tree.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    net::UdpSocket,
    sync::mpsc,
    time::{timeout_at, Instant},
};

use super::{
    digest,
    sip::{addr, param, Message},
};
use crate::{carrier::ProgressSink, domain::call::Progress};

/// RFC 3261's T1 and the INVITE transaction's timeout (64·T1).
const T1: Duration = Duration::from_millis(500);
const TRANSACTION: Duration = Duration::from_secs(32);

/// Where and how to reach a trunk.
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// voxd's SIP endpoint for trunks.
pub struct Endpoint {
    socket: UdpSocket,
    pub local: SocketAddr,
    calls: Mutex<HashMap<String, mpsc::UnboundedSender<Message>>>,
    /// Where new INVITEs go (a call to one of the teams' numbers); unset, they get 480.
    inbound: std::sync::OnceLock<mpsc::UnboundedSender<Offered>>,
}

/// A call offered to voxd: the INVITE, where it came from, and its messages from then on.
pub struct Offered {
    pub invite: Message,
    pub from: SocketAddr,
    pub messages: mpsc::UnboundedReceiver<Message>,
}

fn token() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

impl Endpoint {
    pub async fn bind(address: SocketAddr) -> std::io::Result<Arc<Endpoint>> {
        let socket = UdpSocket::bind(address).await?;
        let local = socket.local_addr()?;
        let endpoint = Arc::new(Endpoint {
            socket,
            local,
            calls: Mutex::new(HashMap::new()),
            inbound: std::sync::OnceLock::new(),
        });
        tokio::spawn(endpoint.clone().receive());
        tracing::info!(%local, "SIP trunk endpoint listening (UDP)");
        Ok(endpoint)
    }

    async fn receive(self: Arc<Self>) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok((n, from)) = self.socket.recv_from(&mut buf).await else {
                continue;
            };
            let Ok(text) = std::str::from_utf8(&buf[..n]) else {
                continue;
            };
            if text.trim().is_empty() {
                continue; // keep-alive
            }
            let Ok(m) = Message::parse(text) else {
                tracing::debug!(%from, "unreadable SIP message ignored");
                continue;
            };
            let call = m.header("Call-ID").unwrap_or_default().to_owned();
            let route = self.calls.lock().expect("sip calls").get(&call).cloned();
            match route {
                Some(tx) => {
                    let _ = tx.send(m);
                }
                None if m.method() == Some("INVITE") && !call.is_empty() => {
                    let _ = self.send(&m.response(100, "Trying", None), from).await;
                    let Some(offers) = self.inbound.get() else {
                        let _ = self
                            .send(&m.response(480, "Temporarily Unavailable", Some(&token())), from)
                            .await;
                        continue;
                    };
                    let (tx, messages) = mpsc::unbounded_channel();
                    self.calls.lock().expect("sip calls").insert(call.clone(), tx);
                    let _ = offers.send(Offered {
                        invite: m,
                        from,
                        messages,
                    });
                }
                None if m.method().is_some_and(|x| x != "ACK") => {
                    // No such call here (inbound calls over trunks are not answered yet).
                    let code = if m.method() == Some("OPTIONS") {
                        (200, "OK")
                    } else {
                        (481, "Call/Transaction Does Not Exist")
                    };
                    let _ = self.send(&m.response(code.0, code.1, Some(&token())), from).await;
                }
                None => {}
            }
        }
    }

    /// New calls to voxd are handed to `offers` from now on.
    pub fn accept_calls(&self, offers: mpsc::UnboundedSender<Offered>) {
        let _ = self.inbound.set(offers);
    }

    /// Refuses an offered call with a final response (and forgets it once ACKed or after 32 s).
    pub async fn refuse(self: &Arc<Self>, mut offered: Offered, code: u16, reason: &str) {
        let response = offered.invite.response(code, reason, Some(&token()));
        let call_id = offered.invite.header("Call-ID").unwrap_or_default().to_owned();
        let _ = self.send(&response, offered.from).await;
        let deadline = Instant::now() + TRANSACTION;
        let mut interval = T1;
        loop {
            match timeout_at((Instant::now() + interval).min(deadline), offered.messages.recv()).await {
                Ok(Some(m)) if m.method() == Some("ACK") => break,
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) if Instant::now() >= deadline => break,
                Err(_) => {
                    let _ = self.send(&response, offered.from).await;
                    interval = (interval * 2).min(Duration::from_secs(4));
                }
            }
        }
        self.calls.lock().expect("sip calls").remove(&call_id);
    }

    /// Answers an offered call with our SDP; the dialog once the caller ACKs (its 200 is sent
    /// again on T1 until then). None: no ACK came, or the caller cancelled.
    pub async fn answer(self: &Arc<Self>, offered: Offered, sdp: String) -> Option<Dialog> {
        let Offered {
            invite,
            from,
            mut messages,
        } = offered;
        let call_id = invite.header("Call-ID").unwrap_or_default().to_owned();
        let ok = invite
            .response(200, "OK", Some(&token()))
            .with("Contact", format!("<sip:voxd@{}>", self.local))
            .with("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
            .with_body("application/sdp", sdp);
        // Our To, with our tag: the From of requests we send in this dialog.
        let local = ok.header("To").unwrap_or_default().to_owned();
        let dialog = |messages| Dialog {
            endpoint: self.clone(),
            call_id: call_id.clone(),
            peer: from,
            local: local.clone(),
            remote: invite.header("From").unwrap_or_default().to_owned(),
            target: invite.header("Contact").map(addr).unwrap_or_default().to_owned(),
            cseq: 0,
            messages,
            ack: None,
        };
        let _ = self.send(&ok, from).await;
        let deadline = Instant::now() + TRANSACTION;
        let mut interval = T1;
        loop {
            match timeout_at((Instant::now() + interval).min(deadline), messages.recv()).await {
                Ok(Some(m)) if m.method() == Some("ACK") => return Some(dialog(messages)),
                Ok(Some(m)) if m.method() == Some("CANCEL") || m.method() == Some("BYE") => {
                    let _ = self.send(&m.response(200, "OK", None), from).await;
                    drop(dialog(messages));
                    return None;
                }
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(_) if Instant::now() >= deadline => {
                    drop(dialog(messages));
                    return None;
                }
                Err(_) => {
                    let _ = self.send(&ok, from).await;
                    interval = (interval * 2).min(Duration::from_secs(4));
                }
            }
        }
    }

    async fn send(&self, m: &Message, to: SocketAddr) -> std::io::Result<()> {
        self.socket.send_to(m.to_string().as_bytes(), to).await.map(|_| ())
    }

    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/UDP {};branch=z9hG4bK{branch};rport", self.local)
    }
}

/// An outbound call to place.
pub struct Invite {
    /// E.164, called as `sip:<number>@<trunk host>`.
    pub to_number: String,
    /// E.164, our caller id (From and P-Asserted-Identity).
    pub from_number: String,
    pub sdp: String,
    pub ring_timeout: Duration,
}

/// How an INVITE ended before any conversation.
#[derive(Debug, PartialEq)]
pub enum Refused {
    Rejected(String),
    Unavailable(String),
    NoAnswer,
    Failed(String),
    /// The call was taken away while it rang (we cancelled it).
    Cancelled,
}

/// The answered call: the far end's SDP and the dialog to end it by.
pub struct Answered {
    pub sdp: String,
    pub dialog: Dialog,
}

/// An established dialog. [`Dialog::run`] waits for the far end's BYE or ours.
pub struct Dialog {
    endpoint: Arc<Endpoint>,
    call_id: String,
    peer: SocketAddr,
    /// Our From (with our tag) and their To (with theirs): requests we send carry them.
    local: String,
    remote: String,
    target: String,
    cseq: u32,
    messages: mpsc::UnboundedReceiver<Message>,
    /// Our ACK of their 200 (outbound calls), sent again if the 200 comes again.
    ack: Option<Message>,
}

/// What the call's side asks of its dialog.
pub enum Ask {
    /// End the call (BYE).
    HangUp,
    /// Hand the call to `to` (E.164 or a SIP URI) with a blind REFER; the reply says whether the
    /// far end took it. Taken, the call is over for us (BYE, unless they sent theirs).
    Refer {
        to: String,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
}

/// How a REFER came out.
enum Referred {
    Taken,
    /// Taken, and the far end hung up on us already.
    TakenAndGone,
    Refused(String),
}

/// What ended an established call.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// The far end sent BYE.
    ByThem,
    /// We sent BYE (answered or not).
    ByUs,
}

struct Unroute<'a>(&'a Endpoint, String);

impl Drop for Unroute<'_> {
    fn drop(&mut self) {
        self.0.calls.lock().expect("sip calls").remove(&self.1);
    }
}

impl Endpoint {
    /// Places the call; `sink` hears `ringing` at the first 180/183, and refusing it (the call was
    /// taken away) cancels the call.
    pub async fn invite(
        self: &Arc<Self>,
        target: &Target,
        call: &Invite,
        sink: &dyn ProgressSink,
    ) -> Result<Answered, Refused> {
        let peer = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| Refused::Failed(format!("cannot resolve the trunk host {}", target.host)))?;
        let call_id = format!("{}@voxd", token());
        let (tx, mut messages) = mpsc::unbounded_channel();
        self.calls.lock().expect("sip calls").insert(call_id.clone(), tx);
        let unroute = Unroute(self, call_id.clone());
        let uri = format!("sip:{}@{}:{}", call.to_number, target.host, target.port);
        let from = format!("<sip:{}@{}>;tag={}", call.from_number, target.host, token());
        let to = format!("<sip:{}@{}>", call.to_number, target.host);
        let mut cseq = 1;
        let mut authorization: Option<(&'static str, String)> = None;
        let mut wanted = true;
        let mut rang = false;
        loop {
            let branch = token();
            let mut invite = Message::request("INVITE", &uri)
                .with("Via", self.via(&branch))
                .with("Max-Forwards", "70")
                .with("From", from.clone())
                .with("To", to.clone())
                .with("Call-ID", call_id.clone())
                .with("CSeq", format!("{cseq} INVITE"))
                .with("Contact", format!("<sip:voxd@{}>", self.local))
                .with(
                    "P-Asserted-Identity",
                    format!("<sip:{}@{}>", call.from_number, target.host),
                )
                .with("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
                .with("User-Agent", concat!("voxd/", env!("CARGO_PKG_VERSION")));
            if let Some((name, value)) = &authorization {
                invite = invite.with(name, value.clone());
            }
            let invite = invite.with_body("application/sdp", call.sdp.clone());
            let final_response = self
                .invite_transaction(&invite, peer, &mut messages, call, &mut rang, &mut wanted, sink)
                .await?;
            let code = final_response.code().unwrap_or(500);
            if (200..300).contains(&code) {
                let remote = final_response.header("To").unwrap_or_default().to_owned();
                let target_uri = final_response.header("Contact").map(addr).unwrap_or(&uri).to_owned();
                let ack = Message::request("ACK", &target_uri)
                    .with("Via", self.via(&token()))
                    .with("Max-Forwards", "70")
                    .with("From", from.clone())
                    .with("To", remote.clone())
                    .with("Call-ID", call_id.clone())
                    .with("CSeq", format!("{cseq} ACK"));
                let _ = self.send(&ack, peer).await;
                // The dialog keeps the route (and drops it when it ends).
                std::mem::forget(unroute);
                return Ok(Answered {
                    sdp: final_response.body.clone(),
                    dialog: Dialog {
                        endpoint: self.clone(),
                        call_id,
                        peer,
                        local: from,
                        remote,
                        target: target_uri,
                        cseq,
                        messages,
                        ack: Some(ack),
                    },
                });
            }
            self.ack_failure(&invite, &final_response, peer).await;
            let reason = format!("{code} {}", reason_of(&final_response));
            match code {
                401 | 407 if authorization.is_none() => {
                    let (challenge_header, answer_header) = if code == 401 {
                        ("WWW-Authenticate", "Authorization")
                    } else {
                        ("Proxy-Authenticate", "Proxy-Authorization")
                    };
                    let (Some(user), Some(password)) = (&target.username, &target.password) else {
                        return Err(Refused::Failed(format!(
                            "{reason}: the trunk asks for credentials and has none"
                        )));
                    };
                    let challenge = final_response.header(challenge_header).unwrap_or_default();
                    let answer = digest::answer(challenge, user, password, "INVITE", &uri)
                        .ok_or_else(|| Refused::Failed(format!("{reason}: unreadable challenge")))?;
                    authorization = Some((answer_header, answer));
                    cseq += 1;
                }
                401 | 407 => return Err(Refused::Failed(format!("{reason}: the trunk refused the credentials"))),
                486 | 600 | 603 => return Err(Refused::Rejected(reason)),
                404 | 480 => return Err(Refused::Unavailable(reason)),
                // Our CANCEL went through: on the ring timeout, or because the call was taken away.
                487 if wanted => return Err(Refused::NoAnswer),
                487 => return Err(Refused::Cancelled),
                408 => return Err(Refused::NoAnswer),
                _ => return Err(Refused::Failed(reason)),
            }
        }
    }

    /// Sends the INVITE (again on T1 until something comes back) and waits for its final response;
    /// cancels it on the ring timeout or when the call is no longer wanted.
    #[allow(clippy::too_many_arguments)]
    async fn invite_transaction(
        &self,
        invite: &Message,
        peer: SocketAddr,
        messages: &mut mpsc::UnboundedReceiver<Message>,
        call: &Invite,
        rang: &mut bool,
        wanted: &mut bool,
        sink: &dyn ProgressSink,
    ) -> Result<Message, Refused> {
        let send_failed = |e: std::io::Error| Refused::Failed(format!("cannot send to the trunk: {e}"));
        self.send(invite, peer).await.map_err(send_failed)?;
        let started = Instant::now();
        let mut resend_at = Some(started + T1);
        let mut interval = T1;
        let mut provisional = false;
        let mut cancel_sent: Option<Instant> = None;
        let ring_deadline = started + call.ring_timeout;
        loop {
            let wake = [
                resend_at,
                Some(ring_deadline),
                Some(started + TRANSACTION),
                Some(Instant::now() + Duration::from_millis(250)),
            ]
            .into_iter()
            .flatten()
            .min()
            .expect("deadlines");
            match timeout_at(wake, messages.recv()).await {
                Ok(Some(m)) => {
                    let Some(code) = m.code() else {
                        // An in-dialog request before the answer (rare): say no.
                        continue;
                    };
                    if m.cseq().is_some_and(|(_, method)| method == "CANCEL") {
                        continue;
                    }
                    if code < 200 {
                        provisional = true;
                        resend_at = None;
                        if (code == 180 || code == 183) && !*rang {
                            *rang = true;
                            // False: the call was taken away (its lease lost) while it rang.
                            *wanted = sink.progress(Progress::Ringing).await;
                        }
                        continue;
                    }
                    return Ok(m);
                }
                Ok(None) => return Err(Refused::Failed("SIP endpoint closed".into())),
                Err(_) => {}
            }
            let now = Instant::now();
            if now >= started + TRANSACTION && cancel_sent.is_none() {
                return Err(Refused::Failed(if provisional {
                    "the trunk never answered the call (transaction timeout)".into()
                } else {
                    "no response from the trunk".into()
                }));
            }
            if resend_at.is_some_and(|t| now >= t) {
                let _ = self.send(invite, peer).await;
                interval = (interval * 2).min(Duration::from_secs(4));
                resend_at = Some(now + interval);
            }
            let give_up = now >= ring_deadline || !*wanted;
            if give_up && cancel_sent.is_none() {
                // CANCEL goes only after a provisional response (RFC 3261 §9.1); without one we
                // stop retransmitting and report.
                if !provisional {
                    return Err(if *wanted { Refused::NoAnswer } else { Refused::Cancelled });
                }
                let cancel = cancel_of(invite);
                let _ = self.send(&cancel, peer).await;
                cancel_sent = Some(now);
                resend_at = None;
            }
            if let Some(at) = cancel_sent {
                if now >= at + Duration::from_secs(5) {
                    return Err(if *wanted { Refused::NoAnswer } else { Refused::Cancelled });
                }
            }
            // After our CANCEL the 487 arrives as the final response above.
        }
    }

    /// ACK for a non-2xx final response: part of the INVITE's transaction (same Via branch).
    async fn ack_failure(&self, invite: &Message, response: &Message, peer: SocketAddr) {
        let (n, _) = invite.cseq().unwrap_or((1, "INVITE"));
        let ack = Message::request("ACK", invite.uri().unwrap_or_default())
            .with("Via", invite.header("Via").unwrap_or_default())
            .with("Max-Forwards", "70")
            .with("From", invite.header("From").unwrap_or_default())
            .with("To", response.header("To").unwrap_or_default())
            .with("Call-ID", invite.header("Call-ID").unwrap_or_default())
            .with("CSeq", format!("{n} ACK"));
        let _ = self.send(&ack, peer).await;
    }
}

/// The CANCEL of an INVITE: same Request-URI, Via, From, To, Call-ID and CSeq number.
fn cancel_of(invite: &Message) -> Message {
    let (n, _) = invite.cseq().unwrap_or((1, "INVITE"));
    Message::request("CANCEL", invite.uri().unwrap_or_default())
        .with("Via", invite.header("Via").unwrap_or_default())
        .with("Max-Forwards", "70")
        .with("From", invite.header("From").unwrap_or_default())
        .with("To", invite.header("To").unwrap_or_default())
        .with("Call-ID", invite.header("Call-ID").unwrap_or_default())
        .with("CSeq", format!("{n} CANCEL"))
}

fn reason_of(m: &Message) -> String {
    match &m.start {
        super::sip::StartLine::Response { reason, .. } => reason.clone(),
        _ => String::new(),
    }
}

impl Drop for Dialog {
    fn drop(&mut self) {
        self.endpoint.calls.lock().expect("sip calls").remove(&self.call_id);
    }
}

impl Dialog {
    /// Serves the established call until a BYE: theirs (answered 200) or ours (asked for, or
    /// once `asks` closes; sent again on T1 until answered, for at most 32 s). A transfer asked
    /// for goes out as a REFER.
    pub async fn run(mut self, mut asks: mpsc::UnboundedReceiver<Ask>) -> Ended {
        loop {
            tokio::select! {
                m = self.messages.recv() => {
                    let Some(m) = m else { return Ended::ByThem };
                    match m.method() {
                        Some("BYE") => {
                            let _ = self.endpoint.send(&m.response(200, "OK", None), self.peer).await;
                            return Ended::ByThem;
                        }
                        Some("ACK") | None => {
                            // A 200 sent again means our ACK was lost: send it again.
                            if m.code().is_some_and(|c| (200..300).contains(&c)) && m.cseq().is_some_and(|(_, x)| x == "INVITE") {
                                if let Some(ack) = &self.ack {
                                    let _ = self.endpoint.send(ack, self.peer).await;
                                }
                            }
                        }
                        Some(_) => {
                            // OPTIONS, INFO, re-INVITE without a change: accept and go on.
                            let _ = self.endpoint.send(&m.response(200, "OK", None), self.peer).await;
                        }
                    }
                }
                ask = asks.recv() => match ask {
                    Some(Ask::Refer { to, reply }) => match self.refer(&to).await {
                        Referred::Taken => {
                            let _ = reply.send(Ok(()));
                            self.bye().await;
                            return Ended::ByUs;
                        }
                        Referred::TakenAndGone => {
                            let _ = reply.send(Ok(()));
                            return Ended::ByThem;
                        }
                        Referred::Refused(why) => {
                            let _ = reply.send(Err(why));
                        }
                    },
                    Some(Ask::HangUp) | None => {
                        self.bye().await;
                        return Ended::ByUs;
                    }
                }
            }
        }
    }

    /// A blind transfer (RFC 3515): REFER with `Refer-To`, then the NOTIFYs that report how the
    /// far end's call to the target went (a final 2xx, or their BYE, is success).
    async fn refer(&mut self, to: &str) -> Referred {
        let refer_to = if to.starts_with("sip:") || to.starts_with("sips:") {
            to.to_owned()
        } else {
            format!("sip:{to}@{}", self.peer)
        };
        self.cseq += 1;
        let cseq = self.cseq;
        let refer = Message::request("REFER", &self.target)
            .with("Via", self.endpoint.via(&token()))
            .with("Max-Forwards", "70")
            .with("From", self.local.clone())
            .with("To", self.remote.clone())
            .with("Call-ID", self.call_id.clone())
            .with("CSeq", format!("{cseq} REFER"))
            .with("Contact", format!("<sip:voxd@{}>", self.endpoint.local))
            .with("Refer-To", format!("<{refer_to}>"))
            .with("Referred-By", format!("<{}>", addr(&self.local)));
        tracing::info!(call_id = %self.call_id, %refer_to, "REFER");
        let deadline = Instant::now() + TRANSACTION;
        let mut interval = T1;
        let mut accepted = false;
        // Until the REFER is answered, then until a final NOTIFY (bounded by the same 32 s).
        while Instant::now() < deadline {
            if !accepted {
                let _ = self.endpoint.send(&refer, self.peer).await;
            }
            let wait = if accepted { deadline } else { Instant::now() + interval };
            while let Ok(Some(m)) = timeout_at(wait, self.messages.recv()).await {
                match (m.code(), m.method()) {
                    (Some(code), _) if m.cseq() == Some((cseq, "REFER")) => match code {
                        100..=199 => {}
                        200..=299 => accepted = true,
                        _ => {
                            let reason = m.reason().unwrap_or_default();
                            return Referred::Refused(format!("the trunk refused the transfer: {code} {reason}"));
                        }
                    },
                    (_, Some("NOTIFY")) => {
                        let _ = self.endpoint.send(&m.response(200, "OK", None), self.peer).await;
                        // The body is a sipfrag: the status line of their call to the target.
                        let status: Option<u16> = m.body.split_whitespace().nth(1).and_then(|c| c.parse().ok());
                        match status {
                            Some(200..=299) => return Referred::Taken,
                            Some(c) if c >= 300 => {
                                let line = m.body.lines().next().unwrap_or_default().trim().to_owned();
                                return Referred::Refused(format!("the transfer target answered {line}"));
                            }
                            _ => {}
                        }
                    }
                    (_, Some("BYE")) => {
                        let _ = self.endpoint.send(&m.response(200, "OK", None), self.peer).await;
                        return if accepted {
                            Referred::TakenAndGone
                        } else {
                            Referred::Refused("the far end hung up".into())
                        };
                    }
                    (_, Some(_)) => {
                        let _ = self.endpoint.send(&m.response(200, "OK", None), self.peer).await;
                    }
                    _ => {}
                }
            }
            interval = (interval * 2).min(Duration::from_secs(4));
        }
        if accepted {
            // Accepted, and no word since: the far end has it.
            Referred::Taken
        } else {
            Referred::Refused("the trunk did not answer the REFER".into())
        }
    }

    async fn bye(&mut self) {
        self.cseq += 1;
        let bye = Message::request("BYE", &self.target)
            .with("Via", self.endpoint.via(&token()))
            .with("Max-Forwards", "70")
            .with("From", self.local.clone())
            .with("To", self.remote.clone())
            .with("Call-ID", self.call_id.clone())
            .with("CSeq", format!("{} BYE", self.cseq));
        let deadline = Instant::now() + TRANSACTION;
        let mut interval = T1;
        while Instant::now() < deadline {
            let _ = self.endpoint.send(&bye, self.peer).await;
            let wait = Instant::now() + interval;
            while let Ok(Some(m)) = timeout_at(wait, self.messages.recv()).await {
                if m.code().is_some() && m.cseq().is_some_and(|(_, x)| x == "BYE") {
                    return;
                }
                if m.method() == Some("BYE") {
                    let _ = self.endpoint.send(&m.response(200, "OK", None), self.peer).await;
                    return;
                }
            }
            interval = (interval * 2).min(Duration::from_secs(4));
        }
        let tag = param(&self.remote, "tag").unwrap_or_default().to_owned();
        tracing::warn!(call_id = %self.call_id, %tag, "the trunk did not answer our BYE");
    }
}
