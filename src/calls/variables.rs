//! The variables a call's script sees and the context an automation gets are the same values:
//! `contact.*` (every field, `full_name`, `metadata`), `call.*`, `objects.<type>.*` (each with its
//! `id`) and `custom.*` (the call's variables). One place builds them.

use serde_json::{json, Map, Value};

use crate::{
    domain::contact::full_name,
    store::{calls::Call, contacts::Contact, Db},
};

pub fn contact(c: &Contact) -> Value {
    json!({
        "id": c.id,
        "phone_number": c.phone_number,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "full_name": full_name(c.first_name.as_deref(), c.last_name.as_deref()),
        "email": c.email,
        "title": c.title,
        "company": c.company,
        "address": c.address,
        "location": c.location,
        "timezone": c.timezone,
        "metadata": c.metadata.0,
    })
}

/// A call as automations and scripts see it; with its result flattened in once it has one
/// (`call_summary`, `structured_data`, `transcript`, …).
pub fn call(c: &Call) -> Value {
    let mut m = json!({
        "id": c.id,
        "type": c.call_type,
        "progress": c.progress,
        "status": c.status,
        "end_reason": c.end_reason,
        "script_id": c.script_id,
        "contact_id": c.contact_id,
        "from_number": c.from_number,
        "to_number": c.to_number,
        "scheduled_time": c.scheduled_time,
        "attempt": c.attempts,
        "attempts": c.attempts,
        "metadata": c.metadata.0,
        "variables": c.variables.0,
        "created_at": c.created_at,
        "started_at": c.started_at,
        "ended_at": c.ended_at,
    });
    if let (Some(result), Some(obj)) = (c.result.as_ref(), m.as_object_mut()) {
        let r = &result.0;
        let analysis = r.get("analysis").cloned().unwrap_or(Value::Null);
        obj.insert(
            "call_summary".into(),
            analysis.get("summary").cloned().unwrap_or(Value::Null),
        );
        for key in ["structured_data", "objectives", "rating", "success_evaluation"] {
            obj.insert(key.into(), analysis.get(key).cloned().unwrap_or(Value::Null));
        }
        for key in ["transcript", "duration_seconds", "recording_url", "simulated"] {
            if let Some(v) = r.get(key) {
                obj.insert(key.into(), v.clone());
            }
        }
    }
    m
}

/// An object's data with its `id`, as `objects.<type>` holds it.
pub fn object(id: uuid::Uuid, data: Value) -> Value {
    let mut v = data;
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(id));
    }
    v
}

/// `objects.<type>.*` for a contact: each linked object (the latest of a type wins when there are
/// several), then the call's own object on top.
pub async fn objects(db: &Db, contact_id: Option<uuid::Uuid>, call: Option<&Call>) -> crate::store::Result<Value> {
    let mut out = Map::new();
    if let Some(contact_id) = contact_id {
        for (type_name, id, data) in db.contact_objects(contact_id).await? {
            out.insert(type_name, object(id, data.0));
        }
    }
    if let Some(id) = call.and_then(|c| c.object_id.map(|o| (c.team_id, o))) {
        if let Some(o) = db.get_object(id.0, id.1).await? {
            out.insert(o.type_name, object(o.id, o.data.0));
        }
    }
    Ok(Value::Object(out))
}

/// Everything a call's script sees: `contact`, `call`, `objects`, `custom`.
pub async fn for_script(db: &Db, c: &Call, contact_row: Option<&Contact>) -> crate::store::Result<Value> {
    Ok(json!({
        "contact": contact_row.map_or(Value::Null, contact),
        "call": call(c),
        "objects": objects(db, contact_row.map(|c| c.id), Some(c)).await?,
        "custom": c.variables.0,
    }))
}
