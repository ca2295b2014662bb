//! SIP trunks of a team, and which of its numbers ring through which trunk.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::{read_pool, write_pool, Db, Result, Seek, StoreError};

#[derive(Debug, Clone, FromRow)]
pub struct Trunk {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    pub host: String,
    pub port: i32,
    /// `udp` (the only transport so far).
    pub transport: String,
    pub username: Option<String>,
    /// Sealed (`domain::sealed`), bound to the trunk's id.
    pub password: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, team_id, name, host, port, transport, username, password, created_at";

impl Db {
    /// Adds a trunk; `Conflict` when the team has one by that name.
    pub async fn add_trunk(&self, t: &Trunk) -> Result<()> {
        let sql = format!("INSERT INTO sip_trunks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
        write_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(t.id).bind(t.team_id).bind(&t.name).bind(&t.host).bind(t.port).bind(&t.transport)
                .bind(&t.username).bind(&t.password).bind(t.created_at)
                .execute(pool).await.map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn list_trunks(&self, team_id: Uuid) -> Result<Vec<Trunk>> {
        let sql = format!("SELECT {COLUMNS} FROM sip_trunks WHERE team_id = $1 ORDER BY name");
        Ok(read_pool!(self, p => sqlx::query_as::<_, Trunk>(&sql).bind(team_id).fetch_all(p).await?))
    }

    /// A page of the team's trunks in id order.
    pub async fn page_trunks(&self, team_id: Uuid, page: Seek) -> Result<Vec<Trunk>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM sip_trunks WHERE team_id = $1 AND {} {} LIMIT $3",
            page.beyond("id", 2),
            page.order_by("id")
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, Trunk>(&sql)
            .bind(team_id).bind(page.after).bind(page.limit).fetch_all(p).await?))
    }

    pub async fn get_trunk(&self, team_id: Uuid, id: Uuid) -> Result<Option<Trunk>> {
        let sql = format!("SELECT {COLUMNS} FROM sip_trunks WHERE team_id = $1 AND id = $2");
        Ok(read_pool!(self, p => sqlx::query_as::<_, Trunk>(&sql).bind(team_id).bind(id).fetch_optional(p).await?))
    }

    pub async fn trunk_by_name(&self, team_id: Uuid, name: &str) -> Result<Option<Trunk>> {
        let sql = format!("SELECT {COLUMNS} FROM sip_trunks WHERE team_id = $1 AND name = $2");
        Ok(read_pool!(self, p => sqlx::query_as::<_, Trunk>(&sql).bind(team_id).bind(name).fetch_optional(p).await?))
    }

    /// How many of the team's numbers ring through the trunk.
    pub async fn trunk_numbers(&self, trunk_id: Uuid) -> Result<i64> {
        Ok(
            read_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM phone_numbers WHERE trunk_id = $1")
            .bind(trunk_id).fetch_one(p).await?),
        )
    }

    pub async fn remove_trunk(&self, team_id: Uuid, id: Uuid) -> Result<bool> {
        let n = write_pool!(self, pool => sqlx::query("DELETE FROM sip_trunks WHERE team_id = $1 AND id = $2")
            .bind(team_id).bind(id).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    /// The trunk the team's number rings through, if any.
    pub async fn trunk_for_number(&self, team_id: Uuid, number: &str) -> Result<Option<Trunk>> {
        let sql = "SELECT t.id, t.team_id, t.name, t.host, t.port, t.transport, t.username, t.password, t.created_at
                   FROM phone_numbers n JOIN sip_trunks t ON t.id = n.trunk_id
                   WHERE n.team_id = $1 AND n.number = $2";
        Ok(read_pool!(self, p => sqlx::query_as::<_, Trunk>(sql).bind(team_id).bind(number).fetch_optional(p).await?))
    }
}
