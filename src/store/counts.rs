//! Counts across every team, for the metrics gauges (no ids, numbers or words: label values are
//! progress, status, call type and team name).

use super::{read_pool, Db, Result};

/// Label values and counts of each gauge.
#[derive(Debug, Default)]
pub struct PlatformCounts {
    pub calls: Vec<(Vec<String>, i64)>,
    pub live_calls: Vec<(Vec<String>, i64)>,
    pub queued_calls: Vec<(Vec<String>, i64)>,
    pub executions: Vec<(Vec<String>, i64)>,
    pub deliveries: Vec<(Vec<String>, i64)>,
}

const CALLS: &str = "SELECT progress, COALESCE(status, ''), COUNT(*) FROM calls GROUP BY progress, status";
const LIVE: &str = "SELECT call_type, COUNT(*) FROM calls WHERE progress IN ('dialing', 'ringing', 'in_progress')
     GROUP BY call_type";
const QUEUED: &str = "SELECT t.name, COUNT(*) FROM calls c JOIN teams t ON t.id = c.team_id
     WHERE c.progress = 'queued' GROUP BY t.name";
const EXECUTIONS: &str = "SELECT status, COUNT(*) FROM executions GROUP BY status";
const DELIVERIES: &str = "SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status";

impl Db {
    pub async fn platform_counts(&self) -> Result<PlatformCounts> {
        let one = |rows: Vec<(String, i64)>| rows.into_iter().map(|(a, n)| (vec![a], n)).collect();
        let calls: Vec<(String, String, i64)> = read_pool!(self, p => sqlx::query_as(CALLS).fetch_all(p).await?);
        Ok(PlatformCounts {
            calls: calls.into_iter().map(|(p, s, n)| (vec![p, s], n)).collect(),
            live_calls: one(read_pool!(self, p => sqlx::query_as(LIVE).fetch_all(p).await?)),
            queued_calls: one(read_pool!(self, p => sqlx::query_as(QUEUED).fetch_all(p).await?)),
            executions: one(read_pool!(self, p => sqlx::query_as(EXECUTIONS).fetch_all(p).await?)),
            deliveries: one(read_pool!(self, p => sqlx::query_as(DELIVERIES).fetch_all(p).await?)),
        })
    }
}
