//! The `openai` and `hybrid` brains against a local fake of the chat-completions protocol: the same
//! conversations as with `rules`, plus timeouts, server errors and malformed replies.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{extract::State, routing::post, Json, Router};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use voxd::clock::ManualClock;
use voxd::conversation::{
    analysis::{Analysis, SuccessEvaluation},
    brain::{hybrid::HybridBrain, openai::OpenAiBrain, rules, Brain, DecideRequest, Decision},
    engine::EndReason,
    persona::{simulate, Persona, Rule},
    script::{Condition, Script, Step, ThinkingEffort},
    text::Conversation,
    tools::{RecordingSms, Tools},
};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    Malformed,
    Slow,
    FailOnce,
}

#[derive(Clone)]
struct Fake {
    mode: Arc<Mutex<Mode>>,
    requests: Arc<AtomicUsize>,
    decisions: Arc<AtomicUsize>,
    /// Decisions whose schema asked for reasoning first (`deep` steps).
    reasoned: Arc<AtomicUsize>,
    /// The most turns of history a decision carried.
    longest_history: Arc<AtomicUsize>,
    failed_once: Arc<AtomicUsize>,
}

/// Answers like a small model would, deciding with the rules brain on what the prompt carries.
async fn completions(State(fake): State<Fake>, Json(body): Json<Value>) -> axum::response::Response {
    use axum::response::IntoResponse;
    fake.requests.fetch_add(1, Ordering::SeqCst);
    let mode = *fake.mode.lock().unwrap();
    if body["stream"] == true {
        // Server-sent events, the instruction echoed in deltas that split words and sentences.
        assert!(body.get("response_format").is_none(), "a streamed reply is plain text");
        let user: Value = serde_json::from_str(body["messages"][1]["content"].as_str().unwrap()).unwrap();
        let text = user["instruction"].as_str().unwrap().to_owned();
        let mut sse = String::new();
        for chunk in text.as_bytes().chunks(7) {
            let delta = json!({"choices": [{"index": 0, "delta": {"content": String::from_utf8_lossy(chunk)}}]});
            sse.push_str(&format!("data: {delta}\n\n"));
        }
        sse.push_str("data: [DONE]\n\n");
        return ([("content-type", "text/event-stream")], sse).into_response();
    }
    assert_eq!(
        body["response_format"]["type"], "json_schema",
        "structured output is requested"
    );
    assert!(body["response_format"]["json_schema"]["schema"].is_object());
    if mode == Mode::Slow {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if mode == Mode::FailOnce && fake.failed_once.fetch_add(1, Ordering::SeqCst) == 0 {
        return Json(json!({"error": "overloaded"})).into_response(); // paired with a 200: content missing → malformed, retried
    }
    let user: Value = serde_json::from_str(body["messages"][1]["content"].as_str().unwrap()).unwrap();
    let content = match (mode, body["response_format"]["json_schema"]["name"].as_str().unwrap()) {
        (Mode::Malformed, _) => "I think the caller agreed!".to_owned(),
        (_, "decision") => {
            fake.decisions.fetch_add(1, Ordering::SeqCst);
            let schema = &body["response_format"]["json_schema"]["schema"];
            if schema["properties"].get("_reasoning").is_some() {
                let required = schema["required"].as_array().unwrap();
                assert_eq!(required[0], "_reasoning", "reasoning comes first: {schema}");
                fake.reasoned.fetch_add(1, Ordering::SeqCst);
            }
            let turns = user["history"].as_array().unwrap().len();
            fake.longest_history.fetch_max(turns, Ordering::SeqCst);
            decide_like_a_model(&user).to_string()
        }
        (_, "turn") => json!({"say": user["instruction"]}).to_string(),
        (_, "analysis") => {
            let objectives: Vec<Value> = user["objectives"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| json!({"id": o["id"], "achieved": true, "evidence": "model says so"}))
                .collect();
            let fields: serde_json::Map<String, Value> = user["data_fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| (f["name"].as_str().unwrap().to_owned(), Value::Null))
                .collect();
            json!({"summary": "The buyer liked the home.", "objectives": objectives, "structured_data": fields,
                   "success_evaluation": "successful", "rating": 4})
            .to_string()
        }
        (_, other) => panic!("unexpected request {other}"),
    };
    Json(json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})).into_response()
}

fn decide_like_a_model(user: &Value) -> Value {
    let conditions: Vec<Condition> = user["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let when = c["when"].as_str().unwrap().to_owned();
            let otherwise = when.starts_with("otherwise");
            Condition {
                when: (!otherwise).then_some(when),
                otherwise,
                next: Some("x".into()),
                ..Default::default()
            }
        })
        .collect();
    let step = Step {
        conditions,
        ..serde_json::from_value(json!({"id": "s", "type": "voice"})).unwrap()
    };
    let script: Script = serde_json::from_value(
        json!({"name": "fake", "type": "outbound", "main_flow_id": "m", "flows": [],
        "knowledge_base": user["knowledge"]["knowledge_base"]}),
    )
    .unwrap();
    let req = DecideRequest {
        script: &script,
        step: &step,
        utterance: user["callee_said"].as_str().unwrap(),
        transcript: &[],
        only_if_sure: false,
    };
    match rules::decide(&req) {
        Decision::Condition(i) => json!({"action": "condition", "condition": i, "reply": ""}),
        Decision::Answer(a) => json!({"action": "answer", "condition": -1, "reply": a}),
        Decision::EndCall(a) => json!({"action": "end_call", "condition": -1, "reply": a}),
        Decision::Unclear => json!({"action": "unclear", "condition": -1, "reply": ""}),
    }
}

async fn fake(mode: Mode) -> (String, Fake) {
    let state = Fake {
        mode: Arc::new(Mutex::new(mode)),
        requests: Arc::default(),
        decisions: Arc::default(),
        reasoned: Arc::default(),
        longest_history: Arc::default(),
        failed_once: Arc::default(),
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

fn example() -> Arc<Script> {
    script("buyer-follow-up")
}

fn script(name: &str) -> Arc<Script> {
    let path = format!("{}/examples/scripts/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    Arc::new(Script::from_yaml_or_json(&std::fs::read_to_string(path).unwrap()).unwrap())
}

fn buyer() -> Persona {
    Persona {
        rules: vec![
            Rule {
                when: vec!["think of the property".into()],
                say: "We loved it.".into(),
            },
            Rule {
                when: vec!["budget".into()],
                say: "About 1200000.".into(),
            },
        ],
        ..Persona::cooperative()
    }
}

async fn converse(brain: Arc<dyn Brain>, persona: Persona) -> (Conversation, Analysis) {
    converse_with(example(), brain, persona).await
}

async fn converse_with(script: Arc<Script>, brain: Arc<dyn Brain>, mut persona: Persona) -> (Conversation, Analysis) {
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap()));
    let tools = Arc::new(Tools::new(false, Arc::new(RecordingSms::default())));
    let vars = json!({"contact": {"first_name": "John"}});
    let mut c = Conversation::start(script, brain, tools, clock.clone(), vars, Default::default()).await;
    simulate(&mut c, &mut persona, &clock, 30).await;
    let a = c.analyse().await;
    (c, a)
}

fn openai(url: &str, timeout_ms: u64) -> OpenAiBrain {
    OpenAiBrain::new(
        url,
        "fake-model",
        Some("sk-test".into()),
        Duration::from_millis(timeout_ms),
    )
}

#[tokio::test]
async fn openai_brain_runs_the_same_conversation() {
    let (url, state) = fake(Mode::Normal).await;
    let (c, a) = converse(Arc::new(openai(&url, 2000)), buyer()).await;
    assert_eq!(c.path(), ["greet", "feedback", "offer", "budget"]);
    assert!(matches!(c.end_reason(), Some(EndReason::FlowEnded(_))));
    assert_eq!(a.brain, "openai");
    assert_eq!(a.summary, "The buyer liked the home.");
    assert_eq!(a.success_evaluation, SuccessEvaluation::Successful);
    assert_eq!(a.rating, 4);
    assert_eq!(a.structured_data.len(), 3, "every declared field, typed (null here)");
    assert_eq!(state.decisions.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn openai_brain_answers_off_script_questions() {
    let (url, _) = fake(Mode::Normal).await;
    let (c, _) = converse(
        Arc::new(openai(&url, 2000)),
        Persona::off_topic("When is the auction date?"),
    )
    .await;
    assert!(
        c.transcript()[2].text.contains("Saturday 12 December"),
        "{:?}",
        c.transcript()[2]
    );
    assert_eq!(c.transcript()[2].step.as_deref(), Some("greet"));
}

#[tokio::test]
async fn malformed_replies_end_the_call_cleanly_as_failed() {
    let (url, state) = fake(Mode::Malformed).await;
    let (c, a) = converse(Arc::new(openai(&url, 2000)), buyer()).await;
    assert!(
        matches!(c.end_reason(), Some(EndReason::Failed(m)) if m.contains("unusable")),
        "{:?}",
        c.end_reason()
    );
    assert_eq!(c.end_reason().unwrap().as_str(), "failed");
    assert!(c.transcript().last().unwrap().text.contains("technical trouble"));
    assert_eq!(a.success_evaluation, SuccessEvaluation::Unsuccessful);
    assert!(a.summary.contains("Analysis failed"));
    assert_eq!(
        state.requests.load(Ordering::SeqCst),
        3 + 3,
        "one decision and one analysis, each tried three times"
    );
}

#[tokio::test]
async fn timeouts_end_the_call_cleanly_as_failed() {
    let (url, _) = fake(Mode::Slow).await;
    let (c, _) = converse(Arc::new(openai(&url, 200)), buyer()).await;
    assert!(
        matches!(c.end_reason(), Some(EndReason::Failed(m)) if m.contains("unavailable")),
        "{:?}",
        c.end_reason()
    );
}

#[tokio::test]
async fn a_transient_failure_is_retried() {
    let (url, state) = fake(Mode::FailOnce).await;
    let (c, _) = converse(Arc::new(openai(&url, 2000)), buyer()).await;
    assert!(
        matches!(c.end_reason(), Some(EndReason::FlowEnded(_))),
        "{:?}",
        c.end_reason()
    );
    assert!(
        state.failed_once.load(Ordering::SeqCst) >= 2,
        "the failed request was tried again"
    );
}

#[tokio::test]
async fn hybrid_asks_the_model_only_when_rules_are_unsure() {
    let (url, state) = fake(Mode::Normal).await;
    let hybrid = Arc::new(HybridBrain::new(openai(&url, 2000)));
    let (c, a) = converse(hybrid.clone(), buyer()).await;
    assert_eq!(c.path(), ["greet", "feedback", "offer", "budget"]);
    // "Yes, sure", "We loved it", "Yes, sure" are clear; the budget answer needs the model.
    assert_eq!(state.decisions.load(Ordering::SeqCst), 1);
    assert_eq!(a.brain, "hybrid");
    // When the model is down, hybrid's analysis falls back to rules and says so.
    *state.mode.lock().unwrap() = Mode::Malformed;
    let (_, a) = converse(hybrid, Persona::hangs_up_early()).await;
    assert_eq!(a.brain, "hybrid (rules fallback)");
}

/// The example with every step at one thinking effort.
fn at_effort(effort: ThinkingEffort) -> Arc<Script> {
    let mut s = (*example()).clone();
    for step in s.flows.iter_mut().flat_map(|f| f.steps.iter_mut()) {
        step.thinking_effort = effort;
    }
    Arc::new(s)
}

#[tokio::test]
async fn thinking_effort_decides_who_reads_the_callee() {
    let (url, state) = fake(Mode::Normal).await;
    let hybrid: Arc<dyn Brain> = Arc::new(HybridBrain::new(openai(&url, 2000)));
    // Fast: rules alone, even for the budget answer normal effort sends to the model.
    let (c, _) = converse_with(at_effort(ThinkingEffort::Fast), hybrid.clone(), buyer()).await;
    assert_eq!(c.path(), ["greet", "feedback", "offer", "budget"]);
    assert_eq!(
        state.decisions.load(Ordering::SeqCst),
        0,
        "fast never waits for the model"
    );
    // Deep: the model reads every answer, reasoning first.
    let (c, _) = converse_with(at_effort(ThinkingEffort::Deep), hybrid, buyer()).await;
    assert_eq!(c.path(), ["greet", "feedback", "offer", "budget"]);
    let decisions = state.decisions.load(Ordering::SeqCst);
    assert_eq!(decisions, 4, "one decision per answer");
    assert_eq!(state.reasoned.load(Ordering::SeqCst), decisions);
    assert!(
        state.longest_history.load(Ordering::SeqCst) > 4,
        "deep sends the whole history"
    );
    // Fast on the model itself: a short history and no reasoning.
    let (url, state) = fake(Mode::Normal).await;
    let (c, _) = converse_with(at_effort(ThinkingEffort::Fast), Arc::new(openai(&url, 2000)), buyer()).await;
    assert_eq!(c.path(), ["greet", "feedback", "offer", "budget"]);
    assert!(state.decisions.load(Ordering::SeqCst) >= 4);
    assert_eq!(state.reasoned.load(Ordering::SeqCst), 0);
    assert_eq!(state.longest_history.load(Ordering::SeqCst), 4);
}

/// The same conversations as `rules` (every example, every stock persona): through the protocol,
/// a model that decides like the rules takes the same paths to the same ends.
#[tokio::test]
async fn openai_brain_takes_the_same_paths_as_rules_everywhere() {
    let (url, _) = fake(Mode::Normal).await;
    let personas: [fn() -> Persona; 6] = [
        Persona::cooperative,
        Persona::unsure,
        || Persona::off_topic("Who is this?"),
        Persona::silent,
        Persona::hangs_up_early,
        buyer,
    ];
    for name in ["buyer-follow-up", "appraisal-booking", "receptionist"] {
        for persona in personas {
            let (by_rules, _) = converse_with(
                script(name),
                Arc::new(voxd::conversation::brain::rules::RulesBrain),
                persona(),
            )
            .await;
            let (by_model, analysis) = converse_with(script(name), Arc::new(openai(&url, 2000)), persona()).await;
            assert_eq!(by_model.path(), by_rules.path(), "{name}");
            assert_eq!(by_model.end_reason(), by_rules.end_reason(), "{name}");
            assert_eq!(by_model.transcript().len(), by_rules.transcript().len(), "{name}");
            assert_eq!(analysis.brain, "openai");
        }
    }
}

#[tokio::test]
async fn composed_lines_stream_sentence_by_sentence() {
    let (url, _) = fake(Mode::Normal).await;
    let brain = openai(&url, 2000);
    let mut pieces = Vec::new();
    let text = brain
        .compose_stream(
            &example(),
            "Thank them for coming. Ask what they thought of the property? Then wait!",
            &[],
            &mut |p| pieces.push(p),
        )
        .await
        .unwrap();
    assert_eq!(
        pieces,
        [
            "Thank them for coming.",
            "Ask what they thought of the property?",
            "Then wait!"
        ]
    );
    assert_eq!(
        text,
        "Thank them for coming. Ask what they thought of the property? Then wait!"
    );
}
