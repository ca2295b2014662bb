//! Runs automations and sends event webhooks. Three workers share one loop, each a leased queue in
//! the database so that several `voxd serve` processes can share the work and a process that dies
//! loses nothing:
//! - [`events`]: turns call transitions from the outbox into executions (call triggers) and
//!   deliveries (event webhooks);
//! - [`executor`]: runs executions step by step, persisting each step before the next;
//! - [`delivery`]: sends deliveries, signed, with retries, one at a time per call.

pub mod delivery;
pub mod events;
pub mod executor;
pub mod notify;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use crate::{clock::Clock, store::Db};
use notify::Notifier;

/// Tuning of the automation workers; the defaults suit a server, tests shorten them.
#[derive(Debug, Clone)]
pub struct AutomationSettings {
    /// How often an idle worker looks for work.
    pub poll: Duration,
    /// How long a claimed execution or delivery is held before another worker may take it over.
    pub lease: Duration,
    /// Tries of a step that fails transiently before the execution is dead-lettered.
    pub step_attempts: i32,
    /// First retry delay of a step or a delivery; doubles each try up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Tries of a delivery before it is dead-lettered.
    pub delivery_attempts: i32,
    /// Timeout of each outbound HTTP request.
    pub http_timeout: Duration,
    /// Let steps and webhooks reach private and loopback addresses.
    pub allow_private_network: bool,
    /// Executions and deliveries run at once by one process.
    pub concurrency: usize,
    /// Claims of one execution in a row that end with no step committed (its worker died on it)
    /// before it is dead-lettered rather than run again.
    pub max_pickups: i32,
}

impl Default for AutomationSettings {
    fn default() -> Self {
        AutomationSettings {
            poll: Duration::from_millis(200),
            lease: Duration::from_secs(60),
            step_attempts: 5,
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(600),
            delivery_attempts: 8,
            http_timeout: Duration::from_secs(10),
            allow_private_network: false,
            concurrency: 32,
            max_pickups: 5,
        }
    }
}

impl AutomationSettings {
    /// Delay before try `attempt + 1` after `attempt` failed tries: base × 2^(attempt−1), capped.
    pub fn backoff(&self, attempt: i32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.clamp(1, 30) as u32 - 1);
        self.retry_base.saturating_mul(factor).min(self.retry_cap)
    }
}

/// The three workers with what they share.
#[derive(Clone)]
pub struct Runner {
    pub(crate) db: Db,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: Arc<AutomationSettings>,
    pub(crate) http: reqwest::Client,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) owner: String,
}

impl Runner {
    pub fn new(db: Db, clock: Arc<dyn Clock>, notifier: Arc<dyn Notifier>, settings: AutomationSettings) -> Self {
        let http = crate::outbound::client(settings.allow_private_network, settings.http_timeout);
        Runner {
            db,
            clock,
            settings: Arc::new(settings),
            http,
            notifier,
            owner: format!("{}-{}", crate::dispatcher::hostname(), uuid::Uuid::now_v7().simple()),
        }
    }

    /// Names this worker in leases (tests use it to act as two processes).
    pub fn with_owner(mut self, owner: &str) -> Self {
        self.owner = owner.to_owned();
        self
    }

    /// One pass of every worker: fan out events, run due executions to their next wait or end,
    /// send due deliveries. Returns how many items were handled.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let fanned = self.fan_out().await?;
        let executed = self.execute_due().await?;
        let delivered = self.deliver_due().await?;
        Ok(fanned + executed + delivered)
    }

    /// Passes until one finds nothing to do (bounded, for tests).
    pub async fn run_until_idle(&self, max_passes: usize) -> anyhow::Result<usize> {
        let mut total = 0;
        for _ in 0..max_passes {
            let n = self.run_once().await?;
            total += n;
            if n == 0 {
                break;
            }
        }
        Ok(total)
    }

    /// Runs the workers until `stop` resolves, pausing `poll` whenever a pass found nothing.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tracing::info!(owner = %self.owner, "automation worker started");
        tokio::pin!(stop);
        let mut failures = 0u32;
        loop {
            let pause = match self.run_once().await {
                Ok(n) => {
                    failures = 0;
                    if n > 0 {
                        Duration::ZERO
                    } else {
                        self.settings.poll
                    }
                }
                Err(e) => {
                    // The database is away: back off (up to 5 s) instead of failing five times a second.
                    failures += 1;
                    let pause =
                        (self.settings.poll * 2u32.saturating_pow(failures.min(10))).min(Duration::from_secs(5));
                    tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "automation pass failed");
                    pause
                }
            };
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        tracing::info!("automation worker stopped");
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn lease_ms(&self) -> i64 {
        self.settings.lease.as_millis() as i64
    }
}
