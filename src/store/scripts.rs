//! Scripts, stored as their validated JSON definition.

use chrono::{DateTime, Utc};
use sqlx::{types::Json, FromRow};
use uuid::Uuid;

use super::{read_pool, transaction, Db, Result, Seek, WriteError};
use crate::domain::new_id;

/// Why a script was not deleted.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ScriptInUse {
    /// Calls were made with it (they keep it for their transcripts and analysis).
    #[error("{0} calls were made with this script; it is kept for their results")]
    Calls(i64),
}
use crate::conversation::script::Script;

#[derive(Debug, Clone, FromRow)]
pub struct StoredScript {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    pub script_type: String,
    pub definition: Json<Script>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The current version: 1 at creation, one more at each replace.
    pub version: i32,
}

const COLUMNS: &str = "id, team_id, name, script_type, definition, created_at, updated_at, version";

/// One stored version of a script.
#[derive(Debug, Clone, FromRow)]
pub struct ScriptVersion {
    pub id: Uuid,
    pub script_id: Uuid,
    pub version: i32,
    pub name: String,
    pub definition: Json<Script>,
    pub created_at: DateTime<Utc>,
}

const VERSION_COLUMNS: &str = "id, script_id, version, name, definition, created_at";
const INSERT_VERSION: &str =
    "INSERT INTO script_versions (id, script_id, team_id, version, name, definition, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// What a replace does to calls not yet started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledCalls {
    /// They keep the version they were created with (the default).
    Keep,
    /// Scheduled and queued calls move to the new version.
    Move,
}

fn type_name(s: &Script) -> &'static str {
    match s.script_type {
        crate::conversation::script::ScriptType::Inbound => "inbound",
        crate::conversation::script::ScriptType::Outbound => "outbound",
    }
}

impl Db {
    /// Stores a new script as its version 1.
    pub async fn insert_script(
        &self,
        team_id: Uuid,
        id: Uuid,
        script: &Script,
        at: DateTime<Utc>,
    ) -> Result<StoredScript> {
        let sql = format!("INSERT INTO scripts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $6, 1)");
        let definition = Json(script.clone());
        transaction!(self, tx => {
            sqlx::query(&sql).bind(id).bind(team_id).bind(&script.name).bind(type_name(script)).bind(&definition).bind(at)
                .execute(&mut *tx).await?;
            sqlx::query(INSERT_VERSION).bind(new_id()).bind(id).bind(team_id).bind(1).bind(&script.name).bind(&definition)
                .bind(at).execute(&mut *tx).await?;
            Ok::<_, super::StoreError>(())
        })?;
        Ok(StoredScript {
            id,
            team_id,
            name: script.name.clone(),
            script_type: type_name(script).into(),
            definition,
            created_at: at,
            updated_at: at,
            version: 1,
        })
    }

    pub async fn get_script(&self, team_id: Uuid, id: Uuid) -> Result<Option<StoredScript>> {
        let sql = format!("SELECT {COLUMNS} FROM scripts WHERE team_id = $1 AND id = $2");
        Ok(
            read_pool!(self, p => sqlx::query_as::<_, StoredScript>(&sql).bind(team_id).bind(id).fetch_optional(p).await?),
        )
    }

    pub async fn list_scripts(
        &self,
        team_id: Uuid,
        script_type: Option<&str>,
        page: Seek,
    ) -> Result<Vec<StoredScript>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM scripts WHERE team_id = $1 AND ($2 IS NULL OR script_type = $2)
             AND {} {} LIMIT $4",
            page.beyond("id", 3),
            page.order_by("id")
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, StoredScript>(&sql)
            .bind(team_id).bind(script_type).bind(page.after).bind(page.limit).fetch_all(p).await?))
    }

    /// Replaces a script's definition with a new version; `None` when the team has no such script.
    /// Calls not yet started keep their version unless `scheduled` says to move them.
    pub async fn replace_script(
        &self,
        team_id: Uuid,
        id: Uuid,
        script: &Script,
        scheduled: ScheduledCalls,
        at: DateTime<Utc>,
    ) -> Result<Option<StoredScript>> {
        let sql = format!(
            "UPDATE scripts SET name = $3, script_type = $4, definition = $5, updated_at = $6, version = version + 1
             WHERE team_id = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        let definition = Json(script.clone());
        transaction!(self, tx => {
            let stored = sqlx::query_as::<_, StoredScript>(&sql)
                .bind(team_id).bind(id).bind(&script.name).bind(type_name(script)).bind(&definition).bind(at)
                .fetch_optional(&mut *tx).await?;
            if let Some(s) = &stored {
                sqlx::query(INSERT_VERSION).bind(new_id()).bind(id).bind(team_id).bind(s.version).bind(&script.name)
                    .bind(&definition).bind(at).execute(&mut *tx).await?;
                if scheduled == ScheduledCalls::Move {
                    sqlx::query(
                        "UPDATE calls SET script_version = $3 WHERE team_id = $1 AND script_id = $2
                         AND progress IN ('scheduled', 'queued')",
                    )
                    .bind(team_id).bind(id).bind(s.version).execute(&mut *tx).await?;
                }
            }
            Ok::<_, super::StoreError>(stored)
        })
    }

    /// The script's versions, oldest first by default.
    pub async fn list_script_versions(&self, team_id: Uuid, script_id: Uuid, page: Seek) -> Result<Vec<ScriptVersion>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM script_versions WHERE team_id = $1 AND script_id = $2
             AND {} {} LIMIT $4",
            page.beyond("id", 3),
            page.order_by("id")
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, ScriptVersion>(&sql)
            .bind(team_id).bind(script_id).bind(page.after).bind(page.limit).fetch_all(p).await?))
    }

    pub async fn get_script_version(
        &self,
        team_id: Uuid,
        script_id: Uuid,
        version: i32,
    ) -> Result<Option<ScriptVersion>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM script_versions WHERE team_id = $1 AND script_id = $2 AND version = $3"
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, ScriptVersion>(&sql)
            .bind(team_id).bind(script_id).bind(version).fetch_optional(p).await?))
    }

    /// Deletes a script no call was made with (calls keep their script for their results; checked
    /// in the same transaction). `false` when the team has no such script.
    pub async fn delete_script(&self, team_id: Uuid, id: Uuid) -> std::result::Result<bool, WriteError<ScriptInUse>> {
        transaction!(self, tx => {
            let calls: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE team_id = $1 AND script_id = $2")
                .bind(team_id).bind(id).fetch_one(&mut *tx).await?;
            if calls > 0 {
                return Err(WriteError::Refused(ScriptInUse::Calls(calls)));
            }
            let n = sqlx::query("DELETE FROM scripts WHERE team_id = $1 AND id = $2")
                .bind(team_id).bind(id).execute(&mut *tx).await?.rows_affected();
            Ok(n == 1)
        })
    }
}
