//! Idempotency keys: the first response to a creating request, replayed for 24 hours.

use uuid::Uuid;

use super::{transaction, write_pool, Db, Result, StoreError};

/// How long a key is remembered.
pub const RETENTION_MS: i64 = 24 * 60 * 60 * 1000;
/// A first request that has not finished after this long is taken to have died; its key is free again.
pub const ABANDONED_MS: i64 = 60 * 1000;

/// A stored key: request digest, response status and body (absent while in flight), creation time.
type KeyRow = (Vec<u8>, Option<i32>, Option<Vec<u8>>, i64);

#[derive(Debug, PartialEq)]
pub enum Claim {
    /// First use of the key: run the request, then call `finish_idempotent`.
    Proceed,
    /// Seen before with the same request: send this response again.
    Replay { status: u16, body: Vec<u8> },
    /// Seen before with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
}

impl Db {
    pub async fn claim_idempotency_key(
        &self,
        team_id: Uuid,
        key: &str,
        request_hash: &[u8],
        now_ms: i64,
    ) -> Result<Claim> {
        let select = "SELECT request_hash, status, response_body, created_ms FROM idempotency_keys WHERE team_id = $1 AND key = $2";
        let insert = "INSERT INTO idempotency_keys (team_id, key, request_hash, created_ms) VALUES ($1, $2, $3, $4)";
        let delete = "DELETE FROM idempotency_keys WHERE team_id = $1 AND key = $2";
        let claim = transaction!(self, tx => {
            let row: Option<KeyRow> =
                sqlx::query_as(select).bind(team_id).bind(key).fetch_optional(&mut *tx).await?;
            let claim = match row {
                Some((_, _, _, created)) if now_ms - created > RETENTION_MS => None,
                Some((_, None, _, created)) if now_ms - created > ABANDONED_MS => None,
                Some((hash, _, _, _)) if hash != request_hash => Some(Claim::Mismatch),
                Some((_, None, _, _)) => Some(Claim::InFlight),
                Some((_, Some(status), body, _)) => Some(Claim::Replay { status: status as u16, body: body.unwrap_or_default() }),
                None => None,
            };
            match claim {
                Some(c) => Ok::<_, StoreError>(c),
                None => {
                    sqlx::query(delete).bind(team_id).bind(key).execute(&mut *tx).await?;
                    sqlx::query(insert).bind(team_id).bind(key).bind(request_hash).bind(now_ms).execute(&mut *tx).await?;
                    Ok(Claim::Proceed)
                }
            }
        })?;
        Ok(claim)
    }

    /// Records the response to replay; `None` forgets the key so that a retry runs again (used for
    /// server errors and rate limiting, which say nothing final about the request).
    pub async fn finish_idempotency_key(&self, team_id: Uuid, key: &str, response: Option<(u16, &[u8])>) -> Result<()> {
        write_pool!(self, pool => {
            match response {
                Some((status, body)) => {
                    sqlx::query("UPDATE idempotency_keys SET status = $3, response_body = $4 WHERE team_id = $1 AND key = $2")
                        .bind(team_id).bind(key).bind(status as i32).bind(body).execute(pool).await?;
                }
                None => {
                    sqlx::query("DELETE FROM idempotency_keys WHERE team_id = $1 AND key = $2")
                        .bind(team_id).bind(key).execute(pool).await?;
                }
            }
        });
        Ok(())
    }

    /// Drops keys older than the retention period; returns how many.
    pub async fn expire_idempotency_keys(&self, now_ms: i64) -> Result<u64> {
        Ok(write_pool!(self, pool => {
            sqlx::query("DELETE FROM idempotency_keys WHERE created_ms < $1")
                .bind(now_ms - RETENTION_MS).execute(pool).await?.rows_affected()
        }))
    }
}
