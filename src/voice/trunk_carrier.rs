//! The carrier of `serve` once trunks exist: a call from a number that rings through a SIP trunk
//! is placed over SIP ([`super::trunk`]) with RTP media ([`super::rtp`]) and runs on the voice
//! pipeline; any other call goes to the carrier behind it (the simulated network).

use std::{path::PathBuf, sync::Arc, time::Duration};

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{
    amd,
    pipeline::{Inbound, Line, Options, VoiceLeg},
    rtp,
    sip::{addr, uri_user},
    speech::Engines,
    trunk::{Ask, Dialog, Endpoint, Invite, Offered, Refused, Target},
    webrtc::{MediaSettings, Notice},
};
use crate::{
    carrier::{Carrier, Dial, Placed, ProgressSink},
    domain::{
        call::{CallStatus, Progress},
        sealed::SealKey,
    },
    store::Db,
};

#[derive(Clone)]
pub struct TrunkSettings {
    pub media: MediaSettings,
    pub media_timeout: Duration,
    /// How long a call may ring before it is cancelled (`rang-out`).
    pub ring_timeout: Duration,
    pub recordings: Option<PathBuf>,
    pub public_url: String,
    /// Answering-machine detection on outbound answers (config `answering_machine_detection`);
    /// None: every answer is taken for a person.
    pub machine_detection: Option<amd::Settings>,
    /// Benchmarks watch the calls through this; None in service.
    pub probe: Option<Arc<rtp::Probe>>,
}

pub struct TrunkCarrier {
    pub db: Db,
    /// None: this process runs no SIP endpoint, and calls over trunks fail saying so.
    pub endpoint: Option<Arc<Endpoint>>,
    /// None: no live voice in this process.
    pub engines: Option<Engines>,
    pub seal: Arc<SealKey>,
    pub settings: TrunkSettings,
    /// Calls from numbers on no trunk.
    pub fallback: Arc<dyn Carrier>,
}

/// Calls offered to voxd over trunks: an INVITE to one of a team's numbers, from the address of
/// that number's trunk, is answered with the number's inbound script and runs as an inbound call.
/// An unknown number gets 404, a number from anywhere but its trunk 403, a number without an
/// inbound script 480.
pub struct InboundCalls {
    pub db: Db,
    pub endpoint: Arc<Endpoint>,
    pub engines: Engines,
    pub settings: TrunkSettings,
    pub dispatcher: crate::dispatcher::Dispatcher,
}

/// The E.164 number a SIP user part names (`+61…`, or digits taken as with a `+`).
fn e164(user: &str) -> Option<String> {
    let user = user.trim();
    let digits = user.strip_prefix('+').unwrap_or(user);
    (!digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("+{digits}"))
}

impl InboundCalls {
    pub fn start(self) {
        let (tx, mut offers) = mpsc::unbounded_channel();
        self.endpoint.accept_calls(tx);
        let me = Arc::new(self);
        tokio::spawn(async move {
            while let Some(offered) = offers.recv().await {
                tokio::spawn(me.clone().take(offered));
            }
        });
    }

    async fn take(self: Arc<Self>, offered: Offered) {
        let invite = &offered.invite;
        let user = invite
            .uri()
            .and_then(uri_user)
            .or_else(|| invite.header("To").map(addr).and_then(uri_user))
            .unwrap_or_default();
        let from_ip = offered.from.ip();
        let Some(number) = e164(user) else {
            return self.endpoint.refuse(offered, 404, "Not Found").await;
        };
        let owners = match self.db.numbers_by_value(&number).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "inbound SIP call: number lookup failed");
                return self.endpoint.refuse(offered, 500, "Server Internal Error").await;
            }
        };
        if owners.is_empty() {
            tracing::info!(%number, %from_ip, "inbound SIP call to an unknown number refused");
            return self.endpoint.refuse(offered, 404, "Not Found").await;
        }
        // The number's own trunk must be where the call comes from.
        let mut chosen = None;
        for n in owners {
            let Ok(Some(trunk)) = self.db.trunk_for_number(n.team_id, &n.number).await else {
                continue;
            };
            let port = u16::try_from(trunk.port).unwrap_or(5060);
            let from_trunk = tokio::net::lookup_host((trunk.host.as_str(), port))
                .await
                .is_ok_and(|mut addrs| addrs.any(|a| a.ip() == from_ip));
            if from_trunk {
                chosen = Some(n);
                break;
            }
        }
        let Some(n) = chosen else {
            tracing::warn!(%number, %from_ip, "inbound SIP call refused: not from the number's trunk");
            return self.endpoint.refuse(offered, 403, "Forbidden").await;
        };
        let Some(script_id) = n.inbound_script_id else {
            return self.endpoint.refuse(offered, 480, "Temporarily Unavailable").await;
        };
        let remote = match rtp::remote(&invite.body) {
            Ok(r) => r,
            Err(why) => {
                tracing::info!(%number, %why, "inbound SIP call: unusable offer");
                return self.endpoint.refuse(offered, 488, "Not Acceptable Here").await;
            }
        };
        let (Ok((stt, tts)), Ok(media)) = (self.engines.pick(None, None), rtp::open(&self.settings.media).await) else {
            return self.endpoint.refuse(offered, 503, "Service Unavailable").await;
        };
        let team = match self.db.get_team(n.team_id).await {
            Ok(Some(t)) => t,
            _ => return self.endpoint.refuse(offered, 500, "Server Internal Error").await,
        };
        let caller = invite.header("From").map(addr).and_then(uri_user).and_then(e164);
        let owner = self.dispatcher.owner().to_owned();
        let call = match self.dispatcher.create_inbound(&team, &number, script_id, caller).await {
            Ok(call) => call,
            Err(e) => {
                tracing::warn!(%number, error = %e, "inbound SIP call: the call could not be created");
                return self.endpoint.refuse(offered, 500, "Server Internal Error").await;
            }
        };
        let call_id = call.id;
        let sdp = rtp::sdp(
            media.advertised,
            media.local.port(),
            rand::random::<u32>().into(),
            &[remote.1],
        );
        let Some(dialog) = self.endpoint.answer(offered, sdp).await else {
            let _ = self
                .db
                .finish_attempt(
                    call_id,
                    &owner,
                    "failed",
                    "the caller never confirmed the answer",
                    None,
                    serde_json::json!({}),
                    chrono::Utc::now(),
                )
                .await;
            return;
        };
        tracing::info!(%call_id, team_id = %team.id, %number, "inbound SIP call answered");
        let (leg, _) = live_leg(
            dialog,
            media,
            remote,
            (stt, tts),
            &self.settings,
            call_id,
            team.recordings,
            None,
        );
        if let Err(e) = self.dispatcher.run_joined(call, Box::new(leg), "sip").await {
            tracing::warn!(%call_id, error = %e, "inbound SIP call failed");
        }
    }
}

/// Who answered an outbound call, as the machine detector hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answerer {
    Person,
    /// A machine, still greeting.
    Machine,
    /// The machine's greeting is over: leave the message now.
    MachineReady,
}

/// The pipeline over an established call's RTP, with its dialog: our hang-up (the pipeline's,
/// through the media) becomes a BYE; theirs ends the pipeline. With `detect`, the first seconds
/// of the callee's audio go to the answering-machine detector instead of the pipeline, and the
/// receiver tells who answered.
#[allow(clippy::too_many_arguments)]
fn live_leg(
    dialog: Dialog,
    media: rtp::Media,
    remote: (std::net::SocketAddr, rtp::Codec),
    (stt, tts): (
        Arc<dyn super::speech::SpeechToText>,
        Arc<dyn super::speech::TextToSpeech>,
    ),
    settings: &TrunkSettings,
    call_id: uuid::Uuid,
    record: bool,
    detect: Option<amd::Settings>,
) -> (VoiceLeg, Option<mpsc::Receiver<Answerer>>) {
    let (inbound_tx, inbound_rx) = mpsc::channel(512);
    let (from_line, answerer) = match detect {
        Some(amd_settings) => {
            let (screened_tx, screened_rx) = mpsc::channel(512);
            let (verdict_tx, verdict_rx) = mpsc::channel(2);
            tokio::spawn(screen(
                call_id,
                screened_rx,
                inbound_tx.clone(),
                amd_settings,
                verdict_tx,
            ));
            (screened_tx, Some(verdict_rx))
        }
        None => (inbound_tx.clone(), None),
    };
    let (outbound, mut notices) = rtp::start(
        media,
        remote,
        from_line.clone(),
        settings.media_timeout,
        settings.probe.clone(),
    );
    // The pipeline's hang-up and transfers, through the media's notices, go to the dialog.
    let (asks, asked) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(n) = notices.recv().await {
            let ask = match n {
                Notice::HungUp => Ask::HangUp,
                Notice::Transfer { to, reply } => Ask::Refer { to, reply },
                Notice::Transcript { .. } => continue,
            };
            if asks.send(ask).is_err() {
                return;
            }
        }
    });
    tokio::spawn(async move {
        if dialog.run(asked).await == super::trunk::Ended::ByThem {
            let _ = from_line.send(Inbound::HungUp).await;
        }
    });
    let leg = VoiceLeg::start(
        Line {
            inbound: inbound_rx,
            outbound,
        },
        Options {
            call_id,
            stt,
            tts,
            recordings: settings.recordings.clone().filter(|_| record),
            recording_url: Some(format!(
                "{}/api/v1/calls/{call_id}/recording",
                settings.public_url.trim_end_matches('/')
            )),
            media_timeout: settings.media_timeout,
            timings: settings.probe.as_ref().map(|p| p.timings.clone()),
        },
    );
    (leg, answerer)
}

/// Feeds the callee's first audio to the machine detector until it decides (a machine: until
/// its greeting is over), then passes everything on to the pipeline. The greeting itself is not
/// passed on: the assistant does not answer a machine's words, nor a person's "Hello?".
async fn screen(
    call_id: uuid::Uuid,
    mut line: mpsc::Receiver<Inbound>,
    pipeline: mpsc::Sender<Inbound>,
    settings: amd::Settings,
    verdict: mpsc::Sender<Answerer>,
) {
    let mut detector = amd::Detector::new(super::audio::RATE, settings);
    let mut screening = true;
    while let Some(event) = line.recv().await {
        if screening {
            let Inbound::Audio(frame) = &event else {
                // Keys, a hang-up or a failure: whoever it is, the call goes on (or ends) as it is.
                screening = false;
                let _ = verdict.try_send(Answerer::Person);
                if pipeline.send(event).await.is_err() {
                    return;
                }
                continue;
            };
            let after_ms = detector.elapsed().as_millis() as u64;
            let told = match detector.push(frame) {
                Some(amd::Verdict::Human(reason)) => {
                    tracing::info!(%call_id, ?reason, after_ms, "a person answered");
                    screening = false;
                    Some(Answerer::Person)
                }
                Some(amd::Verdict::Machine(reason)) => {
                    tracing::info!(%call_id, ?reason, after_ms, "an answering machine answered");
                    Some(Answerer::Machine)
                }
                Some(amd::Verdict::ReadyToSpeak) => {
                    tracing::info!(%call_id, after_ms, "the machine's greeting is over");
                    screening = false;
                    Some(Answerer::MachineReady)
                }
                None => None,
            };
            if let Some(who) = told {
                let _ = verdict.try_send(who);
            }
            continue;
        }
        if pipeline.send(event).await.is_err() {
            return;
        }
    }
}

#[async_trait]
impl Carrier for TrunkCarrier {
    fn name(&self) -> &'static str {
        "sip"
    }

    async fn carrier_for(&self, dial: &Dial) -> &'static str {
        match self.db.trunk_for_number(dial.team_id, &dial.from_number).await {
            Ok(None) => self.fallback.carrier_for(dial).await,
            _ => self.name(),
        }
    }

    async fn place(&self, dial: Dial, sink: &dyn ProgressSink) -> Placed {
        let trunk = match self.db.trunk_for_number(dial.team_id, &dial.from_number).await {
            Ok(Some(t)) => t,
            Ok(None) => return self.fallback.place(dial, sink).await,
            Err(e) => return Placed::not_connected(CallStatus::Failed, format!("trunk lookup failed: {e}")),
        };
        let call_id = dial.call_id;
        let (Some(endpoint), Some(engines)) = (&self.endpoint, &self.engines) else {
            let why = "calls over SIP trunks need live voice and the SIP endpoint (voice_disabled, or sip_listen off or taken)";
            return Placed::not_connected(CallStatus::Failed, why);
        };
        let password = match &trunk.password {
            Some(sealed) => match self.seal.open(sealed, trunk.id.as_bytes()) {
                Some(p) => Some(p),
                None => {
                    return Placed::not_connected(
                        CallStatus::Failed,
                        "the trunk's password cannot be opened (seal key changed?)",
                    )
                }
            },
            None => None,
        };
        let (stt, tts) = match engines.pick(None, None) {
            Ok(pair) => pair,
            Err(why) => return Placed::not_connected(CallStatus::Failed, format!("speech engines missing: {why}")),
        };
        let media = match rtp::open(&self.settings.media).await {
            Ok(m) => m,
            Err(why) => return Placed::not_connected(CallStatus::Failed, why),
        };
        let target = Target {
            host: trunk.host.clone(),
            port: u16::try_from(trunk.port).unwrap_or(5060),
            username: trunk.username.clone(),
            password,
        };
        let invite = Invite {
            to_number: dial.to_number.clone(),
            from_number: dial.from_number.clone(),
            sdp: rtp::sdp(
                media.advertised,
                media.local.port(),
                rand::random::<u32>().into(),
                &rtp::OFFER,
            ),
            ring_timeout: self.settings.ring_timeout,
        };
        tracing::info!(%call_id, trunk = %trunk.name, "dialling over SIP");
        let answered = match endpoint.invite(&target, &invite, sink).await {
            Ok(a) => a,
            Err(refused) => {
                tracing::info!(%call_id, ?refused, "SIP call not connected");
                return match refused {
                    Refused::Rejected(why) => Placed::not_connected(CallStatus::UserRejected, why),
                    Refused::Unavailable(why) => Placed::not_connected(CallStatus::UserUnavailable, why),
                    Refused::NoAnswer => Placed::not_connected(CallStatus::RangOut, "no answer"),
                    Refused::Cancelled => Placed::not_connected(CallStatus::Failed, "api_ended"),
                    Refused::Failed(why) => Placed::not_connected(CallStatus::Failed, why),
                };
            }
        };
        let remote = match rtp::remote(&answered.sdp) {
            Ok(r) => r,
            Err(why) => {
                // Hang up at once (a ready hang-up sends the BYE).
                tokio::spawn(answered.dialog.run(mpsc::unbounded_channel().1));
                return Placed::not_connected(CallStatus::Failed, format!("unusable answer: {why}"));
            }
        };
        if !sink.progress(Progress::InProgress).await {
            tokio::spawn(answered.dialog.run(mpsc::unbounded_channel().1));
            return Placed::not_connected(CallStatus::Failed, "api_ended");
        }
        let team_records = self
            .db
            .get_team(dial.team_id)
            .await
            .ok()
            .flatten()
            .is_none_or(|t| t.recordings);
        let detect = self.settings.machine_detection;
        let (leg, answerer) = live_leg(
            answered.dialog,
            media,
            remote,
            (stt, tts),
            &self.settings,
            call_id,
            team_records,
            detect,
        );
        let (Some(mut answerer), Some(detect)) = (answerer, detect) else {
            return Placed::Answered(Box::new(leg));
        };
        // Bounded both ways: a far end that sends no audio at all is taken for a person, and a
        // machine that never stops talking gets the message at the latest after `max_wait_ms`.
        let first = Duration::from_millis(detect.total_ms + 1500);
        match tokio::time::timeout(first, answerer.recv()).await {
            Ok(Some(Answerer::Machine)) => {
                let rest = Duration::from_millis(detect.max_wait_ms + 1000);
                let _ = tokio::time::timeout(rest, answerer.recv()).await;
                Placed::Voicemail(Box::new(leg))
            }
            Ok(Some(Answerer::MachineReady)) => Placed::Voicemail(Box::new(leg)),
            _ => Placed::Answered(Box::new(leg)),
        }
    }
}
