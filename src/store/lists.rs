//! Contact lists and their members.

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use uuid::Uuid;

use super::contacts::{bind_contact, Contact, COLUMNS as CONTACT_COLUMNS, INSERT as INSERT_CONTACT};
use super::{read_pool, transaction, write_pool, Db, Result, Seek, StoreError};
use crate::domain::{contact::ValidContact, new_id, FieldError};

#[derive(Debug, Clone, FromRow)]
pub struct List {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub contact_count: i64,
}

/// What happened to one item of an add-contacts-to-list request.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOutcome {
    /// A new contact was created and added.
    Created(Uuid),
    /// An existing contact with that phone number was added (its fields are left as they were).
    Reused(Uuid),
    /// The contact was already a member; nothing changed.
    AlreadyInList(Uuid),
    /// The item failed validation and was skipped.
    Invalid(FieldError),
}

const LIST_COLUMNS: &str = "l.id, l.team_id, l.name, l.created_at, l.updated_at,
     (SELECT COUNT(*) FROM list_members m WHERE m.list_id = l.id) AS contact_count";

impl Db {
    pub async fn create_list(&self, team_id: Uuid, name: &str, at: DateTime<Utc>) -> Result<List> {
        let id = new_id();
        write_pool!(self, pool => {
            sqlx::query("INSERT INTO lists (id, team_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
                .bind(id)
                .bind(team_id)
                .bind(name)
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(List {
            id,
            team_id,
            name: name.to_owned(),
            created_at: at,
            updated_at: at,
            contact_count: 0,
        })
    }

    pub async fn get_list(&self, team_id: Uuid, id: Uuid) -> Result<Option<List>> {
        let sql = format!("SELECT {LIST_COLUMNS} FROM lists l WHERE l.team_id = $1 AND l.id = $2");
        Ok(read_pool!(self, p => sqlx::query_as::<_, List>(&sql).bind(team_id).bind(id).fetch_optional(p).await?))
    }

    /// A page of the team's lists.
    pub async fn list_lists(&self, team_id: Uuid, page: Seek) -> Result<Vec<List>> {
        let sql = format!(
            "SELECT {LIST_COLUMNS} FROM lists l WHERE l.team_id = $1 AND {} {} LIMIT $3",
            page.beyond("l.id", 2),
            page.order_by("l.id")
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, List>(&sql)
            .bind(team_id).bind(page.after).bind(page.limit).fetch_all(p).await?))
    }

    /// Renames a list; `None` when the team has no such list.
    pub async fn rename_list(&self, team_id: Uuid, id: Uuid, name: &str, at: DateTime<Utc>) -> Result<Option<List>> {
        let renamed = write_pool!(self, p => sqlx::query("UPDATE lists SET name = $3, updated_at = $4 WHERE team_id = $1 AND id = $2")
            .bind(team_id).bind(id).bind(name).bind(at).execute(p).await?.rows_affected());
        if renamed == 0 {
            return Ok(None);
        }
        self.get_list(team_id, id).await
    }

    /// Deletes a list and its memberships (the contacts stay); `false` when there is no such list.
    pub async fn delete_list(&self, team_id: Uuid, id: Uuid) -> Result<bool> {
        let gone = write_pool!(self, p => sqlx::query("DELETE FROM lists WHERE team_id = $1 AND id = $2")
            .bind(team_id).bind(id).execute(p).await?.rows_affected());
        Ok(gone == 1)
    }

    /// Takes a contact out of one of the team's lists; `false` when it was not a member.
    pub async fn remove_member(
        &self,
        team_id: Uuid,
        list_id: Uuid,
        contact_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        transaction!(self, tx => {
            let gone = sqlx::query(
                "DELETE FROM list_members WHERE list_id = $1 AND contact_id = $2
                   AND EXISTS (SELECT 1 FROM lists WHERE id = $1 AND team_id = $3)")
                .bind(list_id).bind(contact_id).bind(team_id).execute(&mut *tx).await?.rows_affected();
            if gone == 1 {
                sqlx::query("UPDATE lists SET updated_at = $2 WHERE id = $1").bind(list_id).bind(at).execute(&mut *tx).await?;
            }
            Ok::<_, StoreError>(gone == 1)
        })
    }

    /// A page of members, in the order the contacts were created (the cursor is a contact id).
    pub async fn list_members(&self, list_id: Uuid, page: Seek) -> Result<Vec<Contact>> {
        let columns = CONTACT_COLUMNS.replace(", ", ", c.");
        let sql = format!(
            "SELECT c.{columns} FROM list_members m JOIN contacts c ON c.id = m.contact_id
             WHERE m.list_id = $1 AND {} {} LIMIT $3",
            page.beyond("c.id", 2),
            page.order_by("c.id")
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, Contact>(&sql)
            .bind(list_id).bind(page.after).bind(page.limit).fetch_all(p).await?))
    }

    /// Adds each valid item to the list, creating contacts that do not exist yet. Invalid items are
    /// reported and skipped; everything else is written in one transaction, so an error part-way
    /// leaves the list as it was.
    pub async fn add_to_list(
        &self,
        team_id: Uuid,
        list_id: Uuid,
        items: Vec<Result<ValidContact, FieldError>>,
        at: DateTime<Utc>,
    ) -> Result<Vec<MemberOutcome>> {
        let find = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE team_id = $1 AND phone_number = $2");
        let insert_or_skip = format!("{INSERT_CONTACT} ON CONFLICT (team_id, phone_number) DO NOTHING");
        let add = "INSERT INTO list_members (list_id, contact_id, added_at) VALUES ($1, $2, $3)
                   ON CONFLICT (list_id, contact_id) DO NOTHING";
        let outcomes = transaction!(self, tx => {
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items {
                let valid = match item {
                    Ok(v) => v,
                    Err(e) => {
                        outcomes.push(MemberOutcome::Invalid(e));
                        continue;
                    }
                };
                let existing = sqlx::query_as::<_, Contact>(&find)
                    .bind(team_id)
                    .bind(&valid.phone_number)
                    .fetch_optional(&mut *tx)
                    .await?;
                let (contact_id, created) = match existing {
                    Some(c) => (c.id, false),
                    None => {
                        let c = Contact::new(team_id, valid, new_id(), at);
                        let inserted = bind_contact!(sqlx::query(&insert_or_skip), c)
                            .execute(&mut *tx)
                            .await
                            .map_err(StoreError::from_write)?
                            .rows_affected();
                        if inserted == 1 {
                            (c.id, true)
                        } else {
                            // Another writer created the contact meanwhile (PostgreSQL): use it.
                            let id: Uuid = sqlx::query_scalar("SELECT id FROM contacts WHERE team_id = $1 AND phone_number = $2")
                                .bind(team_id).bind(&c.phone_number).fetch_one(&mut *tx).await?;
                            (id, false)
                        }
                    }
                };
                let added = sqlx::query(add).bind(list_id).bind(contact_id).bind(at).execute(&mut *tx).await?;
                outcomes.push(match (created, added.rows_affected()) {
                    (true, _) => MemberOutcome::Created(contact_id),
                    (false, 1) => MemberOutcome::Reused(contact_id),
                    (false, _) => MemberOutcome::AlreadyInList(contact_id),
                });
            }
            sqlx::query("UPDATE lists SET updated_at = $2 WHERE id = $1").bind(list_id).bind(at).execute(&mut *tx).await?;
            Ok::<_, StoreError>(outcomes)
        })?;
        Ok(outcomes)
    }
}
