//! Object types (team-defined schemas) and objects (typed JSON records linked to contacts).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{types::Json, FromRow};
use uuid::Uuid;

use super::{read_pool, transaction, write_pool, Db, Result, Seek, StoreError, WriteError};

#[derive(Debug, Clone, FromRow)]
pub struct ObjectType {
    pub id: Uuid,
    pub team_id: Uuid,
    pub type_name: String,
    pub display_name: String,
    pub description: Option<String>,
    pub schema: Json<Value>,
    pub schema_form: String,
    pub json_schema: Json<Value>,
    pub validation_mode: String,
    pub unique_by_contact: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const TYPE_COLUMNS: &str = "id, team_id, type_name, display_name, description, schema, schema_form, \
     json_schema, validation_mode, unique_by_contact, created_at, updated_at";

#[derive(Debug, Clone, FromRow)]
pub struct Object {
    pub id: Uuid,
    pub team_id: Uuid,
    pub object_type_id: Uuid,
    pub type_name: String,
    /// The type's `unique_by_contact`: links of this object are exclusive per contact.
    pub unique_by_contact: bool,
    pub data: Json<Value>,
    pub upsert_key: Option<String>,
    pub upsert_value: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const OBJECT_COLUMNS: &str =
    "o.id, o.team_id, o.object_type_id, t.type_name, t.unique_by_contact, o.data, o.upsert_key, \
     o.upsert_value, o.created_at, o.updated_at";

#[derive(Debug, Clone, FromRow)]
pub struct Link {
    pub object_id: Uuid,
    pub contact_id: Uuid,
    pub metadata: Json<Map<String, Value>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) const LINK_COLUMNS: &str = "object_id, contact_id, metadata, created_at, updated_at";

/// An upsert as the API asked for it, after validation.
pub struct Upsert<'a> {
    pub object_type: &'a ObjectType,
    /// (JSONPath, value) identifying the object, when the data has one.
    pub key: Option<(String, String)>,
    pub data: Value,
    pub contact_id: Option<Uuid>,
}

/// Why an upsert or a link could not be written.
#[derive(Debug, PartialEq)]
pub enum LinkRefusal {
    /// The type is `unique_by_contact` and the contact already has another object of it.
    ContactHasOther(Uuid),
}

/// Inside a transaction: creates or updates the object an [`Upsert`] identifies and links its
/// contact; evaluates to `Ok((object id, created, link))` or a refusal (having written nothing
/// itself; the caller rolls back whatever else it wrote).
macro_rules! upsert_object_in {
    ($tx:expr, $u:expr, $at:expr) => {{
        use $crate::store::objects::{Link, LinkRefusal, Upsert, LINK_COLUMNS};
        let u: Upsert<'_> = $u;
        let at: chrono::DateTime<chrono::Utc> = $at;
        let t = u.object_type;
        let exclusive = t.unique_by_contact;
        let by_key = "SELECT id FROM objects WHERE object_type_id = $1 AND upsert_key = $2 AND upsert_value = $3";
        let by_contact =
            "SELECT object_id FROM object_contacts WHERE contact_id = $1 AND object_type_id = $2 AND exclusive = $3";
        let update = "UPDATE objects SET data = $2, upsert_key = $3, upsert_value = $4, updated_at = $5 WHERE id = $1";
        let insert =
            "INSERT INTO objects (id, team_id, object_type_id, data, upsert_key, upsert_value, created_at, updated_at)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (object_type_id, upsert_key, upsert_value) WHERE upsert_value IS NOT NULL DO NOTHING";
        let (key_path, key_value) = u.key.clone().unzip();
        let data = sqlx::types::Json(u.data);
        'upsert: {
            let keyed: Option<uuid::Uuid> = match &u.key {
                Some((path, value)) => sqlx::query_scalar(by_key).bind(t.id).bind(path).bind(value).fetch_optional(&mut *$tx).await?,
                None => None,
            };
            let contact_own: Option<uuid::Uuid> = match (exclusive, u.contact_id) {
                (true, Some(c)) => sqlx::query_scalar(by_contact).bind(c).bind(t.id).bind(true).fetch_optional(&mut *$tx).await?,
                _ => None,
            };
            if let (Some(k), Some(own)) = (keyed, contact_own) {
                if k != own {
                    break 'upsert Err(LinkRefusal::ContactHasOther(own));
                }
            }
            let (id, created) = match keyed.or(contact_own) {
                Some(id) => {
                    sqlx::query(update).bind(id).bind(&data).bind(&key_path).bind(&key_value).bind(at)
                        .execute(&mut *$tx).await.map_err($crate::store::StoreError::from_write)?;
                    (id, false)
                }
                None => {
                    let id = $crate::domain::new_id();
                    let inserted = sqlx::query(insert).bind(id).bind(t.team_id).bind(t.id).bind(&data).bind(&key_path).bind(&key_value).bind(at)
                        .execute(&mut *$tx).await.map_err($crate::store::StoreError::from_write)?.rows_affected();
                    if inserted == 1 {
                        (id, true)
                    } else {
                        // Another writer created the object with this key meanwhile (PostgreSQL runs
                        // upserts side by side): update that one, as if it had been found.
                        let winner: uuid::Uuid = sqlx::query_scalar(by_key).bind(t.id).bind(&key_path).bind(&key_value)
                            .fetch_one(&mut *$tx).await?;
                        sqlx::query(update).bind(winner).bind(&data).bind(&key_path).bind(&key_value).bind(at)
                            .execute(&mut *$tx).await.map_err($crate::store::StoreError::from_write)?;
                        (winner, false)
                    }
                }
            };
            let link = match u.contact_id {
                Some(contact_id) => {
                    let insert_link = format!(
                        "INSERT INTO object_contacts (object_id, contact_id, object_type_id, exclusive, metadata, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $6)
                         ON CONFLICT (object_id, contact_id) DO NOTHING
                         RETURNING {LINK_COLUMNS}"
                    );
                    let inserted = sqlx::query_as::<_, Link>(&insert_link)
                        .bind(id).bind(contact_id).bind(t.id).bind(exclusive).bind(sqlx::types::Json(serde_json::Map::new())).bind(at)
                        .fetch_optional(&mut *$tx).await.map_err($crate::store::StoreError::from_write)?;
                    match inserted {
                        Some(l) => Some(l),
                        None => Some(sqlx::query_as::<_, Link>(&format!("SELECT {LINK_COLUMNS} FROM object_contacts WHERE object_id = $1 AND contact_id = $2"))
                            .bind(id).bind(contact_id).fetch_one(&mut *$tx).await?),
                    }
                }
                None => None,
            };
            Ok((id, created, link))
        }
    }};
}
pub(crate) use upsert_object_in;

impl Db {
    pub async fn create_object_type(&self, t: &ObjectType) -> Result<()> {
        let sql = format!(
            "INSERT INTO object_types ({TYPE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        write_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(t.id)
                .bind(t.team_id)
                .bind(&t.type_name)
                .bind(&t.display_name)
                .bind(&t.description)
                .bind(&t.schema)
                .bind(&t.schema_form)
                .bind(&t.json_schema)
                .bind(&t.validation_mode)
                .bind(t.unique_by_contact)
                .bind(t.created_at)
                .bind(t.updated_at)
                .execute(pool)
                .await
                .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn object_type_by_name(&self, team_id: Uuid, name: &str) -> Result<Option<ObjectType>> {
        let sql = format!("SELECT {TYPE_COLUMNS} FROM object_types WHERE team_id = $1 AND type_name = $2");
        Ok(
            read_pool!(self, p => sqlx::query_as::<_, ObjectType>(&sql).bind(team_id).bind(name).fetch_optional(p).await?),
        )
    }

    pub async fn object_type_by_id(&self, team_id: Uuid, id: Uuid) -> Result<Option<ObjectType>> {
        let sql = format!("SELECT {TYPE_COLUMNS} FROM object_types WHERE team_id = $1 AND id = $2");
        Ok(read_pool!(self, p => sqlx::query_as::<_, ObjectType>(&sql).bind(team_id).bind(id).fetch_optional(p).await?))
    }

    pub async fn get_object(&self, team_id: Uuid, id: Uuid) -> Result<Option<Object>> {
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM objects o JOIN object_types t ON t.id = o.object_type_id
             WHERE o.team_id = $1 AND o.id = $2"
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, Object>(&sql).bind(team_id).bind(id).fetch_optional(p).await?))
    }

    /// A page of objects, optionally of one type (the cursor is an object id).
    pub async fn list_objects(&self, team_id: Uuid, type_id: Option<Uuid>, page: Seek) -> Result<Vec<Object>> {
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM objects o JOIN object_types t ON t.id = o.object_type_id
             WHERE o.team_id = $1 AND ($2 IS NULL OR o.object_type_id = $2) AND {}
             {} LIMIT $4",
            page.beyond("o.id", 3),
            page.order_by("o.id")
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, Object>(&sql)
            .bind(team_id).bind(type_id).bind(page.after).bind(page.limit).fetch_all(p).await?))
    }

    pub async fn object_links(&self, object_id: Uuid) -> Result<Vec<Link>> {
        let sql =
            format!("SELECT {LINK_COLUMNS} FROM object_contacts WHERE object_id = $1 ORDER BY created_at, contact_id");
        Ok(read_pool!(self, p => sqlx::query_as::<_, Link>(&sql).bind(object_id).fetch_all(p).await?))
    }

    /// Creates or updates the object the key identifies (or, for a `unique_by_contact` type, the
    /// contact's object of that type) and links the contact. Returns the object id, whether it was
    /// created, and the link; or a refusal, having written nothing.
    pub async fn upsert_object(
        &self,
        u: Upsert<'_>,
        at: DateTime<Utc>,
    ) -> std::result::Result<(Uuid, bool, Option<Link>), WriteError<LinkRefusal>> {
        transaction!(self, tx => upsert_object_in!(tx, u, at).map_err(WriteError::Refused))
    }

    /// Links a contact to an object; linking again keeps one link and replaces its metadata when
    /// new metadata is given. Returns the link and whether it is new.
    pub async fn link_contact(
        &self,
        object: &Object,
        contact_id: Uuid,
        metadata: Option<Map<String, Value>>,
        at: DateTime<Utc>,
    ) -> std::result::Result<(Link, bool), WriteError<LinkRefusal>> {
        let on_conflict = if metadata.is_some() {
            "DO UPDATE SET metadata = excluded.metadata, updated_at = excluded.updated_at"
        } else {
            "DO NOTHING"
        };
        let insert = format!(
            "INSERT INTO object_contacts (object_id, contact_id, object_type_id, exclusive, metadata, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (object_id, contact_id) {on_conflict}"
        );
        let select = format!("SELECT {LINK_COLUMNS} FROM object_contacts WHERE object_id = $1 AND contact_id = $2");
        let other = "SELECT object_id FROM object_contacts WHERE contact_id = $1 AND object_type_id = $2 AND exclusive = $3 AND object_id <> $4";
        let exclusive = object.unique_by_contact;
        transaction!(self, tx => {
            if exclusive {
                let held: Option<Uuid> = sqlx::query_scalar(other).bind(contact_id).bind(object.object_type_id).bind(true).bind(object.id)
                    .fetch_optional(&mut *tx).await?;
                if let Some(o) = held {
                    return Err(WriteError::Refused(LinkRefusal::ContactHasOther(o)));
                }
            }
            let existed = sqlx::query_as::<_, Link>(&select).bind(object.id).bind(contact_id).fetch_optional(&mut *tx).await?.is_some();
            sqlx::query(&insert)
                .bind(object.id).bind(contact_id).bind(object.object_type_id).bind(exclusive)
                .bind(Json(metadata.unwrap_or_default())).bind(at)
                .execute(&mut *tx).await.map_err(StoreError::from_write)?;
            let link = sqlx::query_as::<_, Link>(&select).bind(object.id).bind(contact_id).fetch_one(&mut *tx).await?;
            Ok((link, !existed))
        })
    }
}
