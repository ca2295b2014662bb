//! The carrier of `serve` once trunks exist: a call from a number that rings through a SIP trunk
//! is placed over SIP ([`super::trunk`]) with RTP media ([`super::rtp`]) and runs on the voice
//! pipeline; any other call goes to the carrier behind it (the simulated network).

use std::{path::PathBuf, sync::Arc, time::Duration};

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{
    pipeline::{Inbound, Line, Options, VoiceLeg},
    rtp,
    speech::Engines,
    trunk::{Endpoint, Invite, Refused, Target},
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

pub struct TrunkSettings {
    pub media: MediaSettings,
    pub media_timeout: Duration,
    /// How long a call may ring before it is cancelled (`rang-out`).
    pub ring_timeout: Duration,
    pub recordings: Option<PathBuf>,
    pub public_url: String,
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

fn not_connected(status: CallStatus, end_reason: impl Into<String>) -> Placed {
    Placed::NotConnected {
        status,
        end_reason: end_reason.into(),
    }
}

#[async_trait]
impl Carrier for TrunkCarrier {
    fn name(&self) -> &'static str {
        "sip"
    }

    async fn place(&self, dial: Dial, sink: &dyn ProgressSink) -> Placed {
        let trunk = match self.db.trunk_for_number(dial.team_id, &dial.from_number).await {
            Ok(Some(t)) => t,
            Ok(None) => return self.fallback.place(dial, sink).await,
            Err(e) => return not_connected(CallStatus::Failed, format!("trunk lookup failed: {e}")),
        };
        let call_id = dial.call_id;
        let (Some(endpoint), Some(engines)) = (&self.endpoint, &self.engines) else {
            let why = "calls over SIP trunks need live voice and the SIP endpoint (voice_disabled, or sip_listen off or taken)";
            return not_connected(CallStatus::Failed, why);
        };
        let password = match &trunk.password {
            Some(sealed) => match self.seal.open(sealed, trunk.id.as_bytes()) {
                Some(p) => Some(p),
                None => {
                    return not_connected(
                        CallStatus::Failed,
                        "the trunk's password cannot be opened (seal key changed?)",
                    )
                }
            },
            None => None,
        };
        let (stt, tts) = match engines.pick(None, None) {
            Ok(pair) => pair,
            Err(why) => return not_connected(CallStatus::Failed, format!("speech engines missing: {why}")),
        };
        let media = match rtp::open(&self.settings.media).await {
            Ok(m) => m,
            Err(why) => return not_connected(CallStatus::Failed, why),
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
            sdp: rtp::sdp(media.advertised, media.local.port(), rand::random::<u32>().into()),
            ring_timeout: self.settings.ring_timeout,
        };
        tracing::info!(%call_id, trunk = %trunk.name, "dialling over SIP");
        let answered = match endpoint.invite(&target, &invite, sink).await {
            Ok(a) => a,
            Err(refused) => {
                tracing::info!(%call_id, ?refused, "SIP call not connected");
                return match refused {
                    Refused::Rejected(why) => not_connected(CallStatus::UserRejected, why),
                    Refused::Unavailable(why) => not_connected(CallStatus::UserUnavailable, why),
                    Refused::NoAnswer => not_connected(CallStatus::RangOut, "no answer"),
                    Refused::Cancelled => not_connected(CallStatus::Failed, "api_ended"),
                    Refused::Failed(why) => not_connected(CallStatus::Failed, why),
                };
            }
        };
        let remote = match rtp::remote(&answered.sdp) {
            Ok(r) => r,
            Err(why) => {
                // Hang up at once (a ready hang-up sends the BYE).
                tokio::spawn(answered.dialog.run(Box::pin(async {})));
                return not_connected(CallStatus::Failed, format!("unusable answer: {why}"));
            }
        };
        if !sink.progress(Progress::InProgress).await {
            tokio::spawn(answered.dialog.run(Box::pin(async {})));
            return not_connected(CallStatus::Failed, "api_ended");
        }
        let (inbound_tx, inbound_rx) = mpsc::channel(512);
        let (outbound, mut notices) = rtp::start(media, remote, inbound_tx.clone(), self.settings.media_timeout);
        // The dialog: our hang-up (the pipeline's, through the media) becomes a BYE; theirs ends
        // the pipeline.
        tokio::spawn(async move {
            let hang_up = Box::pin(async move {
                while let Some(n) = notices.recv().await {
                    if matches!(n, Notice::HungUp) {
                        return;
                    }
                }
            });
            if answered.dialog.run(hang_up).await == super::trunk::Ended::ByThem {
                let _ = inbound_tx.send(Inbound::HungUp).await;
            }
        });
        let team_records = self
            .db
            .get_team(dial.team_id)
            .await
            .ok()
            .flatten()
            .is_none_or(|t| t.recordings);
        let recordings = self.settings.recordings.clone().filter(|_| team_records);
        let leg = VoiceLeg::start(
            Line {
                inbound: inbound_rx,
                outbound,
            },
            Options {
                call_id,
                stt,
                tts,
                recordings,
                recording_url: Some(format!(
                    "{}/api/v1/calls/{call_id}/recording",
                    self.settings.public_url.trim_end_matches('/')
                )),
                media_timeout: self.settings.media_timeout,
                timings: None,
            },
        );
        Placed::Answered(Box::new(leg))
    }
}
