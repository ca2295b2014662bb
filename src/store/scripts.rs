//! Scripts, stored as their validated JSON definition.

use chrono::{DateTime, Utc};
use sqlx::{types::Json, FromRow};
use uuid::Uuid;

use super::{read_pool, transaction, write_pool, Db, Result, Seek, WriteError};

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
}

const COLUMNS: &str = "id, team_id, name, script_type, definition, created_at, updated_at";

fn type_name(s: &Script) -> &'static str {
    match s.script_type {
        crate::conversation::script::ScriptType::Inbound => "inbound",
        crate::conversation::script::ScriptType::Outbound => "outbound",
    }
}

impl Db {
    pub async fn insert_script(
        &self,
        team_id: Uuid,
        id: Uuid,
        script: &Script,
        at: DateTime<Utc>,
    ) -> Result<StoredScript> {
        let sql = format!("INSERT INTO scripts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $6)");
        let definition = Json(script.clone());
        write_pool!(self, pool => {
            sqlx::query(&sql).bind(id).bind(team_id).bind(&script.name).bind(type_name(script)).bind(&definition).bind(at)
                .execute(pool).await?;
        });
        Ok(StoredScript {
            id,
            team_id,
            name: script.name.clone(),
            script_type: type_name(script).into(),
            definition,
            created_at: at,
            updated_at: at,
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

    /// Replaces a script's definition; `None` when the team has no such script.
    pub async fn replace_script(
        &self,
        team_id: Uuid,
        id: Uuid,
        script: &Script,
        at: DateTime<Utc>,
    ) -> Result<Option<StoredScript>> {
        let sql = format!(
            "UPDATE scripts SET name = $3, script_type = $4, definition = $5, updated_at = $6
             WHERE team_id = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        let definition = Json(script.clone());
        Ok(write_pool!(self, pool => sqlx::query_as::<_, StoredScript>(&sql)
            .bind(team_id).bind(id).bind(&script.name).bind(type_name(script)).bind(&definition).bind(at)
            .fetch_optional(pool).await?))
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
