//! Property tests over what teams hand the server to run: object-type schemas (with their data),
//! automation transforms and templates. Whatever the input, these return an answer, a refusal or
//! a bounded error; they never panic and never run away. Cases: `PROPTEST_CASES` (256 by default;
//! `.ci/run` runs more).

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use voxd::domain::{
    automation::Transform,
    object_schema::{self, bounds},
    template,
};

/// Small JSON values: scalars, strings that look like dates and numbers, nested maps and lists.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        "[a-z0-9 :.%{}\\-+TZ]{0,24}".prop_map(Value::from),
        prop_oneof![
            Just("2026-03-04"),
            Just("2026-03-04T10:05:00+11:00"),
            Just("1700000000"),
            Just("not a date"),
            Just("{{a.b}}"),
            Just("\u{0}"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// JSON Schema-shaped values: keywords that apply in place, step into data, and refer (to places
/// that exist and places that do not), so cycles, chains and fan-outs all come up.
fn schema() -> impl Strategy<Value = Value> {
    let pointer = prop_oneof![
        Just("#".to_owned()),
        "[a-c]".prop_map(|d| format!("#/$defs/{d}")),
        "[a-c]".prop_map(|d| format!("#/properties/{d}")),
        Just("#/$defs/a/allOf/0".to_owned()),
        Just("https://example.com/x".to_owned()),
        Just("#anchor".to_owned()),
    ];
    let leaf = prop_oneof![
        Just(json!({})),
        Just(json!(true)),
        Just(json!(false)),
        Just(json!({"type": "string"})),
        Just(json!({"type": "integer", "minimum": 3})),
        Just(json!({"type": "string", "pattern": "^(a+)+$"})),
        Just(json!({"type": "string", "format": "date"})),
        pointer.prop_map(|p| json!({"$ref": p})),
    ];
    let sub = leaf.prop_recursive(5, 64, 4, |inner| {
        let list = prop::collection::vec(inner.clone(), 1..4);
        let map = prop::collection::btree_map("[a-c]", inner.clone(), 1..3)
            .prop_map(|m| Value::Object(m.into_iter().collect()));
        prop_oneof![
            list.clone().prop_map(|l| json!({"allOf": l})),
            list.clone().prop_map(|l| json!({"anyOf": l})),
            list.prop_map(|l| json!({"oneOf": l})),
            inner.clone().prop_map(|s| json!({"not": s})),
            (inner.clone(), inner.clone()).prop_map(|(i, t)| json!({"if": i, "then": t})),
            map.clone().prop_map(|m| json!({"type": "object", "properties": m})),
            (inner.clone(), inner.clone())
                .prop_map(|(p, a)| json!({"patternProperties": {"^[ab]": p}, "additionalProperties": a})),
            map.prop_map(|m| json!({"dependentSchemas": m})),
            inner.prop_map(|s| json!({"type": "array", "items": s})),
        ]
    });
    (sub.clone(), prop::collection::btree_map("[a-c]", sub, 0..3)).prop_map(|(root, defs)| {
        let mut root = match root {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("allOf".into(), json!([other]));
                m
            }
        };
        root.insert("$defs".into(), Value::Object(defs.into_iter().collect()));
        Value::Object(root)
    })
}

proptest! {
    /// A schema is accepted or refused; an accepted one validates any data within its budget.
    #[test]
    fn schemas_compile_or_refuse_and_validation_is_bounded(s in schema(), data in json_value()) {
        match object_schema::compile(&s) {
            Err(reason) => prop_assert!(!reason.is_empty()),
            Ok((_, compiled)) => {
                let started = Instant::now();
                let result = object_schema::violations(&compiled, &data);
                prop_assert!(started.elapsed() < Duration::from_secs(5), "validation took {:?}", started.elapsed());
                if let Ok(v) = result {
                    prop_assert!(v.len() <= 100);
                }
            }
        }
        // The budget walk ends on anything, accepted or not (a stored schema may predate the checks).
        prop_assert!(bounds::evaluations(&s, &data, 10_000).map_or(true, |n| n <= 10_000));
    }

    /// A transform parses or is refused with a reason; a parsed one applies to any value with a
    /// result or an error.
    #[test]
    fn transforms_never_panic(spec in "(uppercase|lowercase|to_string|to_number|truncate:[0-9]{0,3}|date:[%a-zA-Z: /\\-]{0,12}|[a-z]{0,8})", v in json_value()) {
        if let Ok(t) = Transform::parse(&spec) {
            let _ = t.apply(&v);
        }
    }

    /// Any chrono format the parser accepts can be applied to every kind of date without panicking.
    #[test]
    fn accepted_date_formats_apply(format in "[%YmdHMSaAbBeIpjUZz:/ .\\-]{1,10}") {
        if let Ok(t) = Transform::parse(&format!("date:{format}")) {
            for v in [json!("2026-03-04"), json!("2026-03-04T10:05:00Z"), json!(1_700_000_000), json!("x")] {
                let _ = t.apply(&v);
            }
        }
    }

    /// Templates render any text against any context; every path they name resolves or is empty.
    #[test]
    fn templates_render_anything(text in "[a-z{} .0-9]{0,40}", ctx in json_value()) {
        let out = template::render(&text, &ctx);
        if !text.contains("{{") {
            prop_assert_eq!(out, text.clone());
        }
        for p in template::paths(&text) {
            let _ = template::get_path(&ctx, p);
        }
    }

    /// What `set_path` writes, `get_path` reads back.
    #[test]
    fn set_then_get(path in "[a-c]{1,2}(\\.[a-c0-9]{1,2}){0,3}", ctx in json_value(), v in json_value()) {
        let mut ctx = ctx;
        template::set_path(&mut ctx, &path, v.clone());
        prop_assert_eq!(template::get_path(&ctx, &path), Some(&v));
    }
}
