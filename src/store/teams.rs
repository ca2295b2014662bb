//! Teams: the tenant every other row belongs to.

use chrono::{DateTime, Utc};
use sqlx::{types::Json, FromRow};
use uuid::Uuid;

use super::{read_pool, write_pool, Db, Result, StoreError};
use crate::domain::call::CallingWindow;

#[derive(Debug, Clone, FromRow)]
pub struct Team {
    pub id: Uuid,
    pub name: String,
    pub region: String,
    pub timezone: String,
    pub requests_per_second: Option<i32>,
    pub max_concurrent_calls: Option<i32>,
    pub created_at: DateTime<Utc>,
    /// Whether the team's live calls are recorded (default true).
    pub recordings: bool,
}

const COLUMNS: &str = "id, name, region, timezone, requests_per_second, max_concurrent_calls, created_at, recordings";

impl Db {
    pub async fn create_team(&self, team: &Team) -> Result<()> {
        let sql =
            "INSERT INTO teams (id, name, region, timezone, requests_per_second, max_concurrent_calls, created_at, recordings)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        write_pool!(self, pool => {
            sqlx::query(sql)
                .bind(team.id)
                .bind(&team.name)
                .bind(&team.region)
                .bind(&team.timezone)
                .bind(team.requests_per_second)
                .bind(team.max_concurrent_calls)
                .bind(team.created_at)
                .bind(team.recordings)
                .execute(pool)
                .await
                .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn get_team(&self, id: Uuid) -> Result<Option<Team>> {
        let sql = format!("SELECT {COLUMNS} FROM teams WHERE id = $1");
        Ok(read_pool!(self, p => sqlx::query_as::<_, Team>(&sql).bind(id).fetch_optional(p).await?))
    }

    /// A team by id or, failing that, by its unique name.
    pub async fn find_team(&self, name_or_id: &str) -> Result<Option<Team>> {
        if let Ok(id) = Uuid::parse_str(name_or_id) {
            let found = self.get_team(id).await?;
            if found.is_some() {
                return Ok(found);
            }
        }
        let sql = format!("SELECT {COLUMNS} FROM teams WHERE name = $1");
        Ok(read_pool!(self, p => sqlx::query_as::<_, Team>(&sql).bind(name_or_id).fetch_optional(p).await?))
    }

    pub async fn list_teams(&self) -> Result<Vec<Team>> {
        let sql = format!("SELECT {COLUMNS} FROM teams ORDER BY id");
        Ok(read_pool!(self, p => sqlx::query_as::<_, Team>(&sql).fetch_all(p).await?))
    }

    /// Per-team overrides of the server's default limits; `None` returns to the default.
    pub async fn set_team_limits(
        &self,
        team_id: Uuid,
        requests_per_second: Option<i32>,
        max_concurrent_calls: Option<i32>,
    ) -> Result<bool> {
        let sql = "UPDATE teams SET requests_per_second = $2, max_concurrent_calls = $3 WHERE id = $1";
        let done = write_pool!(self, pool => {
            sqlx::query(sql)
                .bind(team_id)
                .bind(requests_per_second)
                .bind(max_concurrent_calls)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }
}

impl Db {
    /// The team's default calling window (`None`: calls without a window of their own ring any time).
    pub async fn team_calling_window(&self, team_id: Uuid) -> Result<Option<CallingWindow>> {
        let w: Option<Option<Json<CallingWindow>>> = read_pool!(self, p => sqlx::query_scalar(
            "SELECT calling_window FROM teams WHERE id = $1")
            .bind(team_id).fetch_optional(p).await?);
        Ok(w.flatten().map(|w| w.0))
    }

    /// Sets (or, with `None`, removes) the team's default calling window. Calls already scheduled
    /// follow the new window too, unless they carry their own.
    pub async fn set_team_calling_window(&self, team_id: Uuid, window: Option<&CallingWindow>) -> Result<bool> {
        let done = write_pool!(self, pool => {
            sqlx::query("UPDATE teams SET calling_window = $2 WHERE id = $1")
                .bind(team_id)
                .bind(window.map(Json))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Turns recording of the team's live calls on or off.
    pub async fn set_team_recordings(&self, team_id: Uuid, on: bool) -> Result<bool> {
        let done = write_pool!(self, pool => {
            sqlx::query("UPDATE teams SET recordings = $2 WHERE id = $1")
                .bind(team_id)
                .bind(on)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }
}
