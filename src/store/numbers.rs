//! A team's phone numbers: its caller ids, each with the inbound script that answers it.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{read_pool, transaction, write_pool, Db, Result, Seek, StoreError, WriteError};

#[derive(Debug, Clone, FromRow)]
pub struct PhoneNumber {
    pub id: Uuid,
    pub team_id: Uuid,
    /// E.164.
    pub number: String,
    pub inbound_script_id: Option<Uuid>,
    /// The SIP trunk calls from the number ring through; none: the simulated network.
    pub trunk_id: Option<Uuid>,
    /// Calls from and to the number go through the team's Twilio account.
    pub twilio: bool,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, team_id, number, inbound_script_id, trunk_id, twilio, created_at";

/// Calls not yet over hold on to the number they ring from.
const ACTIVE_CALLS_FROM: &str = "SELECT COUNT(*) FROM calls WHERE team_id = $1 AND from_number = $2
       AND progress NOT IN ('ended', 'cancelled')";

/// Why a number was not removed.
#[derive(Debug, PartialEq)]
pub enum NumberInUse {
    /// Calls that are scheduled or under way ring from it.
    ActiveCalls(i64),
}

impl Db {
    /// Adds a number; `Conflict` when the team has it already.
    pub async fn add_number(&self, n: &PhoneNumber) -> Result<()> {
        write_pool!(self, pool => {
            sqlx::query(&format!("INSERT INTO phone_numbers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                .bind(n.id).bind(n.team_id).bind(&n.number).bind(n.inbound_script_id).bind(n.trunk_id).bind(n.twilio).bind(n.created_at)
                .execute(pool).await.map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// A page of the team's numbers, by id.
    pub async fn page_numbers(&self, team_id: Uuid, page: Seek) -> Result<Vec<PhoneNumber>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM phone_numbers WHERE team_id = $1 AND {} {} LIMIT $3",
            page.beyond("id", 2),
            page.order_by("id")
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, PhoneNumber>(&sql)
            .bind(team_id).bind(page.after).bind(page.limit).fetch_all(p).await?))
    }

    pub async fn get_number(&self, team_id: Uuid, id: Uuid) -> Result<Option<PhoneNumber>> {
        let sql = format!("SELECT {COLUMNS} FROM phone_numbers WHERE team_id = $1 AND id = $2");
        Ok(
            read_pool!(self, p => sqlx::query_as::<_, PhoneNumber>(&sql).bind(team_id).bind(id).fetch_optional(p).await?),
        )
    }

    /// The team's number with this E.164 value.
    pub async fn team_number(&self, team_id: Uuid, number: &str) -> Result<Option<PhoneNumber>> {
        let sql = format!("SELECT {COLUMNS} FROM phone_numbers WHERE team_id = $1 AND number = $2");
        Ok(
            read_pool!(self, p => sqlx::query_as::<_, PhoneNumber>(&sql).bind(team_id).bind(number).fetch_optional(p).await?),
        )
    }

    /// The numbers with this E.164 value, whichever team has them.
    pub async fn numbers_by_value(&self, number: &str) -> Result<Vec<PhoneNumber>> {
        let sql = format!("SELECT {COLUMNS} FROM phone_numbers WHERE number = $1");
        Ok(read_pool!(self, p => sqlx::query_as::<_, PhoneNumber>(&sql).bind(number).fetch_all(p).await?))
    }

    /// Sets (or, with `None`, clears) the script that answers the number; the number as it is
    /// now, or `None` when the team has no such number.
    pub async fn set_inbound_script(
        &self,
        team_id: Uuid,
        id: Uuid,
        script: Option<Uuid>,
    ) -> Result<Option<PhoneNumber>> {
        let sql = format!(
            "UPDATE phone_numbers SET inbound_script_id = $3 WHERE team_id = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        Ok(write_pool!(self, p => sqlx::query_as::<_, PhoneNumber>(&sql)
            .bind(team_id).bind(id).bind(script).fetch_optional(p).await?))
    }

    /// Puts one of the team's numbers on a trunk of the team (`None`: off any trunk).
    pub async fn set_number_trunk(&self, team_id: Uuid, id: Uuid, trunk: Option<Uuid>) -> Result<Option<PhoneNumber>> {
        let sql = format!("UPDATE phone_numbers SET trunk_id = $3 WHERE team_id = $1 AND id = $2 RETURNING {COLUMNS}");
        Ok(write_pool!(self, p => sqlx::query_as::<_, PhoneNumber>(&sql)
            .bind(team_id).bind(id).bind(trunk).fetch_optional(p).await?))
    }

    /// Marks one of the team's numbers as on its Twilio account, or off it.
    pub async fn set_number_twilio(&self, team_id: Uuid, id: Uuid, twilio: bool) -> Result<Option<PhoneNumber>> {
        let sql = format!("UPDATE phone_numbers SET twilio = $3 WHERE team_id = $1 AND id = $2 RETURNING {COLUMNS}");
        Ok(write_pool!(self, p => sqlx::query_as::<_, PhoneNumber>(&sql)
            .bind(team_id).bind(id).bind(twilio).fetch_optional(p).await?))
    }

    /// Removes a number no active call rings from (checked in the same transaction); `false` when
    /// the team has no such number.
    pub async fn remove_number(&self, team_id: Uuid, id: Uuid) -> std::result::Result<bool, WriteError<NumberInUse>> {
        transaction!(self, tx => {
            let number: Option<String> = sqlx::query_scalar("SELECT number FROM phone_numbers WHERE team_id = $1 AND id = $2")
                .bind(team_id).bind(id).fetch_optional(&mut *tx).await?;
            let Some(number) = number else { return Ok(false) };
            let active: i64 = sqlx::query_scalar(ACTIVE_CALLS_FROM).bind(team_id).bind(&number).fetch_one(&mut *tx).await?;
            if active > 0 {
                return Err(WriteError::Refused(NumberInUse::ActiveCalls(active)));
            }
            sqlx::query("DELETE FROM phone_numbers WHERE team_id = $1 AND id = $2").bind(team_id).bind(id).execute(&mut *tx).await?;
            Ok(true)
        })
    }
}
