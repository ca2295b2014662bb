//! `{{namespace.path}}` variables: found in text, and filled in from a JSON tree whose top keys are
//! the namespaces (`contact`, `call`, `custom`, tool outputs).

use serde_json::Value;

/// The names referenced in `text`, in order (`contact.first_name`, …).
pub fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    out
}

/// The value at a dotted path, if any.
pub fn lookup<'a>(vars: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(vars, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Sets a dotted path, creating objects on the way.
pub fn set(vars: &mut Value, path: &str, value: Value) {
    let mut node = vars;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, key) in parts.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Default::default());
        }
        let map = node.as_object_mut().expect("made an object above");
        if i == parts.len() - 1 {
            map.insert((*key).to_owned(), value);
            return;
        }
        node = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

/// `text` with each variable replaced by its value (strings as they are, other values as JSON);
/// a variable without a value becomes empty.
pub fn render(text: &str, vars: &Value) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        match lookup(vars, after[..end].trim()) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Null) | None => {}
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    // A missing value must not leave "Hi , how are you" behind.
    out.replace(" ,", ",").replace("  ", " ").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_fills_and_sets() {
        let mut vars = json!({"contact": {"first_name": "John"}});
        assert_eq!(
            references("Hi {{contact.first_name}}, {{ custom.x }}"),
            ["contact.first_name", "custom.x"]
        );
        assert_eq!(render("Hi {{contact.first_name}}, welcome", &vars), "Hi John, welcome");
        assert_eq!(render("Hi {{contact.last_name}}, welcome", &vars), "Hi, welcome");
        set(&mut vars, "custom.booking.id", json!(7));
        assert_eq!(render("Booking {{custom.booking.id}}", &vars), "Booking 7");
        assert_eq!(lookup(&vars, "custom.booking.id"), Some(&json!(7)));
    }
}
