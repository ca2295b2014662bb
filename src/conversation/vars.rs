//! `{{namespace.path}}` variables: found in text, and filled in from a JSON tree whose top keys are
//! the namespaces (`contact`, `call`, `custom`, tool outputs).

use serde_json::Value;

use crate::domain::template;

pub use crate::domain::template::{get_path as lookup, set_path as set};

/// The names referenced in `text`, in order (`contact.first_name`, …).
pub fn references(text: &str) -> Vec<String> {
    template::paths(text).into_iter().map(str::to_owned).collect()
}

/// `text` with each variable replaced by its value (strings as they are, other values as JSON);
/// a variable without a value becomes empty.
pub fn render(text: &str, vars: &Value) -> String {
    let out = template::render(text, vars);
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
