//! The event-driven engine on its own, with time given by hand: decisions superseded by barge-in,
//! silence counted from the end of playback, voice lines interruptible and tool lines not, lines
//! spoken sentence by sentence while they are composed, deadlines.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use voxd::conversation::{
    brain::Decision,
    engine::{Action, EndReason, Engine, Event, JobId, JobResult, UtteranceId, Work},
    script::Script,
};

fn script() -> Arc<Script> {
    let s = json!({
        "name": "Events", "type": "outbound", "main_flow_id": "main",
        "flows": [{"id": "main", "name": "Main", "steps": [
            {"id": "ask", "type": "voice", "script": "Say: Did you like the house?",
             "conditions": [
                {"when": "They liked it", "keywords": ["yes"], "next": "lookup"},
                {"when": "They did not", "keywords": ["no"], "next": "sorry"}
             ]},
            {"id": "lookup", "type": "tool", "script": "Say: One moment while I check.",
             "tool": {"kind": "webhook", "url": "https://crm.example.com/x"},
             "conditions": [{"otherwise": true, "next": "offer"}]},
            {"id": "offer", "type": "voice", "script": "Offer to book an inspection",
             "conditions": [{"otherwise": true, "end_flow": "success"}]},
            {"id": "sorry", "type": "voice", "script": "Say: Sorry to hear that.",
             "conditions": [{"otherwise": true, "end_flow": "fail"}]}
        ]}]
    });
    let script: Script = serde_json::from_value(s).unwrap();
    assert!(script.validate().is_empty(), "{:?}", script.validate());
    Arc::new(script)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
}

fn says(actions: &[Action]) -> Vec<(UtteranceId, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Say { id, text, .. } => Some((*id, text.clone())),
            _ => None,
        })
        .collect()
}

fn decide_job(actions: &[Action]) -> Option<(JobId, String)> {
    actions.iter().find_map(|a| match a {
        Action::Run(job) => match &job.work {
            Work::Decide { utterance, .. } => Some((job.id, utterance.clone())),
            _ => None,
        },
        _ => None,
    })
}

fn job_of(actions: &[Action]) -> Option<JobId> {
    actions.iter().find_map(|a| match a {
        Action::Run(job) => Some(job.id),
        _ => None,
    })
}

fn start() -> (Engine, UtteranceId) {
    let (engine, actions) = Engine::start(script(), json!({}), Default::default(), t0());
    let said = says(&actions);
    assert_eq!(said.len(), 1);
    assert_eq!(said[0].1, "Did you like the house?");
    (engine, said[0].0)
}

#[test]
fn callee_speaking_again_supersedes_the_decision_in_flight() {
    let (mut e, line) = start();
    let at = |s: i64| t0() + Duration::seconds(s);
    e.handle(at(2), Event::Played(line));
    let first = decide_job(&e.handle(at(3), Event::Heard("yes".into()))).expect("a decision");
    assert_eq!(first.1, "yes");
    // The callee goes on while the brain thinks: a new decision on everything said since.
    let second = decide_job(&e.handle(at(4), Event::Heard("well, no actually".into()))).expect("a new decision");
    assert_eq!(second.1, "yes well, no actually");
    assert_ne!(first.0, second.0);
    // The first decision arrives late: ignored.
    let late = e.handle(
        at(5),
        Event::Done {
            job: first.0,
            result: JobResult::Decided(Ok(Decision::Condition(0))),
        },
    );
    assert!(late.is_empty(), "{late:?}");
    assert_eq!(e.current_step().unwrap().id, "ask");
    // The second is taken.
    let actions = e.handle(
        at(5),
        Event::Done {
            job: second.0,
            result: JobResult::Decided(Ok(Decision::Condition(1))),
        },
    );
    assert_eq!(says(&actions)[0].1, "Sorry to hear that.");
    assert_eq!(e.current_step().unwrap().id, "sorry");
}

#[test]
fn silence_is_counted_from_the_end_of_playback() {
    let (mut e, line) = start();
    let at = |s: i64| t0() + Duration::seconds(s);
    // While the line plays, only the maximum duration is a deadline (600 s by default).
    assert_eq!(e.next_deadline(), Some(at(600)));
    assert!(
        says(&e.handle(at(30), Event::Timer)).is_empty(),
        "no prompt while speaking"
    );
    // Playback ends at 30 s: the prompt is due 4 s later (hurried), not 4 s after the line was made.
    e.handle(at(30), Event::Played(line));
    assert_eq!(e.next_deadline(), Some(at(34)));
    assert!(says(&e.handle(at(33), Event::Timer)).is_empty());
    let prompt = says(&e.handle(at(34), Event::Timer));
    assert_eq!(prompt[0].1, "Are you still there?");
    // The goodbye is counted from the end of the prompt's playback: 15 − 4 = 11 s.
    e.handle(at(36), Event::Played(prompt[0].0));
    assert_eq!(e.next_deadline(), Some(at(47)));
    let actions = e.handle(at(47), Event::Timer);
    assert!(matches!(actions.last(), Some(Action::HangUp)), "{actions:?}");
    assert_eq!(e.end_reason(), Some(&EndReason::Silence));
    assert_eq!(e.next_deadline(), None);
}

#[test]
fn voice_lines_can_be_talked_over_and_tool_lines_cannot() {
    let (mut e, line) = start();
    let at = |s: i64| t0() + Duration::seconds(s);
    let actions = e.handle(
        at(1),
        Event::BargeIn {
            utterance: line,
            played_ms: 800,
        },
    );
    assert!(matches!(actions.as_slice(), [Action::StopSpeaking]), "{actions:?}");
    assert!(e.transcript()[0].interrupted);
    let (job, _) = decide_job(&e.handle(at(2), Event::Heard("yes".into()))).unwrap();
    let actions = e.handle(
        at(3),
        Event::Done {
            job,
            result: JobResult::Decided(Ok(Decision::Condition(0))),
        },
    );
    // The tool step says its line and runs its request.
    let said = says(&actions);
    assert_eq!(said[0].1, "One moment while I check.");
    let tool = job_of(&actions).expect("the tool runs as a job");
    let lines: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Say { interruptible, .. } => Some(*interruptible),
            _ => None,
        })
        .collect();
    assert_eq!(lines, [false]);
    // Talking over it changes nothing, and words said meanwhile do not move the flow.
    assert!(e
        .handle(
            at(4),
            Event::BargeIn {
                utterance: said[0].0,
                played_ms: 500
            }
        )
        .is_empty());
    assert!(e.handle(at(4), Event::Heard("hello?".into())).is_empty());
    assert_eq!(e.current_step().unwrap().id, "lookup");
    let actions = e.handle(
        at(5),
        Event::Done {
            job: tool,
            result: JobResult::Tool {
                success: true,
                outputs: Default::default(),
            },
        },
    );
    assert_eq!(e.current_step().unwrap().id, "offer");
    // The next voice step is an instruction: it is composed by the brain, as a job.
    assert!(job_of(&actions).is_some());
}

#[test]
fn a_composed_line_is_spoken_sentence_by_sentence() {
    let (mut e, line) = start();
    let at = |s: i64| t0() + Duration::seconds(s);
    e.handle(at(1), Event::Played(line));
    let (job, _) = decide_job(&e.handle(at(2), Event::Heard("yes".into()))).unwrap();
    let actions = e.handle(
        at(3),
        Event::Done {
            job,
            result: JobResult::Decided(Ok(Decision::Condition(0))),
        },
    );
    let tool = job_of(&actions).unwrap();
    let actions = e.handle(
        at(4),
        Event::Done {
            job: tool,
            result: JobResult::Tool {
                success: true,
                outputs: Default::default(),
            },
        },
    );
    let compose = job_of(&actions).expect("compose job");
    // The first sentence is spoken before the reply is complete.
    let first = e.handle(
        at(5),
        Event::Piece {
            job: compose,
            text: "Great news.".into(),
        },
    );
    assert_eq!(
        says(&first).iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
        ["Great news."]
    );
    let second = e.handle(
        at(5),
        Event::Piece {
            job: compose,
            text: "Shall I book an inspection?".into(),
        },
    );
    assert_eq!(says(&second)[0].1, "Shall I book an inspection?");
    // Done with the whole text: nothing is said twice; the transcript holds one turn.
    let done = e.handle(
        at(6),
        Event::Done {
            job: compose,
            result: JobResult::Composed(Ok("Great news. Shall I book an inspection?".into())),
        },
    );
    assert!(says(&done).is_empty(), "{done:?}");
    let last = e.transcript().last().unwrap();
    assert_eq!(last.text, "Great news. Shall I book an inspection?");
    assert!(!e.is_waiting_for_job());
}

#[test]
fn the_callee_cutting_in_on_a_composed_line_drops_the_rest() {
    let (mut e, line) = start();
    let at = |s: i64| t0() + Duration::seconds(s);
    e.handle(at(1), Event::Played(line));
    let (job, _) = decide_job(&e.handle(at(2), Event::Heard("yes".into()))).unwrap();
    let tool = job_of(&e.handle(
        at(3),
        Event::Done {
            job,
            result: JobResult::Decided(Ok(Decision::Condition(0))),
        },
    ))
    .unwrap();
    let compose = job_of(&e.handle(
        at(4),
        Event::Done {
            job: tool,
            result: JobResult::Tool {
                success: true,
                outputs: Default::default(),
            },
        },
    ))
    .unwrap();
    let piece = says(&e.handle(
        at(5),
        Event::Piece {
            job: compose,
            text: "Great news.".into(),
        },
    ));
    let cut = e.handle(
        at(6),
        Event::BargeIn {
            utterance: piece[0].0,
            played_ms: 300,
        },
    );
    assert!(matches!(cut.as_slice(), [Action::StopSpeaking]));
    // Later pieces of the superseded line are not spoken.
    assert!(e
        .handle(
            at(6),
            Event::Piece {
                job: compose,
                text: "Shall I book?".into()
            }
        )
        .is_empty());
    assert!(e
        .handle(
            at(7),
            Event::Done {
                job: compose,
                result: JobResult::Composed(Ok("x".into()))
            }
        )
        .is_empty());
}

#[test]
fn the_callee_hanging_up_ends_without_a_hang_up_action() {
    let (mut e, _) = start();
    let actions = e.handle(t0() + Duration::seconds(1), Event::HangUp);
    assert!(actions.is_empty());
    assert_eq!(e.end_reason(), Some(&EndReason::UserHangup));
    // The maximum duration ends a call whatever is going on.
    let (mut e, _) = start();
    let actions = e.handle(t0() + Duration::seconds(600), Event::Timer);
    assert_eq!(
        says(&actions)[0].1,
        "I'm afraid we're out of time, so I'll let you go. Goodbye."
    );
    assert!(matches!(actions.last(), Some(Action::HangUp)));
    assert_eq!(e.end_reason(), Some(&EndReason::MaxDuration));
}

mod session {
    //! The same over a real-time leg: the session runs the brain beside the leg, so words said
    //! while it thinks supersede its decision.

    use std::time::Duration as StdDuration;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use tokio::sync::mpsc;
    use voxd::{
        carrier::{Leg, LegEvent},
        conversation::{
            analysis::Analysis,
            brain::{rules, AnalyseRequest, Brain, BrainError, DecideRequest, Decision},
            engine::{EndReason, UtteranceId},
            script::Script,
            tools::{RecordingSms, Tools},
            transcript::Turn,
        },
        session::{converse, Setup},
    };

    /// Thinks for a while, then takes "no" for the second condition and anything else for the first.
    struct SlowBrain;

    #[async_trait]
    impl Brain for SlowBrain {
        fn name(&self) -> &'static str {
            "slow"
        }
        async fn decide(&self, req: DecideRequest<'_>) -> Result<Decision, BrainError> {
            tokio::time::sleep(StdDuration::from_millis(300)).await;
            Ok(Decision::Condition(usize::from(req.utterance.contains("no"))))
        }
        async fn compose(&self, _: &Script, instruction: &str, _: &[Turn]) -> Result<String, BrainError> {
            Ok(instruction.to_owned())
        }
        async fn analyse(&self, req: AnalyseRequest<'_>) -> Result<Analysis, BrainError> {
            Ok(rules::analyse(&req, "slow"))
        }
    }

    /// Plays each line in 10 ms; the callee's lines come at set delays from the start.
    struct TimedLeg {
        rx: mpsc::UnboundedReceiver<LegEvent>,
        tx: mpsc::UnboundedSender<LegEvent>,
        said: Vec<String>,
    }

    #[async_trait]
    impl Leg for TimedLeg {
        async fn next_event(&mut self, deadline: Option<DateTime<Utc>>) -> LegEvent {
            let wait = deadline.map_or(StdDuration::from_secs(5), |d| {
                (d - Utc::now()).to_std().unwrap_or_default()
            });
            tokio::select! {
                Some(e) = self.rx.recv() => e,
                _ = tokio::time::sleep(wait) => LegEvent::Deadline,
            }
        }
        async fn say(&mut self, id: UtteranceId, text: &str, _: bool) {
            self.said.push(text.to_owned());
            let tx = self.tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(StdDuration::from_millis(10)).await;
                let _ = tx.send(LegEvent::Played(id));
            });
        }
        async fn stop_speaking(&mut self) {}
        async fn hang_up(&mut self) {}
        fn now(&self) -> DateTime<Utc> {
            Utc::now()
        }
    }

    #[tokio::test]
    async fn words_said_while_the_brain_thinks_supersede_its_decision() {
        let (tx, rx) = mpsc::unbounded_channel();
        // "yes" at 50 ms; the brain needs 300 ms; "oh no" comes at 150 ms; hang-up at 900 ms.
        for (ms, event) in [
            (50, LegEvent::Heard("yes".into())),
            (150, LegEvent::Heard("oh no, sorry".into())),
            (900, LegEvent::HungUp),
        ] {
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(StdDuration::from_millis(ms)).await;
                let _ = tx.send(event);
            });
        }
        let mut leg = TimedLeg {
            rx,
            tx,
            said: Vec::new(),
        };
        let setup = Setup {
            script: super::script(),
            variables: serde_json::json!({}),
            context: Default::default(),
            brain: std::sync::Arc::new(SlowBrain),
            tools: std::sync::Arc::new(Tools::new(false, std::sync::Arc::new(RecordingSms::default()))),
        };
        let engine = tokio::time::timeout(StdDuration::from_secs(10), converse(&mut leg, setup))
            .await
            .expect("the session ends by itself");
        assert_eq!(leg.said, ["Did you like the house?", "Sorry to hear that."]);
        assert_eq!(engine.end_reason(), Some(&EndReason::UserHangup));
        assert_eq!(engine.path(), ["ask", "sorry"]);
        let user: Vec<&str> = engine
            .transcript()
            .iter()
            .filter(|t| t.role == voxd::conversation::transcript::Role::User)
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(user, ["yes", "oh no, sorry"]);
    }
}
