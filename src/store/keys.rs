//! API keys, stored as digests. Lookup is by digest; the clear key is never stored.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{read_pool, write_pool, Db, Result, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: Option<String>,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a request's key resolves to: the key and the team settings every handler needs.
#[derive(Debug, Clone, FromRow)]
pub struct KeyOwner {
    pub key_id: Uuid,
    pub team_id: Uuid,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub region: String,
    pub timezone: String,
    pub requests_per_second: Option<i32>,
}

impl Db {
    pub async fn create_key(&self, key: &ApiKey, hash: &[u8]) -> Result<()> {
        let sql = "INSERT INTO api_keys (id, team_id, name, prefix, key_hash, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6)";
        write_pool!(self, pool => {
            sqlx::query(sql)
                .bind(key.id)
                .bind(key.team_id)
                .bind(&key.name)
                .bind(&key.prefix)
                .bind(hash)
                .bind(key.created_at)
                .execute(pool)
                .await
                .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn list_keys(&self, team_id: Uuid) -> Result<Vec<ApiKey>> {
        let sql = "SELECT id, team_id, name, prefix, created_at, last_used_at, revoked_at
                   FROM api_keys WHERE team_id = $1 ORDER BY id";
        Ok(read_pool!(self, p => sqlx::query_as::<_, ApiKey>(sql).bind(team_id).fetch_all(p).await?))
    }

    /// Makes a key for the team and stores its digest; the clear key is returned to be shown once.
    pub async fn issue_key(&self, team_id: Uuid, name: Option<&str>) -> Result<(ApiKey, String)> {
        let generated = crate::domain::api_key::generate();
        let key = ApiKey {
            id: crate::domain::new_id(),
            team_id,
            name: name.map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned),
            prefix: generated.prefix.clone(),
            created_at: crate::domain::now(),
            last_used_at: None,
            revoked_at: None,
        };
        self.create_key(&key, &generated.hash).await?;
        Ok((key, generated.secret))
    }

    /// Revokes one of the team's keys; false when the team has no unrevoked key with that id.
    pub async fn revoke_team_key(&self, team_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let sql = "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND team_id = $2 AND revoked_at IS NULL";
        let n = write_pool!(self, pool => {
            sqlx::query(sql).bind(id).bind(team_id).bind(at).execute(pool).await?.rows_affected()
        });
        Ok(n == 1)
    }

    /// Revokes a key; false when no unrevoked key has that id.
    pub async fn revoke_key(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool> {
        let sql = "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
        let n = write_pool!(self, pool => {
            sqlx::query(sql).bind(id).bind(at).execute(pool).await?.rows_affected()
        });
        Ok(n == 1)
    }

    pub async fn key_owner(&self, hash: &[u8]) -> Result<Option<KeyOwner>> {
        let sql = "SELECT k.id AS key_id, k.team_id, k.last_used_at, k.revoked_at,
                          t.region, t.timezone, t.requests_per_second
                   FROM api_keys k JOIN teams t ON t.id = k.team_id
                   WHERE k.key_hash = $1";
        Ok(read_pool!(self, p => sqlx::query_as::<_, KeyOwner>(sql).bind(hash).fetch_optional(p).await?))
    }

    pub async fn touch_key(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        write_pool!(self, pool => {
            sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
