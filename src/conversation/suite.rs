//! Script tests: a suite is a script and cases, each a simulated callee (a stock persona, a
//! persona object, or a list of lines) and what the conversation must do: the path of steps, the
//! flow's outcome, the end reason, the data collected. `voxd test` runs suite files and
//! `POST /api/v1/scripts/{id}/test` runs cases against a stored script; both report every case,
//! and `voxd test --junit` writes JUnit XML for CI systems.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::{
    brain::Brain,
    context::CallContext,
    persona::{simulate, Persona},
    script::{Outcome, Script},
    text::Conversation,
    tools::Tools,
    transcript::Turn,
};
use crate::clock::ManualClock;

/// Most cases in one run, and callee turns per case: runs are bounded.
pub const MAX_CASES: usize = 50;
pub const MAX_TURNS: usize = 40;

/// A suite file: the script (a path relative to the file) and its cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub script: std::path::PathBuf,
    #[serde(flatten)]
    pub run: TestRun,
}

/// Cases to run against one script, with the callee's details.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRun {
    /// `contact.*` variables for the script's lines (first_name, email, phone_number, …).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub contact: Map<String, Value>,
    pub cases: Vec<TestCase>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    /// A stock persona's name (`cooperative`, `unsure`, `busy`, `hostile`, `talkative`, `silent`,
    /// `interrupts`, `asks_questions`, `wrong_person`, `not_interested`, `hangs_up`) or a persona
    /// object (profile, temperament, rules, lines, fallback).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub persona: Option<Value>,
    /// What the callee says, in order (instead of a persona); then silence.
    #[serde(default)]
    pub lines: Vec<String>,
    /// `contact.*` for this case, over the run's (`{"email": null}` removes one).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub contact: Map<String, Value>,
    #[serde(default)]
    pub expect: Expect,
}

/// What a case must do; what is left out is not checked.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Step ids in the order they were entered.
    pub path: Option<Vec<String>>,
    /// `success` or `fail` (how the main flow ended), or `none` (it ended otherwise).
    pub outcome: Option<String>,
    /// `ai hangup`, `user hangup`, `silence timeout`, `max duration`, …
    pub end_reason: Option<String>,
    /// Collected data fields and their values (only the fields named are checked).
    #[schema(value_type = Option<Object>)]
    pub data: Option<Map<String, Value>>,
    /// Words the assistant must have said somewhere.
    pub assistant_says: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    /// Each expectation not met, saying what was expected and what happened.
    pub failures: Vec<String>,
    pub path: Vec<String>,
    pub outcome: String,
    pub end_reason: String,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    pub summary: String,
    pub transcript: Vec<Turn>,
    pub millis: u64,
}

/// Why a run cannot start.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SuiteError {
    #[error("a run has 1 to {MAX_CASES} cases, not {0}")]
    Cases(usize),
    #[error("case {0}: {1}")]
    Case(usize, String),
}

impl TestRun {
    /// Checks the run before anything is simulated: case count, personas, outcome names.
    pub fn check(&self) -> Result<(), SuiteError> {
        if self.cases.is_empty() || self.cases.len() > MAX_CASES {
            return Err(SuiteError::Cases(self.cases.len()));
        }
        for (i, c) in self.cases.iter().enumerate() {
            persona(c).map_err(|e| SuiteError::Case(i, e))?;
            if let Some(o) = &c.expect.outcome {
                if !matches!(o.as_str(), "success" | "fail" | "none") {
                    return Err(SuiteError::Case(
                        i,
                        format!("outcome `{o}` is not success, fail or none"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn persona(case: &TestCase) -> Result<Persona, String> {
    match (&case.persona, case.lines.is_empty()) {
        (Some(_), false) => Err(format!("`{}`: give a persona or lines, not both", case.name)),
        (None, false) => Ok(Persona {
            name: "lines".into(),
            lines: case.lines.clone().into(),
            ..Default::default()
        }),
        (None, true) => Ok(Persona::cooperative()),
        (Some(Value::String(name)), true) => Persona::stock(name).ok_or_else(|| {
            format!(
                "`{}`: no stock persona `{name}` (one of {})",
                case.name,
                Persona::STOCK.join(", ")
            )
        }),
        (Some(v @ Value::Object(_)), true) => {
            serde_json::from_value(v.clone()).map_err(|e| format!("`{}`: persona: {e}", case.name))
        }
        (Some(_), true) => Err(format!("`{}`: persona is a name or an object", case.name)),
    }
}

/// Runs every case of `run` against `script` with `brain`, each from a fixed moment (Thursday 26
/// November 2026, 10:00 in `context`'s callee zone) so results do not depend on the day.
pub async fn run(
    script: Arc<Script>,
    run: &TestRun,
    brain: Arc<dyn Brain>,
    tools: Arc<Tools>,
    context: CallContext,
) -> Result<Vec<CaseResult>, SuiteError> {
    run.check()?;
    let start = context
        .callee_timezone
        .with_ymd_and_hms(2026, 11, 26, 10, 0, 0)
        .earliest()
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let mut results = Vec::new();
    for case in &run.cases {
        let began = std::time::Instant::now();
        let mut callee = persona(case).map_err(|e| SuiteError::Case(results.len(), e))?;
        let clock = Arc::new(ManualClock::new(start));
        let mut contact = run.contact.clone();
        for (k, v) in &case.contact {
            contact.insert(k.clone(), v.clone());
        }
        contact.retain(|_, v| !v.is_null());
        let vars = json!({"contact": contact, "call": {"type": "outbound", "simulated": true}});
        let mut conversation = Conversation::start(
            script.clone(),
            brain.clone(),
            tools.clone(),
            clock.clone(),
            vars,
            context,
        )
        .await;
        simulate(&mut conversation, &mut callee, &clock, MAX_TURNS).await;
        let analysis = conversation.analyse().await;
        let outcome = match conversation.flow_outcome() {
            Some(Outcome::Success) => "success",
            Some(Outcome::Fail) => "fail",
            None => "none",
        };
        let end_reason = conversation
            .end_reason()
            .map_or("in progress", |r| r.as_str())
            .to_owned();
        let path = conversation.path().to_vec();
        let e = &case.expect;
        let mut failures = Vec::new();
        if let Some(want) = &e.path {
            if *want != path {
                failures.push(format!("path: expected {}, got {}", want.join(" → "), path.join(" → ")));
            }
        }
        if let Some(want) = &e.outcome {
            if want != outcome {
                failures.push(format!("outcome: expected {want}, got {outcome}"));
            }
        }
        if let Some(want) = &e.end_reason {
            if *want != end_reason {
                failures.push(format!("end_reason: expected {want}, got {end_reason}"));
            }
        }
        for (field, want) in e.data.iter().flatten() {
            let got = analysis.structured_data.get(field).cloned().unwrap_or(Value::Null);
            if !super::analysis::same_value(want, &got) {
                failures.push(format!("data.{field}: expected {want}, got {got}"));
            }
        }
        let said: Vec<&str> = conversation
            .transcript()
            .iter()
            .filter(|t| t.role == super::transcript::Role::Assistant)
            .map(|t| t.text.as_str())
            .collect();
        for words in e.assistant_says.iter().flatten() {
            if !said.iter().any(|t| t.to_lowercase().contains(&words.to_lowercase())) {
                failures.push(format!("the assistant never said \"{words}\""));
            }
        }
        results.push(CaseResult {
            name: case.name.clone(),
            passed: failures.is_empty(),
            failures,
            path,
            outcome: outcome.into(),
            end_reason,
            data: analysis.structured_data,
            summary: analysis.summary,
            transcript: conversation.transcript().to_vec(),
            millis: began.elapsed().as_millis() as u64,
        });
    }
    Ok(results)
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// JUnit XML for suites of results (suite name → its cases): the four elements CI systems read
/// (testsuites, testsuite, testcase, failure), written here rather than through a crate.
pub fn junit(suites: &[(String, Vec<CaseResult>)]) -> String {
    let total: usize = suites.iter().map(|(_, r)| r.len()).sum();
    let failed: usize = suites.iter().map(|(_, r)| r.iter().filter(|c| !c.passed).count()).sum();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"voxd\" tests=\"{total}\" failures=\"{failed}\">\n"
    );
    for (name, results) in suites {
        let failures = results.iter().filter(|c| !c.passed).count();
        let secs: f64 = results.iter().map(|c| c.millis as f64 / 1000.0).sum();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{secs:.3}\">\n",
            xml_escape(name),
            results.len()
        ));
        for c in results {
            let time = c.millis as f64 / 1000.0;
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\"",
                xml_escape(name),
                xml_escape(&c.name)
            ));
            if c.passed {
                out.push_str("/>\n");
            } else {
                out.push_str(&format!(
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                    xml_escape(c.failures.first().map_or("", String::as_str)),
                    xml_escape(&c.failures.join("\n"))
                ));
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
