//! Dashboard users and their sign-in sessions. A user belongs to one team; a session is found by
//! the digest of its cookie and ends at `expires_at` or at sign-out.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{read_pool, transaction, write_pool, Db, Result, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: Uuid,
    pub team_id: Uuid,
    pub email: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_signed_in_at: Option<DateTime<Utc>>,
}

/// What a request's session cookie resolves to: the user, their team's settings, the CSRF token.
#[derive(Debug, Clone, FromRow)]
pub struct SessionOwner {
    pub user_id: Uuid,
    pub email: String,
    pub team_id: Uuid,
    pub team_name: String,
    pub region: String,
    pub timezone: String,
    pub requests_per_second: Option<i32>,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

const USER_COLUMNS: &str = "id, team_id, email, password_hash, created_at, last_signed_in_at";

impl Db {
    /// Adds a user; `Conflict` when the email is taken (emails are unique across teams, so a
    /// sign-in names one team).
    pub async fn create_user(&self, user: &User) -> Result<()> {
        let sql = "INSERT INTO dashboard_users (id, team_id, email, password_hash, created_at)
                   VALUES ($1, $2, $3, $4, $5)";
        write_pool!(self, pool => {
            sqlx::query(sql)
                .bind(user.id)
                .bind(user.team_id)
                .bind(&user.email)
                .bind(&user.password_hash)
                .bind(user.created_at)
                .execute(pool)
                .await
                .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM dashboard_users WHERE email = $1");
        Ok(read_pool!(self, p => sqlx::query_as::<_, User>(&sql).bind(email).fetch_optional(p).await?))
    }

    pub async fn list_users(&self, team_id: Uuid) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM dashboard_users WHERE team_id = $1 ORDER BY email");
        Ok(read_pool!(self, p => sqlx::query_as::<_, User>(&sql).bind(team_id).fetch_all(p).await?))
    }

    /// Removes a user and (by cascade) their sessions; false when there is none by that email.
    pub async fn remove_user(&self, email: &str) -> Result<bool> {
        let n = write_pool!(self, pool => {
            sqlx::query("DELETE FROM dashboard_users WHERE email = $1")
                .bind(email).execute(pool).await?.rows_affected()
        });
        Ok(n == 1)
    }

    /// Replaces a user's password and ends every session they have.
    pub async fn set_user_password(&self, user_id: Uuid, password_hash: &str) -> Result<()> {
        transaction!(self, tx => {
            sqlx::query("UPDATE dashboard_users SET password_hash = $2 WHERE id = $1")
                .bind(user_id).bind(password_hash).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM dashboard_sessions WHERE user_id = $1")
                .bind(user_id).execute(&mut *tx).await?;
            Ok(())
        })
    }

    pub async fn create_session(
        &self,
        token_hash: &[u8],
        user_id: Uuid,
        csrf_token: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        transaction!(self, tx => {
            sqlx::query("INSERT INTO dashboard_sessions (token_hash, user_id, csrf_token, created_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5)")
                .bind(token_hash).bind(user_id).bind(csrf_token).bind(at).bind(expires_at)
                .execute(&mut *tx).await?;
            sqlx::query("UPDATE dashboard_users SET last_signed_in_at = $2 WHERE id = $1")
                .bind(user_id).bind(at).execute(&mut *tx).await?;
            Ok(())
        })
    }

    /// The live session with this digest (an expired one is as good as none).
    pub async fn session_owner(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Option<SessionOwner>> {
        let sql = "SELECT u.id AS user_id, u.email, u.team_id, t.name AS team_name, t.region, t.timezone,
                          t.requests_per_second, s.csrf_token, s.expires_at
                   FROM dashboard_sessions s
                   JOIN dashboard_users u ON u.id = s.user_id
                   JOIN teams t ON t.id = u.team_id
                   WHERE s.token_hash = $1 AND s.expires_at > $2";
        Ok(read_pool!(self, p => sqlx::query_as::<_, SessionOwner>(sql)
            .bind(token_hash).bind(now).fetch_optional(p).await?))
    }

    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<()> {
        write_pool!(self, pool => {
            sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1")
                .bind(token_hash).execute(pool).await?;
        });
        Ok(())
    }

    /// Forgets sessions that have expired; returns how many.
    pub async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        Ok(write_pool!(self, pool => {
            sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at <= $1")
                .bind(now).execute(pool).await?.rows_affected()
        }))
    }
}
