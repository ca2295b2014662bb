//! A team's Twilio account: its SID and sealed auth token.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{read_pool, write_pool, Db, Result, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct TwilioAccount {
    pub team_id: Uuid,
    /// `AC` and 32 hex digits.
    pub account_sid: String,
    /// Sealed (`domain::sealed`), bound to the team's id.
    pub auth_token: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "team_id, account_sid, auth_token, created_at, updated_at";

impl Db {
    /// Sets the team's account (replacing the one it had); `Conflict` when another team has this
    /// account SID.
    pub async fn put_twilio_account(&self, a: &TwilioAccount) -> Result<TwilioAccount> {
        let sql = format!(
            "INSERT INTO twilio_accounts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (team_id) DO UPDATE SET account_sid = excluded.account_sid,
                 auth_token = excluded.auth_token, updated_at = excluded.updated_at
             RETURNING {COLUMNS}"
        );
        Ok(write_pool!(self, pool => sqlx::query_as::<_, TwilioAccount>(&sql)
            .bind(a.team_id).bind(&a.account_sid).bind(&a.auth_token).bind(a.created_at).bind(a.updated_at)
            .fetch_one(pool).await.map_err(StoreError::from_write)?))
    }

    pub async fn twilio_account(&self, team_id: Uuid) -> Result<Option<TwilioAccount>> {
        let sql = format!("SELECT {COLUMNS} FROM twilio_accounts WHERE team_id = $1");
        Ok(read_pool!(self, p => sqlx::query_as::<_, TwilioAccount>(&sql).bind(team_id).fetch_optional(p).await?))
    }

    /// The account with this SID, whichever team has it (an inbound webhook names only the SID).
    pub async fn twilio_account_by_sid(&self, account_sid: &str) -> Result<Option<TwilioAccount>> {
        let sql = format!("SELECT {COLUMNS} FROM twilio_accounts WHERE account_sid = $1");
        Ok(read_pool!(self, p => sqlx::query_as::<_, TwilioAccount>(&sql).bind(account_sid).fetch_optional(p).await?))
    }

    /// Forgets the team's account; false when it had none.
    pub async fn remove_twilio_account(&self, team_id: Uuid) -> Result<bool> {
        let removed = write_pool!(self, p => sqlx::query("DELETE FROM twilio_accounts WHERE team_id = $1")
            .bind(team_id).execute(p).await?.rows_affected());
        Ok(removed > 0)
    }
}
