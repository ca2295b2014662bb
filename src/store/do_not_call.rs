//! A team's do-not-call list: E.164 numbers its outbound calls never ring.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{read_pool, transaction, write_pool, Db, Result, Seek};

#[derive(Debug, Clone, FromRow)]
pub struct Suppression {
    pub id: Uuid,
    pub team_id: Uuid,
    /// E.164.
    pub phone_number: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, team_id, phone_number, reason, created_at";

/// Listed already: the insert does nothing and the earlier entry (and its reason) stands.
const INSERT: &str = "INSERT INTO do_not_call (id, team_id, phone_number, reason, created_at)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (team_id, phone_number) DO NOTHING";

impl Db {
    /// Lists the number unless it is listed; the entry as stored and whether this added it.
    pub async fn add_suppression(&self, s: &Suppression) -> Result<(Suppression, bool)> {
        let select = format!("SELECT {COLUMNS} FROM do_not_call WHERE team_id = $1 AND phone_number = $2");
        transaction!(self, tx => {
            let added = sqlx::query(INSERT)
                .bind(s.id).bind(s.team_id).bind(&s.phone_number).bind(&s.reason).bind(s.created_at)
                .execute(&mut *tx).await?.rows_affected() == 1;
            let stored = sqlx::query_as::<_, Suppression>(&select)
                .bind(s.team_id).bind(&s.phone_number).fetch_one(&mut *tx).await?;
            Ok((stored, added))
        })
    }

    /// Lists many numbers in one transaction (an import's batch); how many were new.
    pub async fn add_suppressions(&self, entries: &[Suppression]) -> Result<u64> {
        transaction!(self, tx => {
            let mut added = 0;
            for s in entries {
                added += sqlx::query(INSERT)
                    .bind(s.id).bind(s.team_id).bind(&s.phone_number).bind(&s.reason).bind(s.created_at)
                    .execute(&mut *tx).await?.rows_affected();
            }
            Ok(added)
        })
    }

    /// The team's entry for this E.164 number, if it is listed.
    pub async fn suppression(&self, team_id: Uuid, phone_number: &str) -> Result<Option<Suppression>> {
        let sql = format!("SELECT {COLUMNS} FROM do_not_call WHERE team_id = $1 AND phone_number = $2");
        Ok(read_pool!(self, p => sqlx::query_as::<_, Suppression>(&sql)
            .bind(team_id).bind(phone_number).fetch_optional(p).await?))
    }

    /// A page of the team's list, by id (the order numbers were added in).
    pub async fn page_suppressions(&self, team_id: Uuid, page: Seek) -> Result<Vec<Suppression>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM do_not_call WHERE team_id = $1 AND {} {} LIMIT $3",
            page.beyond("id", 2),
            page.order_by("id")
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, Suppression>(&sql)
            .bind(team_id).bind(page.after).bind(page.limit).fetch_all(p).await?))
    }

    /// Takes the number off the list; `false` when it was not on it.
    pub async fn remove_suppression(&self, team_id: Uuid, phone_number: &str) -> Result<bool> {
        Ok(
            write_pool!(self, p => sqlx::query("DELETE FROM do_not_call WHERE team_id = $1 AND phone_number = $2")
            .bind(team_id).bind(phone_number).execute(p).await?.rows_affected() == 1),
        )
    }
}
