//! Retention: a team may keep recordings and transcripts for a limited number of days after a
//! call ends (`voxd team set-retention`). `serve` sweeps hourly; a sweep deletes the recording
//! files and empties the transcripts that are older, and marks each call so it is not looked at
//! again. The call, its status, times and analysis stay.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use crate::{
    store::{Db, StoreError},
    voice::recording,
};

/// Calls handled per write.
const BATCH: i64 = 500;

/// What a sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub recordings: u64,
    pub transcripts: u64,
}

/// Removes what every team keeps past its retention, as of `now`. Recordings are files in
/// `recordings` (this node's folder; none when recording is off here).
pub async fn sweep(db: &Db, recordings: Option<&Path>, now: DateTime<Utc>) -> Result<Swept, StoreError> {
    let mut swept = Swept::default();
    for (team_id, r) in db.teams_with_retention().await? {
        if let Some(days) = r.recording_retention_days {
            let cutoff = now - Duration::days(i64::from(days));
            loop {
                let calls = db.take_recordings_past(team_id, cutoff, BATCH).await?;
                if let Some(dir) = recordings {
                    swept.recordings += calls.iter().filter(|id| recording::remove(dir, **id)).count() as u64;
                }
                if (calls.len() as i64) < BATCH {
                    break;
                }
            }
        }
        if let Some(days) = r.transcript_retention_days {
            let cutoff = now - Duration::days(i64::from(days));
            loop {
                let n = db.purge_transcripts_past(team_id, cutoff, BATCH, now).await?;
                swept.transcripts += n;
                if (n as i64) < BATCH {
                    break;
                }
            }
        }
    }
    if swept != Swept::default() {
        tracing::info!(
            recordings = swept.recordings,
            transcripts = swept.transcripts,
            "retention sweep"
        );
    }
    Ok(swept)
}
