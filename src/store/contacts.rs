//! Contacts, unique per team by E.164 phone number.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{types::Json, FromRow};
use uuid::Uuid;

use super::{read_pool, transaction, write_pool, Db, Result, Seek, StoreError, WriteError};
use crate::domain::contact::ValidContact;

#[derive(Debug, Clone, FromRow)]
pub struct Contact {
    pub id: Uuid,
    pub team_id: Uuid,
    pub phone_number: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub title: Option<String>,
    pub company: Option<String>,
    pub address: Option<String>,
    pub location: Option<String>,
    pub timezone: Option<String>,
    pub metadata: Json<Map<String, Value>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) const COLUMNS: &str = "id, team_id, phone_number, first_name, last_name, email, title, company, \
     address, location, timezone, metadata, created_at, updated_at";

pub(crate) const INSERT: &str = "INSERT INTO contacts (id, team_id, phone_number, first_name, last_name, email, \
     title, company, address, location, timezone, metadata, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)";

impl Contact {
    pub fn new(team_id: Uuid, c: ValidContact, id: Uuid, at: DateTime<Utc>) -> Self {
        Contact {
            id,
            team_id,
            phone_number: c.phone_number,
            first_name: c.first_name,
            last_name: c.last_name,
            email: c.email,
            title: c.title,
            company: c.company,
            address: c.address,
            location: c.location,
            timezone: c.timezone,
            metadata: Json(c.metadata),
            created_at: at,
            updated_at: at,
        }
    }
}

/// Binds a contact's columns to [`INSERT`], in order.
macro_rules! bind_contact {
    ($query:expr, $c:expr) => {
        $query
            .bind($c.id)
            .bind($c.team_id)
            .bind(&$c.phone_number)
            .bind(&$c.first_name)
            .bind(&$c.last_name)
            .bind(&$c.email)
            .bind(&$c.title)
            .bind(&$c.company)
            .bind(&$c.address)
            .bind(&$c.location)
            .bind(&$c.timezone)
            .bind(&$c.metadata)
            .bind($c.created_at)
    };
}
pub(crate) use bind_contact;

/// Filters of the contact listing.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub phone_number: Option<String>,
    pub email: Option<String>,
    /// Words anywhere in the name, email or phone number (case-insensitive).
    pub search: Option<String>,
    pub page: Seek,
}

/// A LIKE pattern matching `text` anywhere, its own `%`, `_` and `\` taken literally.
fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl Db {
    /// Inserts a contact; `Conflict` when the team already has its phone number.
    pub async fn insert_contact(&self, contact: &Contact) -> Result<()> {
        write_pool!(self, pool => {
            bind_contact!(sqlx::query(INSERT), contact).execute(pool).await.map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn get_contact(&self, team_id: Uuid, id: Uuid) -> Result<Option<Contact>> {
        let sql = format!("SELECT {COLUMNS} FROM contacts WHERE team_id = $1 AND id = $2");
        Ok(read_pool!(self, p => sqlx::query_as::<_, Contact>(&sql).bind(team_id).bind(id).fetch_optional(p).await?))
    }

    pub async fn contact_by_phone(&self, team_id: Uuid, phone: &str) -> Result<Option<Contact>> {
        let sql = format!("SELECT {COLUMNS} FROM contacts WHERE team_id = $1 AND phone_number = $2");
        Ok(read_pool!(self, p => sqlx::query_as::<_, Contact>(&sql).bind(team_id).bind(phone).fetch_optional(p).await?))
    }

    /// A page of the team's contacts.
    pub async fn list_contacts(&self, team_id: Uuid, f: &ContactFilter) -> Result<Vec<Contact>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM contacts
             WHERE team_id = $1
               AND ($2 IS NULL OR phone_number = $2)
               AND ($3 IS NULL OR email = $3)
               AND ($6 IS NULL OR LOWER(COALESCE(first_name, '') || ' ' || COALESCE(last_name, '') || ' '
                    || COALESCE(email, '') || ' ' || phone_number) LIKE $6 ESCAPE '\\')
               AND {}
             {} LIMIT $5",
            f.page.beyond("id", 4),
            f.page.order_by("id")
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, Contact>(&sql)
            .bind(team_id)
            .bind(&f.phone_number)
            .bind(&f.email)
            .bind(f.page.after)
            .bind(f.page.limit)
            .bind(f.search.as_deref().map(contains_pattern))
            .fetch_all(p)
            .await?))
    }
}

/// A list or object a contact belongs to, by id and name (objects: their type's name).
#[derive(Debug, Clone, FromRow)]
pub struct Membership {
    pub id: Uuid,
    pub name: String,
}

impl Db {
    /// The team's lists that hold the contact, and the objects linked to it.
    pub async fn contact_memberships(
        &self,
        team_id: Uuid,
        contact_id: Uuid,
    ) -> Result<(Vec<Membership>, Vec<Membership>)> {
        let lists = "SELECT l.id, l.name FROM list_members m JOIN lists l ON l.id = m.list_id
                     WHERE m.contact_id = $1 AND l.team_id = $2 ORDER BY l.name LIMIT 200";
        let objects = "SELECT o.id, t.type_name AS name FROM object_contacts oc JOIN objects o ON o.id = oc.object_id
                       JOIN object_types t ON t.id = o.object_type_id
                       WHERE oc.contact_id = $1 AND o.team_id = $2 ORDER BY t.type_name, o.id LIMIT 200";
        Ok(read_pool!(self, p => (
            sqlx::query_as::<_, Membership>(lists).bind(contact_id).bind(team_id).fetch_all(p).await?,
            sqlx::query_as::<_, Membership>(objects).bind(contact_id).bind(team_id).fetch_all(p).await?,
        )))
    }
}

/// Why a contact was not deleted.
#[derive(Debug, PartialEq)]
pub enum ContactInUse {
    /// Calls to the contact are scheduled or under way.
    ActiveCalls(i64),
}

impl Db {
    /// Replaces every field of the team's contact with `c` (validated, phone in E.164); `None` when
    /// there is no such contact, `Conflict` when another contact has the phone number.
    pub async fn update_contact(
        &self,
        team_id: Uuid,
        id: Uuid,
        c: &ValidContact,
        at: DateTime<Utc>,
    ) -> Result<Option<Contact>> {
        let sql = format!(
            "UPDATE contacts SET phone_number = $3, first_name = $4, last_name = $5, email = $6, title = $7,
               company = $8, address = $9, location = $10, timezone = $11, metadata = $12, updated_at = $13
             WHERE team_id = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        Ok(write_pool!(self, p => sqlx::query_as::<_, Contact>(&sql)
            .bind(team_id).bind(id).bind(&c.phone_number).bind(&c.first_name).bind(&c.last_name).bind(&c.email)
            .bind(&c.title).bind(&c.company).bind(&c.address).bind(&c.location).bind(&c.timezone)
            .bind(Json(&c.metadata)).bind(at)
            .fetch_optional(p).await.map_err(StoreError::from_write)?))
    }

    /// Deletes a contact no scheduled or running call is for (checked in the same transaction).
    /// Its list memberships and object links go with it; its past calls stay, detached
    /// (`contact_id` null). `false` when the team has no such contact.
    pub async fn delete_contact(&self, team_id: Uuid, id: Uuid) -> std::result::Result<bool, WriteError<ContactInUse>> {
        transaction!(self, tx => {
            let active: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM calls WHERE team_id = $1 AND contact_id = $2 AND progress NOT IN ('ended', 'cancelled')")
                .bind(team_id).bind(id).fetch_one(&mut *tx).await?;
            if active > 0 {
                return Err(WriteError::Refused(ContactInUse::ActiveCalls(active)));
            }
            let gone = sqlx::query("DELETE FROM contacts WHERE team_id = $1 AND id = $2")
                .bind(team_id).bind(id).execute(&mut *tx).await?.rows_affected();
            Ok(gone == 1)
        })
    }
}

/// Inside a transaction: the team's contact with this phone number, updated with the fields given
/// (others kept, metadata merged), or a new contact; evaluates to `(Contact, created)`. (A macro so
/// that the same code serves both backends' transactions, and other writes can share the transaction.)
macro_rules! upsert_contact_in {
    ($tx:expr, $team_id:expr, $c:expr, $at:expr) => {{
        use $crate::store::contacts::{Contact, COLUMNS, INSERT};
        let team_id: uuid::Uuid = $team_id;
        let c: $crate::domain::contact::ValidContact = $c;
        let at: chrono::DateTime<chrono::Utc> = $at;
        let select = format!("SELECT {COLUMNS} FROM contacts WHERE team_id = $1 AND phone_number = $2");
        let update = format!(
            "UPDATE contacts SET first_name = COALESCE($2, first_name), last_name = COALESCE($3, last_name),
               email = COALESCE($4, email), title = COALESCE($5, title), company = COALESCE($6, company),
               address = COALESCE($7, address), location = COALESCE($8, location), timezone = COALESCE($9, timezone),
               metadata = $10, updated_at = $11
             WHERE id = $1 RETURNING {COLUMNS}"
        );
        let mut found = sqlx::query_as::<_, Contact>(&select)
            .bind(team_id)
            .bind(&c.phone_number)
            .fetch_optional(&mut *$tx)
            .await?;
        let mut created = None;
        if found.is_none() {
            // Two writers may both find no contact (PostgreSQL runs them side by side): the insert
            // that loses skips, and then updates the contact the other one made.
            let contact = Contact::new(team_id, c.clone(), $crate::domain::new_id(), at);
            let inserted = $crate::store::contacts::bind_contact!(
                sqlx::query(&format!("{INSERT} ON CONFLICT (team_id, phone_number) DO NOTHING")),
                contact
            )
            .execute(&mut *$tx)
            .await
            .map_err($crate::store::StoreError::from_write)?
            .rows_affected();
            if inserted == 1 {
                created = Some(contact);
            } else {
                found = Some(
                    sqlx::query_as::<_, Contact>(&select)
                        .bind(team_id)
                        .bind(&c.phone_number)
                        .fetch_one(&mut *$tx)
                        .await?,
                );
            }
        }
        match (created, found) {
            (Some(contact), _) => (contact, true),
            (None, existing) => {
                let existing = existing.expect("found above or after the skipped insert");
                let mut metadata = existing.metadata.0.clone();
                metadata.extend(c.metadata.clone());
                let updated = sqlx::query_as::<_, Contact>(&update)
                    .bind(existing.id)
                    .bind(&c.first_name)
                    .bind(&c.last_name)
                    .bind(&c.email)
                    .bind(&c.title)
                    .bind(&c.company)
                    .bind(&c.address)
                    .bind(&c.location)
                    .bind(&c.timezone)
                    .bind(sqlx::types::Json(metadata))
                    .bind(at)
                    .fetch_one(&mut *$tx)
                    .await?;
                (updated, false)
            }
        }
    }};
}
pub(crate) use upsert_contact_in;

impl Db {
    /// The team's contact with this phone number, updated with the fields given (others kept,
    /// metadata merged), or a new contact. Returns it and whether it was created.
    pub async fn upsert_contact_by_phone(
        &self,
        team_id: Uuid,
        c: ValidContact,
        at: DateTime<Utc>,
    ) -> Result<(Contact, bool)> {
        transaction!(self, tx => Ok(upsert_contact_in!(tx, team_id, c, at)))
    }
}
