//! Cursor pagination shared by the listing endpoints: items come oldest first (`order=desc`: newest
//! first); `meta.next_cursor` is the id of the last item when more follow. Ids are time-ordered, so
//! inserts made while a client pages oldest first only ever appear after its cursor, never shift
//! the pages it has seen (newest first, they appear before the first page).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use crate::store::Seek;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `meta.next_cursor` of the previous page.
    #[param(value_type = Option<uuid::Uuid>)]
    pub cursor: Option<String>,
    /// `asc` (default): oldest first; `desc`: newest first.
    pub order: Option<SortOrder>,
}

/// The direction of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Oldest first.
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageMeta {
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    pub limit: u32,
}

pub struct Page {
    pub after: Option<Uuid>,
    pub limit: u32,
    pub order: SortOrder,
}

impl Page {
    pub fn from_params(limit: Option<u32>, cursor: Option<&str>, order: Option<SortOrder>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(
                ApiError::bad_request(format!("limit must be between 1 and {MAX_LIMIT}")).with("field", "limit"),
            );
        }
        let after = match cursor.filter(|c| !c.is_empty()) {
            Some(c) => Some(Uuid::parse_str(c).map_err(|_| {
                ApiError::bad_request("cursor is not a cursor returned by this API").with("field", "cursor")
            })?),
            None => None,
        };
        Ok(Page {
            after,
            limit,
            order: order.unwrap_or_default(),
        })
    }

    /// What the store fetches: one row more than the page, to know whether another page follows.
    pub fn seek(&self) -> Seek {
        Seek {
            after: self.after,
            newest_first: self.order == SortOrder::Desc,
            limit: i64::from(self.limit) + 1,
        }
    }

    /// Trims the extra row and says where the next page starts.
    pub fn finish<T>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> Uuid) -> (Vec<T>, PageMeta) {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| id(r).to_string())
        } else {
            None
        };
        (
            rows,
            PageMeta {
                next_cursor,
                limit: self.limit,
            },
        )
    }
}

/// A time filter in a query string: an RFC 3339 time (`2026-12-01T09:00:00Z`, `…+10:00`) or a date
/// (`2026-12-01`, meaning its start, 00:00 UTC).
#[derive(Debug, Clone, Copy)]
pub struct TimeBound(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for TimeBound {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_time_bound(&text).map(TimeBound).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is neither a date (2026-12-01) nor an RFC 3339 time (2026-12-01T09:00:00Z)"
            ))
        })
    }
}

fn parse_time_bound(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

#[cfg(test)]
mod tests {
    use super::parse_time_bound;

    #[test]
    fn time_bounds_take_dates_and_rfc3339() {
        let day = parse_time_bound("2026-12-01").unwrap();
        assert_eq!(day.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        let zoned = parse_time_bound("2026-12-01T09:00:00+10:00").unwrap();
        assert_eq!(zoned.to_rfc3339(), "2026-11-30T23:00:00+00:00");
        assert!(parse_time_bound("2026-13-01").is_none());
        assert!(parse_time_bound("yesterday").is_none());
        assert!(parse_time_bound("").is_none());
    }
}
