//! Dot paths into a JSON context (`contact.first_name`, `trigger.items.0.sku`) and `{{path}}`
//! templates over it. Shared by scripts' variables and automations' context.

use serde_json::{Map, Value};

/// The paths named by `{{…}}` in a text.
pub fn paths(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    out
}

/// The value at a dot path (`contact.first_name`, `trigger.items.0.sku`).
pub fn get_path<'a>(ctx: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(ctx, |v, part| match v {
        Value::Object(m) => m.get(part),
        Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Sets a value at a dot path, making objects on the way (replacing non-objects).
pub fn set_path(ctx: &mut Value, path: &str, value: Value) {
    let mut cur = ctx;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let map = cur.as_object_mut().expect("made an object above");
        if i == parts.len() - 1 {
            map.insert((*part).to_owned(), value);
            return;
        }
        cur = map
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// A value as text in a template: strings bare, null and missing empty, the rest as JSON.
pub fn as_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Replaces each `{{path}}` with the context value as text.
pub fn render(text: &str, ctx: &Value) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        out.push_str(&as_text(get_path(ctx, after[..end].trim())));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Renders a JSON template: a string that is exactly one `{{path}}` becomes the value itself (a
/// number stays a number), other strings are rendered as text.
pub fn render_value(v: &Value, ctx: &Value) -> Value {
    match v {
        Value::String(s) => {
            let t = s.trim();
            let paths = paths(t);
            if paths.len() == 1 && t.starts_with("{{") && t.ends_with("}}") && t[2..t.len() - 2].find("}}").is_none() {
                return get_path(ctx, paths[0]).cloned().unwrap_or(Value::Null);
            }
            Value::String(render(s, ctx))
        }
        Value::Array(items) => Value::Array(items.iter().map(|x| render_value(x, ctx)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), render_value(x, ctx))).collect()),
        other => other.clone(),
    }
}
