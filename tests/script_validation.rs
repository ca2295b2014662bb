//! Invalid scripts are refused with errors that name the place and the problem.

use voxd::conversation::script::Script;

fn base() -> serde_json::Value {
    serde_json::json!({
        "name": "Test",
        "type": "outbound",
        "main_flow_id": "main",
        "flows": [
            {"id": "main", "steps": [
                {"id": "ask", "type": "voice", "script": "Say: Hello {{contact.first_name}}",
                 "conditions": [{"when": "They agree", "next": "sub"}, {"otherwise": true, "end_flow": "fail"}]},
                {"id": "sub", "type": "flow", "flow": "helper",
                 "conditions": [{"outcome": "success", "end_flow": "success"}, {"otherwise": true, "end_flow": "fail"}]}
            ]},
            {"id": "helper", "steps": [
                {"id": "check", "type": "function", "function": "validate_email", "input": {"email": "{{contact.email}}"},
                 "conditions": [{"outcome": "success", "end_flow": "success"}, {"otherwise": true, "end_flow": "fail"}]}
            ]}
        ]
    })
}

fn errors(script: serde_json::Value) -> Vec<String> {
    let script: Script = serde_json::from_value(script).expect("parses");
    script.validate().iter().map(|e| e.to_string()).collect()
}

fn assert_refused(script: serde_json::Value, at: &str, problem: &str) {
    let errs = errors(script);
    assert!(
        errs.iter().any(|e| e.starts_with(at) && e.contains(problem)),
        "wanted `{at}: …{problem}…`, got {errs:?}"
    );
}

#[test]
fn the_base_script_is_valid() {
    assert_eq!(errors(base()), Vec::<String>::new());
}

#[test]
fn unknown_step_and_flow_ids() {
    let mut s = base();
    s["flows"][0]["steps"][0]["conditions"][0]["next"] = "nowhere".into();
    assert_refused(s, "flows.main.steps.ask.conditions[0]", "next step `nowhere`");
    let mut s = base();
    s["flows"][0]["steps"][1]["flow"] = "ghost".into();
    assert_refused(s, "flows.main.steps.sub", "flow `ghost` does not exist");
    let mut s = base();
    s["main_flow_id"] = "missing".into();
    assert_refused(s, "main_flow_id", "no flow has id `missing`");
}

#[test]
fn no_reachable_ending() {
    let mut s = base();
    s["flows"][0]["steps"][0]["conditions"] = serde_json::json!([{"otherwise": true, "next": "ask"}]);
    assert_refused(s, "flows.main", "no ending is reachable");
}

#[test]
fn sub_flow_cannot_end_the_call() {
    let mut s = base();
    s["flows"][1]["steps"][0]["conditions"][1] = serde_json::json!({"otherwise": true, "end_call": true});
    assert_refused(
        s,
        "flows.helper.steps.check.conditions[1]",
        "sub-flow cannot end the call directly",
    );
}

#[test]
fn undefined_variable_namespace() {
    let mut s = base();
    s["flows"][0]["steps"][0]["script"] = "Say: Hi {{client.name}}".into();
    assert_refused(s, "flows.main.steps.ask", "namespace `client`");
}

#[test]
fn unknown_function() {
    let mut s = base();
    s["flows"][1]["steps"][0]["function"] = "teleport".into();
    assert_refused(s, "flows.helper.steps.check", "function `teleport` does not exist");
}

#[test]
fn malformed_conditions_and_steps() {
    let mut s = base();
    s["flows"][0]["steps"][0]["conditions"][0] = serde_json::json!({"when": "x", "next": "sub", "end_flow": "success"});
    assert_refused(s, "flows.main.steps.ask.conditions[0]", "exactly one of");
    let mut s = base();
    s["flows"][0]["steps"][1]["conditions"][0] = serde_json::json!({"when": "x", "end_flow": "success"});
    assert_refused(s, "flows.main.steps.sub.conditions[0]", "needs `outcome`");
    let mut s = base();
    s["flows"][0]["steps"][0]["script"] = "".into();
    assert_refused(s, "flows.main.steps.ask", "needs a script");
    let mut s = base();
    s["flows"][0]["steps"][1]["id"] = "ask".into();
    assert_refused(s, "flows.main.steps.ask", "used twice");
    // Unknown fields and values are refused when parsing.
    let mut s = base();
    s["flows"][0]["steps"][0]["type"] = "dance".into();
    assert!(serde_json::from_value::<Script>(s).is_err());
}
