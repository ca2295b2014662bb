//! Cursor pagination shared by the listing endpoints: items come oldest first; `meta.next_cursor` is
//! the id of the last item when more follow. Ids are time-ordered, so inserts made while a client
//! pages only ever appear after its cursor, never shift the pages it has seen.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::ApiError;

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
}

impl Page {
    pub fn from_params(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, ApiError> {
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
        Ok(Page { after, limit })
    }

    /// How many rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
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
