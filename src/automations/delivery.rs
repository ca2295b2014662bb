//! Sends event webhooks, signed the Standard Webhooks way: `webhook-id` (the same on every try),
//! `webhook-timestamp` (unix seconds) and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of
//! `id.timestamp.body` keyed with the endpoint secret; during a rotation's overlap, one signature per
//! secret, space-separated). Network errors, 408, 429 and 5xx are retried with capped exponential
//! backoff, then the delivery is dead-lettered; other answers are final.

use std::time::Instant;

use super::Runner;
use crate::store::webhooks::{Outgoing, TryResult};
use crate::{
    domain::signature::standard_sign as sign,
    outbound::{self, SendError},
};

/// The message id receivers dedupe on.
pub fn message_id(delivery_id: uuid::Uuid) -> String {
    format!("msg_{}", delivery_id.simple())
}

impl Runner {
    /// Claims due deliveries and sends them, concurrently across calls, in order within one.
    pub(crate) async fn deliver_due(&self) -> anyhow::Result<usize> {
        let now_ms = self.now().timestamp_millis();
        let batch = self.settings.concurrency as i64;
        let claimed = self
            .db
            .claim_deliveries(now_ms, &self.owner, self.lease_ms(), batch)
            .await?;
        let n = claimed.len();
        let mut running = tokio::task::JoinSet::new();
        for d in claimed {
            let me = self.clone();
            running.spawn(async move {
                let id = d.id;
                if let Err(e) = me.send(d).await {
                    tracing::warn!(delivery_id = %id, error = %e, "could not record a delivery try");
                }
            });
        }
        while running.join_next().await.is_some() {}
        Ok(n)
    }

    async fn send(&self, d: Outgoing) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&d.payload.0)?;
        let msg_id = message_id(d.id);
        let now = self.now();
        let timestamp = now.timestamp();
        let mut signatures = vec![sign(&d.secret, &msg_id, timestamp, &body)];
        if let (Some(old), Some(until)) = (&d.previous_secret, d.previous_secret_until) {
            if until > now {
                signatures.push(sign(old, &msg_id, timestamp, &body));
            }
        }
        let started = Instant::now();
        let sent = match outbound::check_url(&d.url, self.settings.allow_private_network) {
            Err(e) => Err(SendError::Refused(e)),
            Ok(url) => outbound::send(
                self.http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &msg_id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signatures.join(" "))
                    .body(body),
            )
            .await
            .map(|r| r.status().as_u16()),
        };
        let duration_ms = started.elapsed().as_millis() as i64;
        let attempts = d.attempts + 1;
        let retry = || {
            if attempts >= self.settings.delivery_attempts {
                TryResult::Give("dead_letter")
            } else {
                TryResult::Retry(self.now().timestamp_millis() + self.settings.backoff(attempts).as_millis() as i64)
            }
        };
        let (result, code, error) = match sent {
            Ok(code @ 200..=299) => (TryResult::Delivered, Some(code), None),
            Ok(code @ (408 | 429 | 500..=599)) => (retry(), Some(code), Some(format!("HTTP {code}"))),
            Ok(code) => (TryResult::Give("failed"), Some(code), Some(format!("HTTP {code}"))),
            Err(SendError::Refused(e)) => {
                tracing::warn!(delivery_id = %d.id, url = %d.url, error = %e, "webhook target refused");
                (TryResult::Give("failed"), None, Some(e))
            }
            Err(SendError::Failed(e)) => (retry(), None, Some(e)),
        };
        match &result {
            TryResult::Delivered => tracing::debug!(delivery_id = %d.id, event = %d.event_type, "webhook delivered"),
            _ => {
                tracing::info!(delivery_id = %d.id, event = %d.event_type, attempts, error = error.as_deref().unwrap_or(""), "webhook try failed")
            }
        }
        self.db
            .record_try(
                d.id,
                &self.owner,
                result,
                code.map(i32::from),
                error.as_deref(),
                duration_ms,
                self.now(),
            )
            .await?;
        Ok(())
    }
}
