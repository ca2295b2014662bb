//! Calls: where a call is in its life (`progress`), how it turned out (`status`), and the rules the
//! dispatcher applies before dialling (calling windows, retries).

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Attempts of one call that may end with the worker lost (crashed or killed mid-call) before the
/// call is no longer retried: a call that takes every worker down stops instead of looping.
pub const MAX_LOST_ATTEMPTS: i32 = 3;

/// Where a call is in its life. Each transition is recorded once in the call's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// Waiting for its time (or its calling window, or a retry).
    Scheduled,
    /// Due, waiting for a free line (the team's concurrent-call limit).
    Queued,
    Dialing,
    Ringing,
    InProgress,
    /// The conversation is over; the analysis is being made.
    Processing,
    Ended,
    Cancelled,
}

impl Progress {
    pub fn as_str(self) -> &'static str {
        match self {
            Progress::Scheduled => "scheduled",
            Progress::Queued => "queued",
            Progress::Dialing => "dialing",
            Progress::Ringing => "ringing",
            Progress::InProgress => "in_progress",
            Progress::Processing => "processing",
            Progress::Ended => "ended",
            Progress::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    /// Before any dialling: a call can still be cancelled or rescheduled.
    pub fn not_started(self) -> bool {
        matches!(self, Progress::Scheduled | Progress::Queued)
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for CallStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a call, with the exact strings of the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum CallStatus {
    #[serde(rename = "completed")]
    Completed,
    #[serde(rename = "failed")]
    Failed,
    #[serde(rename = "voicemail")]
    Voicemail,
    #[serde(rename = "dropout")]
    Dropout,
    #[serde(rename = "hang-up")]
    HangUp,
    #[serde(rename = "rang-out")]
    RangOut,
    #[serde(rename = "User unavailable")]
    UserUnavailable,
    #[serde(rename = "User rejected")]
    UserRejected,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Completed => "completed",
            CallStatus::Failed => "failed",
            CallStatus::Voicemail => "voicemail",
            CallStatus::Dropout => "dropout",
            CallStatus::HangUp => "hang-up",
            CallStatus::RangOut => "rang-out",
            CallStatus::UserUnavailable => "User unavailable",
            CallStatus::UserRejected => "User rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

fn default_attempts() -> u32 {
    1
}

fn default_retry_on() -> Vec<CallStatus> {
    vec![
        CallStatus::RangOut,
        CallStatus::UserUnavailable,
        CallStatus::Failed,
        CallStatus::Dropout,
    ]
}

fn default_backoff() -> u32 {
    300
}

/// Which outcomes are tried again, how often, and how long to wait (doubling each time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, 1 to 10 (default 1: no retry).
    #[serde(default = "default_attempts")]
    #[schema(minimum = 1, maximum = 10)]
    pub max_attempts: u32,
    /// Outcomes that are tried again (default: rang-out, User unavailable, failed, dropout).
    #[serde(default = "default_retry_on")]
    pub retry_on: Vec<CallStatus>,
    /// Wait before the first retry, in seconds (default 300); doubles for each further one.
    #[serde(default = "default_backoff")]
    #[schema(minimum = 0, maximum = 86400)]
    pub backoff_seconds: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: default_attempts(),
            retry_on: default_retry_on(),
            backoff_seconds: default_backoff(),
        }
    }
}

impl RetryPolicy {
    pub fn check(&self) -> Result<(), String> {
        if !(1..=10).contains(&self.max_attempts) {
            return Err("max_attempts must be between 1 and 10".into());
        }
        if self.backoff_seconds > 86_400 {
            return Err("backoff_seconds must be at most 86400".into());
        }
        Ok(())
    }

    /// When to try again after `attempts` attempts ended with `status`; `None` when the budget or
    /// the policy says no.
    pub fn next_attempt(&self, attempts: u32, status: CallStatus, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if attempts >= self.max_attempts || !self.retry_on.contains(&status) {
            return None;
        }
        let factor = 2u64.saturating_pow(attempts.saturating_sub(1)).min(1 << 10);
        Some(now + Duration::seconds((u64::from(self.backoff_seconds) * factor) as i64))
    }
}

/// Hours in which a call may ring, in the callee's time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallingWindow {
    /// Local opening time, `HH:MM`.
    #[schema(example = "09:00")]
    pub start: String,
    /// Local closing time, `HH:MM` (exclusive).
    #[schema(example = "20:00")]
    pub end: String,
    /// Days calls may ring (default Monday to Saturday): mon, tue, wed, thu, fri, sat, sun.
    #[serde(default = "default_days")]
    pub days: Vec<String>,
}

/// Monday to Saturday.
pub fn default_days() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri", "sat"].map(String::from).to_vec()
}

fn weekday(s: &str) -> Option<Weekday> {
    s.parse::<Weekday>().ok()
}

impl CallingWindow {
    pub fn check(&self) -> Result<(), String> {
        let start = NaiveTime::parse_from_str(&self.start, "%H:%M").map_err(|_| "start must be HH:MM".to_string())?;
        let end = NaiveTime::parse_from_str(&self.end, "%H:%M").map_err(|_| "end must be HH:MM".to_string())?;
        if start >= end {
            return Err("start must be before end".into());
        }
        if self.days.is_empty() || self.days.iter().any(|d| weekday(d).is_none()) {
            return Err("days must be a non-empty list of mon, tue, wed, thu, fri, sat, sun".into());
        }
        Ok(())
    }

    /// `at` if it falls inside the window in `tz`, else the next opening (DST-aware: the local
    /// opening time is resolved in the time zone on that day; a time skipped by a change opens an
    /// hour later).
    pub fn next_open(&self, at: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let (Ok(start), Ok(end)) = (
            NaiveTime::parse_from_str(&self.start, "%H:%M"),
            NaiveTime::parse_from_str(&self.end, "%H:%M"),
        ) else {
            return at;
        };
        let days: Vec<Weekday> = self.days.iter().filter_map(|d| weekday(d)).collect();
        let local = at.with_timezone(&tz);
        for offset in 0..8 {
            let date = local.date_naive() + Duration::days(offset);
            if !days.contains(&date.weekday()) {
                continue;
            }
            let resolve = |t: NaiveTime| {
                tz.from_local_datetime(&date.and_time(t))
                    .earliest()
                    .or_else(|| {
                        tz.from_local_datetime(&(date.and_time(t) + Duration::hours(1)))
                            .earliest()
                    })
                    .map(|d| d.with_timezone(&Utc))
            };
            let (Some(open), Some(close)) = (resolve(start), resolve(end)) else {
                continue;
            };
            if at < open {
                return open;
            }
            if at < close {
                return at;
            }
        }
        at
    }
}

/// The smallest time-ordered id created at `t`: `id >= id_bound(t)` means "created at or after t".
pub fn id_bound(t: DateTime<Utc>) -> uuid::Uuid {
    let ms = t.timestamp_millis().max(0) as u64;
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    uuid::Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn retries_double_and_stop_at_the_budget() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..Default::default()
        };
        let now = utc("2026-11-26T00:00:00Z");
        assert_eq!(
            p.next_attempt(1, CallStatus::RangOut, now),
            Some(now + Duration::seconds(300))
        );
        assert_eq!(
            p.next_attempt(2, CallStatus::RangOut, now),
            Some(now + Duration::seconds(600))
        );
        assert_eq!(p.next_attempt(3, CallStatus::RangOut, now), None);
        assert_eq!(p.next_attempt(1, CallStatus::Completed, now), None);
        assert_eq!(CallStatus::parse("User unavailable"), Some(CallStatus::UserUnavailable));
        assert_eq!(serde_json::to_value(CallStatus::HangUp).unwrap(), "hang-up");
    }

    #[test]
    fn windows_open_in_the_callee_time_zone() {
        let w = CallingWindow {
            start: "09:00".into(),
            end: "20:00".into(),
            days: default_days(),
        };
        let sydney = chrono_tz::Australia::Sydney;
        // Thursday 26 Nov 2026, 06:00 in Sydney (AEDT, UTC+11) → opens 09:00 local = 22:00Z the day before.
        assert_eq!(
            w.next_open(utc("2026-11-25T19:00:00Z"), sydney),
            utc("2026-11-25T22:00:00Z")
        );
        // Inside the window: now.
        assert_eq!(
            w.next_open(utc("2026-11-26T01:00:00Z"), sydney),
            utc("2026-11-26T01:00:00Z")
        );
        // Saturday 21:00 local → Monday 09:00 (Sunday is not a calling day).
        assert_eq!(
            w.next_open(utc("2026-11-28T10:00:00Z"), sydney),
            utc("2026-11-29T22:00:00Z")
        );
    }

    #[test]
    fn windows_follow_daylight_saving_changes() {
        let w = CallingWindow {
            start: "09:00".into(),
            end: "20:00".into(),
            days: ["sun".into(), "mon".into()].to_vec(),
        };
        let sydney = chrono_tz::Australia::Sydney;
        // Sydney leaves daylight saving on Sunday 5 April 2026 at 03:00 (UTC+11 → UTC+10).
        // Saturday 4 April 21:00 local (10:00Z) → Sunday 09:00 AEST = 23:00Z Saturday.
        assert_eq!(
            w.next_open(utc("2026-04-04T10:00:00Z"), sydney),
            utc("2026-04-04T23:00:00Z")
        );
        // And enters it on Sunday 4 October 2026 at 02:00 (UTC+10 → UTC+11): 09:00 AEDT = 22:00Z.
        assert_eq!(
            w.next_open(utc("2026-10-03T12:00:00Z"), sydney),
            utc("2026-10-03T22:00:00Z")
        );
        assert!(CallingWindow {
            start: "20:00".into(),
            end: "09:00".into(),
            days: default_days()
        }
        .check()
        .is_err());
        assert!(CallingWindow {
            start: "9am".into(),
            end: "20:00".into(),
            days: default_days()
        }
        .check()
        .is_err());
    }
}
