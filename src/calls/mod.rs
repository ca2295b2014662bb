//! The one calls service: every rule of creating a call, whoever asks (create-phone-call,
//! create-web-call, an automation's create-call step, `voxd simulate inbound`). It checks the
//! request against the team's data (script, caller id, object type and schema, sizes, policy, the
//! do-not-call list), then
//! writes the contact, the object and its link, and the call in one transaction, so a refusal
//! leaves nothing behind.

pub mod variables;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{
    conversation::script::ScriptType,
    do_not_call,
    domain::{
        call::{CallingWindow, Progress, RetryPolicy},
        contact::ContactInput,
        object_schema::Violation,
        phone, timezone, FieldError,
    },
    objects::{self, ObjectError, TypeRef},
    store::{
        calls::{Call, CallContact},
        contacts::Contact,
        objects::{LinkRefusal, Upsert},
        teams::Team,
        Db, StoreError,
    },
};

/// The team a call is created for: what its rules read.
#[derive(Debug, Clone)]
pub struct TeamScope {
    pub id: Uuid,
    /// Numbers without a country code are read in it.
    pub region: phonenumber::country::Id,
    /// The team's zone, the callee's when nothing better is known.
    pub timezone: String,
}

impl From<&Team> for TeamScope {
    fn from(t: &Team) -> Self {
        TeamScope {
            id: t.id,
            region: phone::parse_region(&t.region).unwrap_or(phonenumber::country::Id::AU),
            timezone: t.timezone.clone(),
        }
    }
}

/// Variables, metadata: at most this much JSON each.
const MAP_MAX_BYTES: usize = 16 * 1024;

/// How the call comes to be.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Placed by the dispatcher from one of the team's numbers.
    Outbound { from_number: String },
    /// A browser joins it; it waits `ringing` until then.
    Web,
    /// Answered already, by the worker named in the lease (`voxd simulate inbound`).
    Inbound {
        to_number: String,
        lease_owner: String,
        lease_until_ms: i64,
    },
}

impl Kind {
    fn call_type(&self) -> &'static str {
        match self {
            Kind::Outbound { .. } => "outbound",
            Kind::Web => "web",
            Kind::Inbound { .. } => "inbound",
        }
    }
}

/// Who is called: a contact upserted by phone number, or one the team has.
#[derive(Debug, Clone)]
pub enum Callee {
    Upsert(Box<ContactInput>),
    Existing(Uuid),
}

/// The object a call carries.
#[derive(Debug, Clone)]
pub enum CallObject {
    /// Data upserted as an object of the type (checked by its schema), linked to the contact.
    Upsert {
        type_name: Option<String>,
        object_type_id: Option<String>,
        data: Map<String, Value>,
        upsert_key: Option<String>,
    },
    /// An object the team has.
    Existing(Uuid),
}

/// A call to create. Field names in errors are the API's (`contact.phone_number`, `object.data`).
#[derive(Debug, Clone)]
pub struct NewCall {
    /// A chosen id (an automation commits it before creating, to create at most once).
    pub id: Option<Uuid>,
    pub kind: Kind,
    pub script_id: Uuid,
    pub callee: Callee,
    pub object: Option<CallObject>,
    /// Absent or past: now.
    pub scheduled_time: Option<DateTime<Utc>>,
    pub latest_time: Option<DateTime<Utc>>,
    pub calling_window: Option<CallingWindow>,
    pub retry_policy: Option<RetryPolicy>,
    pub metadata: Map<String, Value>,
    pub variables: Map<String, Value>,
}

impl NewCall {
    pub fn new(kind: Kind, script_id: Uuid, callee: Callee) -> Self {
        NewCall {
            id: None,
            kind,
            script_id,
            callee,
            object: None,
            scheduled_time: None,
            latest_time: None,
            calling_window: None,
            retry_policy: None,
            metadata: Map::new(),
            variables: Map::new(),
        }
    }
}

/// What was created.
#[derive(Debug)]
pub struct Created {
    pub call: Call,
    pub contact: Contact,
    /// The object's schema violations when its type is in `warn` mode.
    pub violations: Option<Vec<Violation>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateCallError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The script, contact, object or object type named is not the team's (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A `strict` object type refused the data.
    #[error("{message}")]
    Violations { message: String, errors: Vec<Violation> },
    /// The object's type is unique by contact, and the contact has another one.
    #[error(
        "object type `{type_name}` is unique by contact and the contact is already linked to another object of it"
    )]
    ContactHasOther { type_name: String, object_id: Uuid },
    /// An outbound call to a number on the team's do-not-call list.
    #[error("{0} is on your team's do-not-call list")]
    DoNotCall(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CreateCallError {
    /// Whether trying again later may succeed (the database was away).
    pub fn is_transient(&self) -> bool {
        matches!(self, CreateCallError::Store(_))
    }
}

impl From<ObjectError> for CreateCallError {
    fn from(e: ObjectError) -> Self {
        match e {
            ObjectError::Invalid(f) => CreateCallError::Invalid(f),
            ObjectError::UnknownType => CreateCallError::NotFound("object type"),
            ObjectError::Violations { message, errors } => CreateCallError::Violations { message, errors },
            ObjectError::Store(s) => CreateCallError::Store(s),
        }
    }
}

fn bounded(field: &str, value: &Map<String, Value>) -> Result<(), FieldError> {
    if serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX) > MAP_MAX_BYTES {
        return Err(FieldError::new(field, "must be at most 16 KiB of JSON"));
    }
    Ok(())
}

/// A call checked and ready to write.
pub struct Prepared {
    call: Call,
    contact: CallContact,
    object: Option<objects::CheckedObject>,
}

impl Prepared {
    pub fn id(&self) -> Uuid {
        self.call.id
    }
}

/// Checks a call for `team` at `at`; reads only.
pub async fn prepare(db: &Db, team: &TeamScope, new: NewCall, at: DateTime<Utc>) -> Result<Prepared, CreateCallError> {
    let region = team.region;
    let retry_policy = new.retry_policy.unwrap_or_default();
    retry_policy.check().map_err(|e| FieldError::new("retry_policy", e))?;
    if let Some(w) = &new.calling_window {
        w.check().map_err(|e| FieldError::new("calling_window", e))?;
    }
    bounded("metadata", &new.metadata)?;
    bounded("variables", &new.variables)?;
    let scheduled = new.scheduled_time.filter(|t| *t > at).unwrap_or(at);
    if new.latest_time.is_some_and(|latest| latest <= scheduled) {
        return Err(FieldError::new("latest_time", "must be after scheduled_time (or now)").into());
    }
    let from = match &new.kind {
        Kind::Outbound { from_number } => Some(phone::normalize("from_number", from_number, region)?),
        _ => None,
    };
    let contact = match new.callee {
        Callee::Upsert(input) => CallContact::Upsert((*input).validate(region, "contact.")?),
        Callee::Existing(id) => CallContact::Existing(
            db.get_contact(team.id, id)
                .await?
                .ok_or(CreateCallError::NotFound("Contact"))?,
        ),
    };
    if let Kind::Outbound { .. } = &new.kind {
        let to = match &contact {
            CallContact::Upsert(c) => &c.phone_number,
            CallContact::Existing(c) => &c.phone_number,
        };
        if do_not_call::is_listed(db, team.id, to).await? {
            return Err(CreateCallError::DoNotCall(to.clone()));
        }
    }
    let script = db
        .get_script(team.id, new.script_id)
        .await?
        .ok_or(CreateCallError::NotFound("Script"))?;
    let script_type = script.definition.0.script_type;
    match (&new.kind, script_type) {
        (Kind::Outbound { .. }, ScriptType::Inbound) => {
            return Err(FieldError::new("script_id", "is an inbound script; phone calls need an outbound one").into())
        }
        (Kind::Inbound { .. }, ScriptType::Outbound) => {
            return Err(FieldError::new("script_id", "is an outbound script; inbound calls need an inbound one").into())
        }
        _ => {}
    }
    if let Some(from) = &from {
        if db.team_number(team.id, from).await?.is_none() {
            return Err(FieldError::new(
                "from_number",
                format!("{from} is not one of your team's numbers (add it with `voxd number add`)"),
            )
            .into());
        }
    }
    let (object, object_id) = match new.object {
        None => (None, None),
        Some(CallObject::Upsert {
            type_name,
            object_type_id,
            data,
            upsert_key,
        }) => {
            let type_ref = TypeRef {
                name: type_name.as_deref(),
                id: object_type_id.as_deref(),
            };
            let checked = objects::check(db, team.id, "object.", type_ref, data, upsert_key.as_deref()).await?;
            (Some(checked), None)
        }
        Some(CallObject::Existing(id)) => match db.get_object(team.id, id).await? {
            Some(o) => (None, Some(o.id)),
            None => return Err(CreateCallError::NotFound("Object")),
        },
    };
    let (progress, attempts, lease_owner, lease_until_ms, to_number) = match &new.kind {
        Kind::Outbound { .. } => (Progress::Scheduled, 0, None, None, None),
        Kind::Web => (Progress::Ringing, 1, None, None, None),
        Kind::Inbound {
            to_number,
            lease_owner,
            lease_until_ms,
        } => (
            Progress::Dialing,
            1,
            Some(lease_owner.clone()),
            Some(*lease_until_ms),
            Some(to_number.clone()),
        ),
    };
    let call = Call {
        id: new.id.unwrap_or_else(crate::domain::new_id),
        progress,
        attempts,
        lease_owner,
        lease_until_ms,
        from_number: from,
        to_number,
        scheduled_time: scheduled,
        latest_time: new.latest_time,
        due_ms: scheduled.timestamp_millis(),
        latest_ms: new.latest_time.map(|t| t.timestamp_millis()),
        calling_window: new.calling_window.map(Json),
        retry_policy: Json(retry_policy),
        metadata: Json(new.metadata),
        variables: Json(new.variables),
        object_id,
        script_version: script.version,
        ..Call::new(team.id, new.kind.call_type(), script.id, team.timezone.clone(), at)
    };
    Ok(Prepared { call, contact, object })
}

/// Writes a prepared call: the contact, the object and its link, and the call, in one
/// transaction. The callee's zone is chosen from the contact as stored (its own, else its number's
/// country's, else the team's). An inbound call is from its contact's number.
pub async fn insert(db: &Db, team: &TeamScope, p: Prepared) -> Result<Created, CreateCallError> {
    let Prepared { call, contact, object } = p;
    let upsert = object.as_ref().map(|o| Upsert {
        object_type: &o.object_type,
        key: o.key.clone(),
        data: o.data.clone(),
        contact_id: None,
    });
    let inbound = call.call_type == "inbound";
    let team_zone = team.timezone.clone();
    let written = db
        .create_call(contact, upsert, call, move |c, call| {
            call.timezone = timezone::callee_zone(c.timezone.as_deref(), &c.phone_number, &team_zone).0;
            if inbound {
                call.from_number = Some(c.phone_number.clone());
            } else {
                call.to_number = Some(c.phone_number.clone());
            }
        })
        .await;
    let (call, contact) = written.map_err(|e| {
        e.refused_as(
            |LinkRefusal::ContactHasOther(object_id)| CreateCallError::ContactHasOther {
                type_name: object
                    .as_ref()
                    .map(|o| o.object_type.type_name.clone())
                    .unwrap_or_default(),
                object_id,
            },
        )
    })?;
    tracing::info!(call_id = %call.id, call_type = %call.call_type, scheduled = %call.scheduled_time, "call created");
    Ok(Created {
        call,
        contact,
        violations: object.and_then(|o| o.violations),
    })
}

/// Checks and writes a call: [`prepare`], then [`insert`].
pub async fn create(db: &Db, team: &TeamScope, new: NewCall, at: DateTime<Utc>) -> Result<Created, CreateCallError> {
    let prepared = prepare(db, team, new, at).await?;
    insert(db, team, prepared).await
}
