//! The example scripts, run end to end against simulated callees with the `rules` brain: the path
//! taken, the transcript, the end reason and the analysis.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};
use voxd::clock::ManualClock;
use voxd::conversation::{
    analysis::{Analysis, SuccessEvaluation},
    brain::{rules::RulesBrain, Brain},
    engine::EndReason,
    persona::{simulate, Persona, Rule},
    script::{Outcome, Script},
    text::Conversation,
    tools::{RecordingSms, Tools},
    transcript::Role,
};

pub fn example(name: &str) -> Arc<Script> {
    let path = format!("{}/examples/scripts/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    let script = Script::from_yaml_or_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(script.validate(), vec![], "example {name} is valid");
    Arc::new(script)
}

fn contact() -> Value {
    json!({"contact": {"first_name": "John", "last_name": "Smith", "email": "john.smith@example.com", "phone_number": "+61429069971"}})
}

pub struct Run {
    pub conversation: Conversation,
    pub analysis: Analysis,
}

impl Run {
    fn said(&self, role: Role) -> Vec<String> {
        self.conversation
            .transcript()
            .iter()
            .filter(|t| t.role == role)
            .map(|t| t.text.clone())
            .collect()
    }

    fn assistant_said(&self, words: &str) -> bool {
        self.said(Role::Assistant).iter().any(|t| t.contains(words))
    }

    fn path(&self) -> Vec<&str> {
        self.conversation.path().iter().map(String::as_str).collect()
    }
}

pub async fn run_with(script: Arc<Script>, brain: Arc<dyn Brain>, mut persona: Persona) -> Run {
    // Thursday 26 November 2026, 10:00 in Sydney.
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 23, 0, 0).unwrap()));
    let tools = Arc::new(Tools::new(true, Arc::new(RecordingSms::default())));
    let mut conversation =
        Conversation::start(script, brain, tools, clock.clone(), contact(), Default::default()).await;
    simulate(&mut conversation, &mut persona, &clock, 40).await;
    let analysis = conversation.analyse().await;
    Run { conversation, analysis }
}

async fn run(name: &str, persona: Persona) -> Run {
    run_with(example(name), Arc::new(RulesBrain), persona).await
}

fn buyer() -> Persona {
    Persona {
        name: "keen buyer".into(),
        rules: vec![
            Rule {
                when: vec!["think of the property".into()],
                say: "We loved it, the kitchen is great.".into(),
            },
            Rule {
                when: vec!["budget".into()],
                say: "Around 1250000 dollars.".into(),
            },
        ],
        ..Persona::cooperative()
    }
}

#[tokio::test]
async fn buyer_follow_up_cooperative() {
    let r = run("buyer-follow-up", buyer()).await;
    assert_eq!(r.path(), ["greet", "feedback", "offer", "budget"]);
    assert_eq!(
        r.conversation.end_reason(),
        Some(&EndReason::FlowEnded(Outcome::Success))
    );
    assert_eq!(r.conversation.end_reason().unwrap().as_str(), "ai hangup");
    let first = &r.conversation.transcript()[0];
    assert!(
        first
            .text
            .starts_with("Hi John, it's Sam's assistant from Harbour Realty. You inspected 12 Ocean Street, Bondi"),
        "{}",
        first.text
    );
    assert!(r.assistant_said("Sam will call you soon"));
    assert_eq!(r.analysis.brain, "rules");
    assert_eq!(r.analysis.success_evaluation, SuccessEvaluation::Successful);
    assert_eq!(r.analysis.rating, 5);
    assert!(r.analysis.objectives.iter().all(|o| o.achieved));
    assert_eq!(r.analysis.structured_data["liked_property"], true);
    assert_eq!(r.analysis.structured_data["wants_offer_call"], true);
    assert_eq!(r.analysis.structured_data["budget"], 1250000);
    assert!(r.analysis.summary.starts_with("John"), "{}", r.analysis.summary);
    // Turn times come from the injected clock: the callee answers 3 s after each assistant turn.
    let offsets: Vec<i64> = r.conversation.transcript().iter().map(|t| t.start_ms).collect();
    assert_eq!(offsets[..4], [0, 3000, 3000, 6000]);
}

#[tokio::test]
async fn buyer_follow_up_unsure() {
    let r = run("buyer-follow-up", Persona::unsure()).await;
    assert_eq!(r.path(), ["greet", "feedback", "offer"]);
    assert!(r.assistant_said("take your time"));
    assert_eq!(
        r.conversation.end_reason(),
        Some(&EndReason::FlowEnded(Outcome::Success))
    );
    assert_eq!(r.analysis.success_evaluation, SuccessEvaluation::PartiallySuccessful);
    assert_eq!(r.analysis.structured_data["wants_offer_call"], Value::Null);
}

#[tokio::test]
async fn buyer_follow_up_off_topic_question_stays_on_the_step() {
    let r = run(
        "buyer-follow-up",
        Persona::off_topic("Before that, what's the price guide?"),
    )
    .await;
    let turns = r.conversation.transcript();
    assert_eq!(turns[1].role, Role::User);
    assert!(turns[2].text.contains("1.2 to 1.3 million"), "{}", turns[2].text);
    assert_eq!(
        turns[2].step.as_deref(),
        Some("greet"),
        "the answer is given on the current step"
    );
    assert_eq!(r.path(), ["greet", "feedback", "offer", "budget"]);
    assert_eq!(
        r.conversation.end_reason(),
        Some(&EndReason::FlowEnded(Outcome::Success))
    );
}

#[tokio::test]
async fn buyer_follow_up_silent_callee_is_prompted_then_let_go() {
    let r = run("buyer-follow-up", Persona::silent()).await;
    assert_eq!(r.conversation.end_reason(), Some(&EndReason::Silence));
    let turns = r.conversation.transcript();
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[1].text, "Are you still there?");
    assert_eq!(turns[1].start_ms, 4000, "hurried: prompt after 4 s");
    assert_eq!(turns[2].start_ms, 15000, "hurried: shutdown after 15 s");
    assert_eq!(r.analysis.success_evaluation, SuccessEvaluation::Unsuccessful);
    assert_eq!(r.analysis.rating, 1);
}

#[tokio::test]
async fn buyer_follow_up_hang_up_early() {
    let r = run("buyer-follow-up", Persona::hangs_up_early()).await;
    assert_eq!(r.conversation.end_reason(), Some(&EndReason::UserHangup));
    assert_eq!(r.conversation.end_reason().unwrap().as_str(), "user hangup");
    assert_eq!(r.path(), ["greet"]);
    assert_eq!(r.said(Role::User).len(), 0);
    assert!(r.analysis.objectives.iter().all(|o| !o.achieved));
}

#[tokio::test]
async fn buyer_follow_up_busy_and_do_not_call() {
    let busy = Persona {
        lines: ["Sorry I'm driving, can you call me back later?".to_owned()].into(),
        ..Default::default()
    };
    let r = run("buyer-follow-up", busy).await;
    assert_eq!(r.conversation.end_reason(), Some(&EndReason::FlowEnded(Outcome::Fail)));
    assert!(r.assistant_said("another time"));
    let dnc = Persona {
        lines: ["Please don't call me again.".to_owned()].into(),
        ..Default::default()
    };
    let r = run("buyer-follow-up", dnc).await;
    assert_eq!(r.conversation.end_reason(), Some(&EndReason::AssistantHangup));
    assert!(r.assistant_said("won't call you again"));
}

#[tokio::test]
async fn appraisal_booking_runs_the_sub_flow_and_functions() {
    let r = run("appraisal-booking", Persona::cooperative()).await;
    assert_eq!(
        r.path(),
        ["intro", "book", "find_day", "offer_day", "confirm_email", "wrap_email"]
    );
    // Thursday 26 November → the next business day is Friday 27 November.
    assert!(
        r.assistant_said("The next available appraisal is Friday 27 November at 10am"),
        "{:?}",
        r.said(Role::Assistant)
    );
    assert!(r.assistant_said("I'll email the details to john.smith@example.com"));
    assert_eq!(r.conversation.variables()["custom"]["slot_date"], "2026-11-27");
    assert_eq!(
        r.conversation.end_reason(),
        Some(&EndReason::FlowEnded(Outcome::Success))
    );
    assert_eq!(r.analysis.success_evaluation, SuccessEvaluation::Successful);
    assert_eq!(r.analysis.structured_data["agreed_to_book"], true);
}

#[tokio::test]
async fn appraisal_booking_other_day_and_unsure() {
    let other = Persona {
        rules: vec![
            Rule {
                when: vec!["which day".into()],
                say: "Monday would be better.".into(),
            },
            Rule {
                when: vec!["suit you".into()],
                say: "No, that doesn't work for me.".into(),
            },
        ],
        ..Persona::cooperative()
    };
    let r = run("appraisal-booking", other).await;
    assert_eq!(
        r.path(),
        [
            "intro",
            "book",
            "find_day",
            "offer_day",
            "other_day",
            "confirm_email",
            "wrap_email"
        ]
    );
    assert_eq!(r.analysis.structured_data["preferred_day"], "2026-11-30");

    let unsure = Persona {
        rules: vec![Rule {
            when: vec!["suit you".into(), "which day".into()],
            say: "I'm not sure.".into(),
        }],
        ..Persona::cooperative()
    };
    let r = run("appraisal-booking", unsure).await;
    assert_eq!(
        r.path(),
        ["intro", "book", "find_day", "offer_day", "other_day", "no_slot"],
        "the sub-flow failed back to its parent"
    );
    assert_eq!(r.conversation.end_reason(), Some(&EndReason::FlowEnded(Outcome::Fail)));
    assert_eq!(r.analysis.success_evaluation, SuccessEvaluation::Unsuccessful);
}

#[tokio::test]
async fn receptionist_answers_from_the_knowledge_base() {
    let caller = Persona {
        lines: [
            "Hi, what are your office hours on Saturday?".to_owned(),
            "And where is your office located?".to_owned(),
            "I'd like to get an appraisal for my unit.".to_owned(),
            "Jane Citizen, 0412 345 678".to_owned(),
        ]
        .into(),
        ..Default::default()
    };
    let r = run("receptionist", caller).await;
    assert!(r.assistant_said("9am to 1pm on Saturdays"));
    assert!(r.assistant_said("40 Campbell Parade"));
    assert_eq!(r.path(), ["greet", "take_details"]);
    assert_eq!(
        r.analysis.structured_data["caller_details"],
        "Jane Citizen, 0412 345 678"
    );
    assert_eq!(r.analysis.success_evaluation, SuccessEvaluation::Successful);
    // The summary says what happened in the callee's terms.
    let summary = &r.analysis.summary;
    assert!(
        summary.starts_with("John wants to sell, rent or get an appraisal."),
        "{summary}"
    );
    assert!(
        summary.contains("caller details: \"Jane Citizen, 0412 345 678\""),
        "{summary}"
    );
}

#[tokio::test]
async fn receptionist_silence_is_patient_and_max_duration_ends_the_call() {
    let r = run("receptionist", Persona::silent()).await;
    let turns = r.conversation.transcript();
    assert_eq!(turns[1].start_ms, 16_000, "patient: prompt after 16 s");
    assert_eq!(turns[2].start_ms, 60_000, "patient: shutdown after 60 s");
    assert_eq!(r.conversation.end_reason(), Some(&EndReason::Silence));

    // A chatty caller who never gets to the point runs into the script's maximum duration.
    let mut script = (*example("receptionist")).clone();
    script.settings.max_duration_seconds = 20;
    let chatty = Persona {
        fallback: Some("What are your office hours?".into()),
        ..Default::default()
    };
    let r = run_with(Arc::new(script), Arc::new(RulesBrain), chatty).await;
    assert_eq!(r.conversation.end_reason(), Some(&EndReason::MaxDuration));
    assert_eq!(r.conversation.end_reason().unwrap().as_str(), "max duration");
}

#[tokio::test]
async fn interrupting_callee_marks_the_assistant_turns_it_cut() {
    let interrupter = Persona {
        interrupts: true,
        ..buyer()
    };
    let r = run("buyer-follow-up", interrupter).await;
    assert_eq!(r.path(), ["greet", "feedback", "offer", "budget"]);
    let cut: Vec<bool> = r
        .conversation
        .transcript()
        .iter()
        .filter(|t| t.role == Role::Assistant)
        .map(|t| t.interrupted)
        .collect();
    assert_eq!(
        cut,
        [true, true, true, true, false],
        "each question was cut; the goodbye came after the last word"
    );
    assert_eq!(r.conversation.transcript()[1].start_ms, 1000);
}

/// Every example against every stock persona: each ends the way its script says it should, with a
/// transcript and an analysis from `rules`.
#[tokio::test]
async fn every_example_against_every_persona() {
    use EndReason::*;
    type Stock = (&'static str, fn() -> Persona);
    let personas: [Stock; 5] = [
        ("cooperative", Persona::cooperative),
        ("unsure", Persona::unsure),
        ("off-topic", || Persona::off_topic("Who is this?")),
        ("silent", Persona::silent),
        ("hangs up early", Persona::hangs_up_early),
    ];
    let expected: [(&str, [&str; 5]); 3] = [
        (
            "buyer-follow-up",
            ["ai hangup", "ai hangup", "ai hangup", "silence timeout", "user hangup"],
        ),
        (
            "appraisal-booking",
            ["ai hangup", "ai hangup", "ai hangup", "silence timeout", "user hangup"],
        ),
        (
            "receptionist",
            ["ai hangup", "ai hangup", "ai hangup", "silence timeout", "user hangup"],
        ),
    ];
    for (script, reasons) in expected {
        for ((name, persona), reason) in personas.iter().zip(reasons) {
            let r = run(script, persona()).await;
            let end = r
                .conversation
                .end_reason()
                .unwrap_or_else(|| panic!("{script}/{name} did not end"));
            assert_eq!(
                end.as_str(),
                reason,
                "{script} / {name}: {:?}",
                r.conversation.transcript()
            );
            assert!(!matches!(end, Failed(_)));
            assert!(!r.conversation.transcript().is_empty());
            assert_eq!(r.analysis.brain, "rules");
            assert!((1..=5).contains(&r.analysis.rating));
            let fields = r.analysis.structured_data.len();
            assert_eq!(
                fields,
                example(script).data_collection.len(),
                "{script}: every declared field is present"
            );
        }
    }
}

#[tokio::test]
async fn tool_steps_call_webhooks_and_send_sms() {
    use axum::{routing::post, Json, Router};
    let app = Router::new().route(
        "/crm/lookup",
        post(|Json(body): Json<Value>| async move {
            Json(json!({"data": {"customer": {"id": format!("C-{}", body["phone"].as_str().unwrap_or_default()), "tier": "gold"}}}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/crm/lookup", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let script: Script = serde_json::from_value(json!({
        "name": "Lookup", "type": "inbound", "main_flow_id": "main",
        "flows": [{"id": "main", "steps": [
            {"id": "lookup", "type": "tool", "script": "Say: One moment while I look you up.",
             "tool": {"kind": "webhook", "url": url, "body": {"phone": "{{contact.phone_number}}"},
                      "response_map": {"customer_id": "/data/customer/id", "tier": "/data/customer/tier"}},
             "output": {"customer_id": "crm.customer_id", "tier": "crm.tier"},
             "conditions": [{"outcome": "success", "next": "text"}, {"otherwise": true, "next": "sorry"}]},
            {"id": "text", "type": "tool", "tool": {"kind": "sms_send"},
             "input": {"message": "Your customer number is {{crm.customer_id}}"},
             "conditions": [{"outcome": "success", "next": "found"}, {"otherwise": true, "next": "sorry"}]},
            {"id": "found", "type": "voice", "script": "Say: Found you, {{crm.tier}} member {{crm.customer_id}}. I've texted you the number.",
             "conditions": [{"otherwise": true, "end_flow": "success"}]},
            {"id": "sorry", "type": "voice", "script": "Say: Sorry, I couldn't find you.",
             "conditions": [{"otherwise": true, "end_flow": "fail"}]}
        ]}]
    }))
    .unwrap();
    assert_eq!(script.validate(), vec![]);
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap()));
    let sms = Arc::new(RecordingSms::default());
    let script = Arc::new(script);
    let allowed = Arc::new(Tools::new(true, sms.clone()));
    let c = Conversation::start(
        script.clone(),
        Arc::new(RulesBrain),
        allowed,
        clock.clone(),
        contact(),
        Default::default(),
    )
    .await;
    let said: Vec<&str> = c.transcript().iter().map(|t| t.text.as_str()).collect();
    assert_eq!(
        said,
        [
            "One moment while I look you up.",
            "Found you, gold member C-+61429069971. I've texted you the number."
        ]
    );
    assert_eq!(
        sms.0.lock().unwrap().as_slice(),
        [(
            "+61429069971".to_owned(),
            "Your customer number is C-+61429069971".to_owned()
        )]
    );

    // The same script on a server that does not allow private addresses cannot reach the CRM.
    let guarded = Arc::new(Tools::new(false, Arc::new(RecordingSms::default())));
    let c = Conversation::start(
        script,
        Arc::new(RulesBrain),
        guarded,
        clock,
        contact(),
        Default::default(),
    )
    .await;
    assert_eq!(c.path(), ["lookup", "sorry"]);
}

#[tokio::test]
async fn repeated_unclear_answers_end_the_call_politely() {
    let mumbler = Persona {
        fallback: Some("Hmm, I'm not sure really.".into()),
        ..Default::default()
    };
    let r = run("receptionist", mumbler).await;
    assert_eq!(r.conversation.end_reason(), Some(&EndReason::AssistantHangup));
    let assistant = r.said(Role::Assistant);
    assert_eq!(
        assistant
            .iter()
            .filter(|t| t.starts_with("Sorry, I didn't quite catch that"))
            .count(),
        2
    );
    assert!(assistant.last().unwrap().contains("having trouble understanding"));
    assert_eq!(r.said(Role::User).len(), 3);
}
