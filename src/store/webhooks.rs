//! Outbound event webhooks: a team's endpoints, the deliveries queued for them (leased like calls,
//! one at a time per ordering key so that a call's events arrive in order) and each try.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{types::Json, FromRow};
use uuid::Uuid;

use super::{read_pool, transaction, write_pool, Db, Result, Seek, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct Endpoint {
    pub id: Uuid,
    pub team_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub events: Json<Vec<String>>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str = "id, team_id, url, description, events, secret, previous_secret, \
     previous_secret_until, enabled, created_at, updated_at";

#[derive(Debug, Clone, FromRow)]
pub struct Delivery {
    pub id: Uuid,
    pub team_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: String,
    pub ordering_key: String,
    pub seq: i64,
    pub payload: Json<Value>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_ms: i64,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "id, team_id, endpoint_id, event_type, ordering_key, seq, payload, status, attempts, \
     next_attempt_ms, last_status, last_error, created_at, delivered_at";

#[derive(Debug, Clone, FromRow)]
pub struct Attempt {
    pub id: Uuid,
    pub delivery_id: Uuid,
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A delivery to queue.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: Uuid,
    pub team_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: String,
    pub ordering_key: String,
    pub seq: i64,
    pub payload: Value,
    pub at: DateTime<Utc>,
}

/// Inserts a [`NewDelivery`] inside a transaction (both backends' transactions, hence a macro).
macro_rules! insert_delivery {
    ($tx:ident, $d:expr) => {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, team_id, endpoint_id, event_type, ordering_key, seq, payload, status,
               attempts, next_attempt_ms, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $9)",
        )
        .bind($d.id)
        .bind($d.team_id)
        .bind($d.endpoint_id)
        .bind(&$d.event_type)
        .bind(&$d.ordering_key)
        .bind($d.seq)
        .bind(sqlx::types::Json(&$d.payload))
        .bind($d.at.timestamp_millis())
        .bind($d.at)
        .execute(&mut *$tx)
        .await?
    };
}
pub(crate) use insert_delivery;

/// A claimed delivery with what sending it needs.
#[derive(Debug, Clone, FromRow)]
pub struct Outgoing {
    pub id: Uuid,
    pub event_type: String,
    pub payload: Json<Value>,
    /// Tries since it was last redelivered (the retry budget counts these).
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
}

/// How a try ended.
pub enum TryResult {
    Delivered,
    /// Try again at this time.
    Retry(i64),
    /// Final: `failed` (refused by the receiver) or `dead_letter` (out of tries).
    Give(&'static str),
}

/// Filters of a delivery log.
#[derive(Debug, Default)]
pub struct DeliveryFilter {
    pub status: Option<String>,
    pub event_type: Option<String>,
    pub page: Seek,
}

impl Db {
    pub async fn insert_endpoint(&self, e: &Endpoint) -> Result<()> {
        let sql = format!(
            "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        write_pool!(self, p => {
            sqlx::query(&sql)
                .bind(e.id).bind(e.team_id).bind(&e.url).bind(&e.description).bind(&e.events).bind(&e.secret)
                .bind(&e.previous_secret).bind(e.previous_secret_until).bind(e.enabled).bind(e.created_at).bind(e.updated_at)
                .execute(p).await.map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn get_endpoint(&self, team_id: Uuid, id: Uuid) -> Result<Option<Endpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE team_id = $1 AND id = $2");
        Ok(read_pool!(self, p => sqlx::query_as(&sql).bind(team_id).bind(id).fetch_optional(p).await?))
    }

    pub async fn list_endpoints(&self, team_id: Uuid, page: Seek) -> Result<Vec<Endpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE team_id = $1 AND {} {} LIMIT $3",
            page.beyond("id", 2),
            page.order_by("id")
        );
        Ok(
            read_pool!(self, p => sqlx::query_as(&sql).bind(team_id).bind(page.after).bind(page.limit).fetch_all(p).await?),
        )
    }

    /// The team's enabled endpoints subscribed to the event.
    pub async fn subscribed_endpoints(&self, team_id: Uuid, event_type: &str) -> Result<Vec<Endpoint>> {
        let sql =
            format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE team_id = $1 AND enabled ORDER BY id");
        let all: Vec<Endpoint> = read_pool!(self, p => sqlx::query_as(&sql).bind(team_id).fetch_all(p).await?);
        Ok(all
            .into_iter()
            .filter(|e| e.events.0.iter().any(|x| x == event_type))
            .collect())
    }

    /// Saves url, description, events, enabled and the secrets as given.
    pub async fn update_endpoint(&self, e: &Endpoint) -> Result<bool> {
        let sql = "UPDATE webhook_endpoints SET url = $3, description = $4, events = $5, enabled = $6, secret = $7,
                     previous_secret = $8, previous_secret_until = $9, updated_at = $10 WHERE team_id = $1 AND id = $2";
        let done = write_pool!(self, p => sqlx::query(sql)
            .bind(e.team_id).bind(e.id).bind(&e.url).bind(&e.description).bind(&e.events).bind(e.enabled).bind(&e.secret)
            .bind(&e.previous_secret).bind(e.previous_secret_until).bind(e.updated_at)
            .execute(p).await?.rows_affected());
        Ok(done == 1)
    }

    pub async fn delete_endpoint(&self, team_id: Uuid, id: Uuid) -> Result<bool> {
        let done = write_pool!(self, p => sqlx::query("DELETE FROM webhook_endpoints WHERE team_id = $1 AND id = $2")
            .bind(team_id).bind(id).execute(p).await?.rows_affected());
        Ok(done == 1)
    }

    pub async fn list_deliveries(&self, endpoint_id: Uuid, f: &DeliveryFilter) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2 IS NULL OR status = $2)
               AND ($3 IS NULL OR event_type = $3) AND {} {} LIMIT $5",
            f.page.beyond("id", 4),
            f.page.order_by("id")
        );
        Ok(read_pool!(self, p => sqlx::query_as(&sql)
            .bind(endpoint_id).bind(&f.status).bind(&f.event_type).bind(f.page.after).bind(f.page.limit).fetch_all(p).await?))
    }

    pub async fn get_delivery(&self, team_id: Uuid, id: Uuid) -> Result<Option<Delivery>> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE team_id = $1 AND id = $2");
        Ok(read_pool!(self, p => sqlx::query_as(&sql).bind(team_id).bind(id).fetch_optional(p).await?))
    }

    pub async fn delivery_attempts(&self, delivery_id: Uuid) -> Result<Vec<Attempt>> {
        let sql = "SELECT id, delivery_id, at, status_code, error, duration_ms FROM webhook_attempts
                   WHERE delivery_id = $1 ORDER BY id";
        Ok(read_pool!(self, p => sqlx::query_as(sql).bind(delivery_id).fetch_all(p).await?))
    }

    /// Sends a delivery again (same `webhook-id`): back to pending, due now, with a fresh budget.
    pub async fn redeliver(&self, team_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<Option<Delivery>> {
        let sql = format!(
            "UPDATE webhook_deliveries SET status = 'pending', tries_before_redeliver = attempts, next_attempt_ms = $3, lease_owner = NULL,
               lease_until_ms = NULL, delivered_at = NULL
             WHERE team_id = $1 AND id = $2 AND status <> 'pending' RETURNING {DELIVERY_COLUMNS}"
        );
        Ok(
            write_pool!(self, p => sqlx::query_as(&sql).bind(team_id).bind(id).bind(at.timestamp_millis()).fetch_optional(p).await?),
        )
    }

    /// Leases due deliveries to `owner`: only the first pending one of each ordering key, so a call's
    /// events never overtake each other.
    pub async fn claim_deliveries(&self, now_ms: i64, owner: &str, lease_ms: i64, batch: i64) -> Result<Vec<Outgoing>> {
        let lock = if matches!(self, Db::Postgres(_)) {
            " FOR UPDATE OF d SKIP LOCKED"
        } else {
            ""
        };
        let pick = format!(
            "SELECT d.id FROM webhook_deliveries d
             WHERE d.status = 'pending' AND d.next_attempt_ms <= $1 AND (d.lease_until_ms IS NULL OR d.lease_until_ms < $1)
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id
                               AND p.ordering_key = d.ordering_key AND p.status = 'pending' AND p.seq < d.seq)
             ORDER BY d.next_attempt_ms, d.seq LIMIT $2{lock}"
        );
        let take = "UPDATE webhook_deliveries SET lease_owner = $2, lease_until_ms = $3 WHERE id = $1";
        // `attempts` here is the tries since the last redelivery: the retry budget's count.
        let read = "SELECT d.id, d.event_type, d.payload, d.attempts - d.tries_before_redeliver AS attempts, d.created_at, e.url, e.secret, e.previous_secret,
                      e.previous_secret_until
                    FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1";
        // Most passes find nothing: ask a reader first instead of taking SQLite's write lock.
        let any = format!(
            "SELECT EXISTS ({})",
            pick.replace(lock, "").replace("LIMIT $2", "LIMIT 1")
        );
        let due: bool = read_pool!(self, p => sqlx::query_scalar(&any).bind(now_ms).fetch_one(p).await?);
        if !due {
            return Ok(Vec::new());
        }
        transaction!(self, tx => {
            let ids: Vec<Uuid> = sqlx::query_scalar(&pick).bind(now_ms).bind(batch).fetch_all(&mut *tx).await?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                sqlx::query(take).bind(id).bind(owner).bind(now_ms + lease_ms).execute(&mut *tx).await?;
                out.push(sqlx::query_as::<_, Outgoing>(read).bind(id).fetch_one(&mut *tx).await?);
            }
            Ok(out)
        })
    }

    /// Records one try and its consequence, if `owner` still holds the lease.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_try(
        &self,
        id: Uuid,
        owner: &str,
        result: TryResult,
        status_code: Option<i32>,
        error: Option<&str>,
        duration_ms: i64,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let (status, next_ms, delivered_at) = match result {
            TryResult::Delivered => ("delivered", None, Some(at)),
            TryResult::Retry(ms) => ("pending", Some(ms), None),
            TryResult::Give(s) => (s, None, None),
        };
        let update = "UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1,
                        next_attempt_ms = COALESCE($4, next_attempt_ms), last_status = $5, last_error = $6,
                        delivered_at = $7, lease_owner = NULL, lease_until_ms = NULL
                      WHERE id = $1 AND lease_owner = $2";
        transaction!(self, tx => {
            let done = sqlx::query(update)
                .bind(id).bind(owner).bind(status).bind(next_ms).bind(status_code).bind(error).bind(delivered_at)
                .execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query("INSERT INTO webhook_attempts (id, delivery_id, at, status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(crate::domain::new_id()).bind(id).bind(at).bind(status_code).bind(error).bind(duration_ms)
                .execute(&mut *tx).await?;
            Ok(true)
        })
    }
}
