//! How long a team keeps recordings and transcripts, and the calls past it.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{read_pool, transaction, write_pool, Db, Result};

/// Days after a call ended that its recording and its transcript are kept; `None`: for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Retention {
    pub recording_retention_days: Option<i32>,
    pub transcript_retention_days: Option<i32>,
}

impl Db {
    pub async fn team_retention(&self, team_id: Uuid) -> Result<Option<Retention>> {
        Ok(read_pool!(self, p => sqlx::query_as::<_, Retention>(
            "SELECT recording_retention_days, transcript_retention_days FROM teams WHERE id = $1")
            .bind(team_id).fetch_optional(p).await?))
    }

    /// `false` when there is no such team.
    pub async fn set_team_retention(&self, team_id: Uuid, r: Retention) -> Result<bool> {
        Ok(write_pool!(self, p => sqlx::query(
            "UPDATE teams SET recording_retention_days = $2, transcript_retention_days = $3 WHERE id = $1")
            .bind(team_id).bind(r.recording_retention_days).bind(r.transcript_retention_days)
            .execute(p).await?.rows_affected() == 1))
    }

    /// Teams that keep recordings or transcripts for a limited time.
    pub async fn teams_with_retention(&self) -> Result<Vec<(Uuid, Retention)>> {
        let rows: Vec<(Uuid, Option<i32>, Option<i32>)> = read_pool!(self, p => sqlx::query_as(
            "SELECT id, recording_retention_days, transcript_retention_days FROM teams
             WHERE recording_retention_days IS NOT NULL OR transcript_retention_days IS NOT NULL")
            .fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|(id, r, t)| {
                (
                    id,
                    Retention {
                        recording_retention_days: r,
                        transcript_retention_days: t,
                    },
                )
            })
            .collect())
    }

    /// Up to `limit` of the team's calls that ended before `cutoff` and still have a recording
    /// (as far as the sweep knows); marked as purged in the same write, so each is handed out once.
    pub async fn take_recordings_past(&self, team_id: Uuid, cutoff: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>> {
        transaction!(self, tx => {
            let ids: Vec<Uuid> = sqlx::query_scalar(
                "SELECT id FROM calls WHERE team_id = $1 AND ended_at < $2 AND NOT recording_purged ORDER BY ended_at LIMIT $3")
                .bind(team_id).bind(cutoff).bind(limit).fetch_all(&mut *tx).await?;
            for id in &ids {
                sqlx::query("UPDATE calls SET recording_purged = TRUE WHERE id = $1").bind(id).execute(&mut *tx).await?;
            }
            Ok(ids)
        })
    }

    /// Empties the transcripts of up to `limit` of the team's calls that ended before `cutoff`;
    /// how many. The analysis (summary, data, objectives) stays.
    pub async fn purge_transcripts_past(
        &self,
        team_id: Uuid,
        cutoff: DateTime<Utc>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        transaction!(self, tx => {
            let rows: Vec<(Uuid, Option<Json<Value>>)> = sqlx::query_as(
                "SELECT id, result FROM calls WHERE team_id = $1 AND ended_at < $2 AND NOT transcript_purged ORDER BY ended_at LIMIT $3")
                .bind(team_id).bind(cutoff).bind(limit).fetch_all(&mut *tx).await?;
            for (id, result) in &rows {
                let mut result = result.as_ref().map(|r| r.0.clone()).unwrap_or(Value::Null);
                if let Some(r) = result.as_object_mut() {
                    r.insert("transcript".into(), Value::Array(Vec::new()));
                    r.insert("transcript_purged_at".into(), Value::String(now.to_rfc3339()));
                }
                sqlx::query("UPDATE calls SET result = $2, transcript_purged = TRUE WHERE id = $1")
                    .bind(id).bind(Json(result)).execute(&mut *tx).await?;
            }
            Ok(rows.len() as u64)
        })
    }
}
