//! Limits that keep validation of object data bounded in time and memory, whatever schema a team
//! stores. A JSON Schema validator follows `$ref`s and applicators (`allOf`, `anyOf`, …) on the same
//! value; a reference cycle among those never reaches the data and never ends, and a chain of
//! doubling applicators costs 2^n. So a schema is refused when it is created if it is too large or
//! deep, refers outside itself, loops without stepping into the data, or expands into too many
//! subschemas for one value. At validation time a cheap walk counts, with a budget, how many
//! (subschema, value) pairs the validator could visit; data that would take more is refused
//! before the validator runs.
//!
//! Written here because no crate offers a cost bound for JSON Schema: the validators on crates.io
//! (jsonschema included) run to completion once started.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// Largest schema document accepted, as compact JSON.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Deepest nesting of the schema document.
pub const MAX_SCHEMA_DEPTH: usize = 32;
/// Most subschemas a schema may hold.
const MAX_NODES: usize = 5_000;
/// Most subschemas applied to one value without stepping into it (applicators and references).
const MAX_EXPANSION: u64 = 1_000;
/// Longest chain of applicators and references on one value (the validator recurses along it).
const MAX_CHAIN: u64 = 64;
/// Most (subschema, value) pairs one validation may visit.
pub const VALIDATION_BUDGET: u64 = 200_000;

/// Applicators whose subschemas apply to the same value.
const IN_PLACE_LISTS: [&str; 3] = ["allOf", "anyOf", "oneOf"];
const IN_PLACE_ONE: [&str; 4] = ["not", "if", "then", "else"];
/// Keywords whose subschemas apply to parts of the value (a property, an item, a key).
const DATA_ONE: [&str; 7] = [
    "additionalProperties",
    "propertyNames",
    "contains",
    "unevaluatedProperties",
    "unevaluatedItems",
    "additionalItems",
    "contentSchema",
];
const DATA_MAPS: [&str; 2] = ["properties", "patternProperties"];
/// Subschemas that only apply when referenced.
const DEFINITIONS: [&str; 2] = ["$defs", "definitions"];

/// Where a subschema's own subschemas go: applied to the same value, or to parts of it.
#[derive(Default)]
struct Children {
    in_place: Vec<String>,
    data: Vec<String>,
    defs: Vec<String>,
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Decodes `%xx` escapes of a URI fragment.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("a bad %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "a bad %-escape")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a %-escape that is not UTF-8".into())
}

/// The JSON Pointer a `$ref` names inside this document, or why it cannot be followed.
fn ref_target(root: &Value, reference: &str) -> Result<String, String> {
    let Some(fragment) = reference.strip_prefix('#') else {
        return Err(format!(
            "`$ref: {reference}` refers outside the schema; only local references (`#/...`) are supported"
        ));
    };
    let pointer = percent_decode(fragment).map_err(|e| format!("`$ref: {reference}` has {e}"))?;
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(format!(
            "`$ref: {reference}` names an anchor; only JSON Pointer references (`#/...`) are supported"
        ));
    }
    match root.pointer(&pointer) {
        Some(Value::Object(_) | Value::Bool(_)) => Ok(pointer),
        Some(_) => Err(format!("`$ref: {reference}` does not point at a schema")),
        None => Err(format!("`$ref: {reference}` points at nothing in the schema")),
    }
}

fn children(root: &Value, at: &str, schema: &Value) -> Result<Children, String> {
    let mut c = Children::default();
    let Value::Object(map) = schema else {
        return Ok(c);
    };
    for key in ["$dynamicRef", "$recursiveRef"] {
        if map.contains_key(key) {
            return Err(format!("`{key}` (at `{}`) is not supported", show(at)));
        }
    }
    if !at.is_empty() && map.contains_key("$id") {
        return Err(format!("`$id` is only supported at the root (found at `{}`)", show(at)));
    }
    let sub = |key: &str| format!("{at}/{}", escape(key));
    let schema_like = |v: &Value| v.is_object() || v.is_boolean();
    if let Some(r) = map.get("$ref") {
        let r = r
            .as_str()
            .ok_or_else(|| format!("`$ref` at `{}` must be a string", show(at)))?;
        c.in_place.push(ref_target(root, r)?);
    }
    for key in IN_PLACE_LISTS {
        if let Some(Value::Array(items)) = map.get(key) {
            c.in_place.extend((0..items.len()).map(|i| format!("{}/{i}", sub(key))));
        }
    }
    for key in IN_PLACE_ONE {
        if map.get(key).is_some_and(schema_like) {
            c.in_place.push(sub(key));
        }
    }
    for key in ["dependentSchemas", "dependencies"] {
        if let Some(Value::Object(m)) = map.get(key) {
            let here = sub(key);
            c.in_place.extend(
                m.iter()
                    .filter(|(_, v)| schema_like(v))
                    .map(|(k, _)| format!("{here}/{}", escape(k))),
            );
        }
    }
    for key in DATA_ONE {
        if map.get(key).is_some_and(schema_like) {
            c.data.push(sub(key));
        }
    }
    match map.get("items") {
        Some(Value::Array(items)) => c.data.extend((0..items.len()).map(|i| format!("{}/{i}", sub("items")))),
        Some(v) if schema_like(v) => c.data.push(sub("items")),
        _ => {}
    }
    if let Some(Value::Array(items)) = map.get("prefixItems") {
        c.data
            .extend((0..items.len()).map(|i| format!("{}/{i}", sub("prefixItems"))));
    }
    for key in DATA_MAPS {
        if let Some(Value::Object(m)) = map.get(key) {
            let here = sub(key);
            c.data.extend(m.keys().map(|k| format!("{here}/{}", escape(k))));
        }
    }
    for key in DEFINITIONS {
        if let Some(Value::Object(m)) = map.get(key) {
            let here = sub(key);
            c.defs.extend(m.keys().map(|k| format!("{here}/{}", escape(k))));
        }
    }
    Ok(c)
}

fn show(pointer: &str) -> String {
    format!("#{pointer}")
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Refuses a schema that could not be validated in bounded time and memory (see the module).
pub fn check_schema(root: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(root).map(|v| v.len()).unwrap_or(usize::MAX);
    if bytes > MAX_SCHEMA_BYTES {
        return Err(format!(
            "is {bytes} bytes of JSON; at most {MAX_SCHEMA_BYTES} are accepted"
        ));
    }
    if depth(root) > MAX_SCHEMA_DEPTH {
        return Err(format!("nests deeper than {MAX_SCHEMA_DEPTH} levels"));
    }
    // Every subschema reachable from the root, with the ones applied to the same value.
    let mut in_place: HashMap<String, Vec<String>> = HashMap::new();
    let mut todo = vec![String::new()];
    while let Some(at) = todo.pop() {
        if in_place.contains_key(&at) {
            continue;
        }
        if in_place.len() >= MAX_NODES {
            return Err(format!("has more than {MAX_NODES} subschemas"));
        }
        let schema = root.pointer(&at).expect("pointers are built from the document");
        let c = children(root, &at, schema)?;
        todo.extend(c.in_place.iter().chain(&c.data).chain(&c.defs).cloned());
        in_place.insert(at, c.in_place);
    }
    // Depth-first over the applied-in-place edges: a back edge is a cycle that never reaches the
    // data. On the way back up, how many subschemas each one expands to, and how long a chain.
    let mut done: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut on_path: HashSet<&str> = HashSet::new();
    let mut starts: Vec<&str> = in_place.keys().map(String::as_str).collect();
    starts.sort_unstable();
    for start in starts {
        if done.contains_key(start) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        on_path.insert(start);
        while let Some((node, next)) = stack.last_mut() {
            let edges = &in_place[*node];
            if let Some(child) = edges.get(*next) {
                *next += 1;
                let child = child.as_str();
                if on_path.contains(child) {
                    let mut cycle: Vec<String> = stack
                        .iter()
                        .map(|(n, _)| *n)
                        .skip_while(|n| *n != child)
                        .map(show)
                        .collect();
                    cycle.push(show(child));
                    return Err(format!(
                        "has a reference cycle that never steps into the data: {}",
                        cycle.join(" → ")
                    ));
                }
                if !done.contains_key(child) {
                    on_path.insert(child);
                    stack.push((child, 0));
                }
                continue;
            }
            let (expansion, chain) = edges.iter().fold((1u64, 1u64), |(e, l), c| {
                let (ce, cl) = done[c.as_str()];
                (e.saturating_add(ce), l.max(cl + 1))
            });
            if expansion > MAX_EXPANSION {
                return Err(format!(
                    "applies more than {MAX_EXPANSION} subschemas to one value (from `{}`)",
                    show(node)
                ));
            }
            if chain > MAX_CHAIN {
                return Err(format!(
                    "chains more than {MAX_CHAIN} references and applicators on one value (from `{}`)",
                    show(node)
                ));
            }
            let node = *node;
            done.insert(node, (expansion, chain));
            on_path.remove(node);
            stack.pop();
        }
    }
    Ok(())
}

/// Validating would visit more (subschema, value) pairs than the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget;

/// Counts the (subschema, value) pairs validating `data` could visit, stopping past `budget`
/// (`Err` then). An over-estimate: every pattern and additional-properties schema is counted for
/// every key. A work list, not recursion, so a stored schema that loops only exhausts the budget;
/// pairs are counted as they are queued, so the list never outgrows the budget either.
pub fn evaluations(root: &Value, data: &Value, budget: u64) -> Result<u64, OverBudget> {
    struct Work<'a> {
        todo: Vec<(&'a Value, &'a Value)>,
        count: u64,
        budget: u64,
    }
    impl<'a> Work<'a> {
        fn add(&mut self, pairs: impl IntoIterator<Item = (&'a Value, &'a Value)>) -> Result<(), OverBudget> {
            for pair in pairs {
                self.count += 1;
                if self.count > self.budget {
                    return Err(OverBudget);
                }
                self.todo.push(pair);
            }
            Ok(())
        }
    }
    let mut w = Work {
        todo: Vec::new(),
        count: 0,
        budget,
    };
    w.add([(root, data)])?;
    while let Some((schema, value)) = w.todo.pop() {
        let Value::Object(map) = schema else { continue };
        let get = |k: &str| map.get(k).filter(|v| v.is_object() || v.is_boolean());
        if let Some(target) = map
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|f| percent_decode(f).ok())
            .and_then(|p| root.pointer(&p))
        {
            w.add([(target, value)])?;
        }
        for key in IN_PLACE_LISTS {
            if let Some(Value::Array(items)) = map.get(key) {
                w.add(items.iter().map(|s| (s, value)))?;
            }
        }
        w.add(IN_PLACE_ONE.iter().filter_map(|k| get(k)).map(|s| (s, value)))?;
        for key in ["dependentSchemas", "dependencies"] {
            if let Some(Value::Object(m)) = map.get(key) {
                w.add(m.values().filter(|v| v.is_object()).map(|s| (s, value)))?;
            }
        }
        match value {
            Value::Object(fields) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    w.add(props.iter().filter_map(|(k, s)| fields.get(k).map(|v| (s, v))))?;
                }
                if let Some(Value::Object(patterns)) = map.get("patternProperties") {
                    for s in patterns.values() {
                        w.add(fields.values().map(|v| (s, v)))?;
                    }
                }
                for s in ["additionalProperties", "unevaluatedProperties"]
                    .iter()
                    .filter_map(|k| get(k))
                {
                    w.add(fields.values().map(|v| (s, v)))?;
                }
                if let Some(s) = get("propertyNames") {
                    // Each key is checked as a string value of its own.
                    w.add(fields.keys().map(|_| (s, &Value::Null)))?;
                }
            }
            Value::Array(items) => {
                match map.get("items") {
                    Some(Value::Array(tuple)) => w.add(tuple.iter().zip(items))?,
                    Some(s) if s.is_object() || s.is_boolean() => w.add(items.iter().map(|v| (s, v)))?,
                    _ => {}
                }
                if let Some(Value::Array(tuple)) = map.get("prefixItems") {
                    w.add(tuple.iter().zip(items))?;
                }
                for s in ["additionalItems", "unevaluatedItems", "contains"]
                    .iter()
                    .filter_map(|k| get(k))
                {
                    w.add(items.iter().map(|v| (s, v)))?;
                }
            }
            _ => {}
        }
    }
    Ok(w.count)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(schema: Value, why: &str) {
        match check_schema(&schema) {
            Err(e) => assert!(e.contains(why), "{schema}: `{e}` does not say `{why}`"),
            Ok(()) => panic!("accepted: {schema}"),
        }
    }

    #[test]
    fn cycles_that_never_reach_the_data_are_refused() {
        let cycle = "reference cycle";
        refused(
            json!({"$defs": {"x": {"$ref": "#/$defs/y"}, "y": {"$ref": "#/$defs/x"}}, "$ref": "#/$defs/x"}),
            cycle,
        );
        refused(json!({"$ref": "#"}), cycle);
        refused(json!({"allOf": [{"$ref": "#"}]}), cycle);
        refused(
            json!({"anyOf": [{"type": "object"}, {"oneOf": [{"$ref": "#"}]}]}),
            cycle,
        );
        refused(json!({"if": {"$ref": "#"}}), cycle);
        refused(json!({"if": true, "then": {"not": {"$ref": "#"}}}), cycle);
        refused(json!({"dependentSchemas": {"a": {"$ref": "#"}}}), cycle);
        refused(json!({"dependencies": {"a": {"allOf": [{"$ref": "#"}]}}}), cycle);
        refused(
            json!({"definitions": {"a": {"anyOf": [{"$ref": "#/definitions/b"}]}, "b": {"not": {"$ref": "#/definitions/a"}}},
                   "properties": {"p": {"$ref": "#/definitions/a"}}}),
            cycle,
        );
        // Reached only through a definition nobody uses: still refused, it is stored.
        refused(json!({"$defs": {"lonely": {"$ref": "#/$defs/lonely"}}}), cycle);
        // Spelled with a %-escape, or pointing into `properties`.
        refused(
            json!({"$defs": {"x": {"$ref": "#/%24defs/x"}}, "$ref": "#/$defs/x"}),
            cycle,
        );
        refused(json!({"properties": {"a": {"$ref": "#/properties/a"}}}), cycle);
        refused(
            json!({"properties": {"a~b": {"allOf": [{"$ref": "#/properties/a~0b"}]}}}),
            cycle,
        );
    }

    #[test]
    fn recursion_through_the_data_is_fine() {
        for ok in [
            json!({"type": "object", "properties": {"child": {"$ref": "#"}}}),
            json!({"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}}),
            json!({"$defs": {"node": {"type": "object", "additionalProperties": {"$ref": "#/$defs/node"}}}, "$ref": "#/$defs/node"}),
            json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/a"}}}),
            json!({"$id": "https://example.com/property", "properties": {"id": {"type": "string"}}}),
        ] {
            check_schema(&ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn explosive_expansion_is_refused() {
        // d0 applies d1 twice, d1 applies d2 twice, …: 2^20 subschemas for one value.
        let mut defs = serde_json::Map::new();
        for i in 0..20 {
            let next = format!("#/$defs/d{}", i + 1);
            defs.insert(format!("d{i}"), json!({"allOf": [{"$ref": next}, {"$ref": next}]}));
        }
        defs.insert("d20".into(), json!({"type": "object"}));
        refused(
            json!({"$defs": defs, "$ref": "#/$defs/d0"}),
            "more than 1000 subschemas",
        );
        // A long chain of single references.
        let mut defs = serde_json::Map::new();
        for i in 0..100 {
            defs.insert(format!("d{i}"), json!({"$ref": format!("#/$defs/d{}", i + 1)}));
        }
        defs.insert("d100".into(), json!({}));
        refused(json!({"$defs": defs, "$ref": "#/$defs/d0"}), "chains more than 64");
    }

    #[test]
    fn references_must_stay_inside_and_resolve() {
        refused(json!({"$ref": "https://example.com/s.json"}), "refers outside");
        refused(json!({"$ref": "other.json#/a"}), "refers outside");
        refused(json!({"$ref": "#anchor"}), "anchor");
        refused(json!({"$ref": "#/$defs/nope"}), "points at nothing");
        refused(
            json!({"$defs": {"n": 3}, "$ref": "#/$defs/n"}),
            "does not point at a schema",
        );
        refused(json!({"$ref": "#/%zz"}), "%-escape");
        refused(json!({"$ref": 5}), "must be a string");
        refused(json!({"$dynamicRef": "#meta"}), "`$dynamicRef`");
        refused(json!({"$recursiveRef": "#"}), "`$recursiveRef`");
        refused(
            json!({"properties": {"a": {"$id": "https://x.test/a", "$ref": "#"}}}),
            "`$id` is only supported",
        );
    }

    #[test]
    fn size_and_depth_are_capped() {
        let mut props = serde_json::Map::new();
        for i in 0..3000 {
            props.insert(format!("field_number_{i}"), json!({"type": "string"}));
        }
        refused(json!({"properties": props}), "bytes of JSON");
        let mut deep = json!({"type": "string"});
        for _ in 0..40 {
            deep = json!({"allOf": [deep]});
        }
        refused(deep, "nests deeper");
    }

    #[test]
    fn the_budget_stops_what_creation_cannot_see() {
        // Doubling per level of the data: fine for shallow data, refused for deep data.
        let schema = json!({"anyOf": [
            {"properties": {"a": {"$ref": "#"}}},
            {"properties": {"a": {"$ref": "#"}}}
        ]});
        check_schema(&schema).unwrap();
        let mut data = json!({});
        for _ in 0..5 {
            data = json!({"a": data});
        }
        assert!(evaluations(&schema, &data, VALIDATION_BUDGET).is_ok());
        for _ in 0..30 {
            data = json!({"a": data});
        }
        assert!(evaluations(&schema, &data, VALIDATION_BUDGET).is_err());
        // A looping schema stored before these checks only exhausts the budget.
        let looping = json!({"$defs": {"x": {"$ref": "#/$defs/y"}, "y": {"$ref": "#/$defs/x"}}, "$ref": "#/$defs/x"});
        assert!(evaluations(&looping, &json!({"a": 1}), VALIDATION_BUDGET).is_err());
        // Many keys against many patterns.
        let patterns: serde_json::Map<String, Value> = (0..500)
            .map(|i| (format!("^k{i}"), json!({"type": "string"})))
            .collect();
        let fields: serde_json::Map<String, Value> = (0..1000).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(evaluations(
            &json!({"patternProperties": patterns}),
            &Value::Object(fields),
            VALIDATION_BUDGET
        )
        .is_err());
    }
}
