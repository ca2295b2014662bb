//! The understanding evaluation: labelled callee utterances (`eval/understanding/*.yaml`, format in
//! `eval/README.md`) run through a brain's decision and, for `rules`, its data extraction. Used by
//! `voxd eval`, `cargo bench --bench understanding` and a test that keeps `rules` at its mark.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use chrono::{DateTime, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{
    analysis::same_value,
    brain::{rules, Brain, DecideRequest, Decision},
    script::{Script, StepType},
    transcript::{Role, Turn},
    vars,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalFile {
    script: PathBuf,
    now: NaiveDateTime,
    timezone: String,
    #[serde(default)]
    contact: Map<String, Value>,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    step: String,
    category: String,
    say: String,
    expect: String,
    #[serde(default)]
    data: Option<Map<String, Value>>,
}

/// One case as run.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub file: String,
    pub step: String,
    pub category: String,
    pub say: String,
    pub expected: String,
    pub got: String,
    /// Fields whose value was not the expected one: (field, expected, got).
    pub data_misses: Vec<(String, Value, Value)>,
    /// Whether data was scored (only `rules` extracts per utterance).
    pub data_scored: bool,
    pub millis: f64,
}

impl Outcome {
    pub fn correct(&self) -> bool {
        self.expected == self.got && self.data_misses.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub brain: String,
    pub outcomes: Vec<Outcome>,
}

/// Right and total.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Score {
    pub right: usize,
    pub total: usize,
}

impl Score {
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.right as f64 / self.total as f64
        }
    }
}

impl Report {
    pub fn overall(&self) -> Score {
        score(self.outcomes.iter())
    }

    pub fn by_category(&self) -> BTreeMap<String, Score> {
        let mut out: BTreeMap<String, Score> = BTreeMap::new();
        for o in &self.outcomes {
            let s = out.entry(o.category.clone()).or_default();
            s.total += 1;
            s.right += usize::from(o.correct());
        }
        out
    }

    /// Milliseconds per decision at the given quantile (0..=1).
    pub fn latency(&self, q: f64) -> f64 {
        let mut ms: Vec<f64> = self.outcomes.iter().map(|o| o.millis).collect();
        ms.sort_by(f64::total_cmp);
        if ms.is_empty() {
            return 0.0;
        }
        ms[((ms.len() - 1) as f64 * q).round() as usize]
    }

    /// The report as text: per category, overall, latency, then every miss.
    pub fn render(&self) -> String {
        let mut out = format!("brain: {}\n", self.brain);
        for (category, s) in self.by_category() {
            out.push_str(&format!(
                "  {category:<13} {:>3}/{:<3} {:>5.1}%\n",
                s.right,
                s.total,
                100.0 * s.accuracy()
            ));
        }
        let all = self.overall();
        out.push_str(&format!(
            "  {:<13} {:>3}/{:<3} {:>5.1}%\n  per decision: p50 {:.2} ms, p95 {:.2} ms\n",
            "overall",
            all.right,
            all.total,
            100.0 * all.accuracy(),
            self.latency(0.5),
            self.latency(0.95)
        ));
        if !self.outcomes.iter().all(|o| o.data_scored) {
            out.push_str("  (data extraction is scored for `rules` only; other brains extract after the call)\n");
        }
        let misses: Vec<&Outcome> = self.outcomes.iter().filter(|o| !o.correct()).collect();
        if !misses.is_empty() {
            out.push_str(&format!("misses ({}):\n", misses.len()));
        }
        for m in misses {
            out.push_str(&format!("  [{}] {} / {}: \"{}\"\n", m.category, m.file, m.step, m.say));
            if m.expected != m.got {
                out.push_str(&format!("      expected {}, got {}\n", m.expected, m.got));
            }
            for (field, want, got) in &m.data_misses {
                out.push_str(&format!("      {field}: expected {want}, got {got}\n"));
            }
        }
        out
    }
}

fn score<'a>(outcomes: impl Iterator<Item = &'a Outcome>) -> Score {
    outcomes.fold(Score::default(), |s, o| Score {
        right: s.right + usize::from(o.correct()),
        total: s.total + 1,
    })
}

/// The eval files a path names: the file, or the `.yaml` files in a folder (sorted).
pub fn files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut out: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        out.sort();
        Ok(out)
    } else {
        Ok(vec![path.to_owned()])
    }
}

/// What a decision is called in an eval file.
fn label(script: &Script, step: &str, decision: &Decision) -> String {
    match decision {
        Decision::Condition(i) => {
            let c = script
                .flows
                .iter()
                .flat_map(|f| &f.steps)
                .find(|s| s.id == step)
                .and_then(|s| s.conditions.get(*i));
            match c {
                Some(c) if c.otherwise => "otherwise".into(),
                Some(c) => c.when.clone().unwrap_or_else(|| format!("condition {i}")),
                None => format!("condition {i} (missing)"),
            }
        }
        Decision::Answer(_) => "answer".into(),
        Decision::EndCall(_) => "end_call".into(),
        Decision::Unclear => "unclear".into(),
    }
}

/// Runs every case of `paths` through `brain`.
pub async fn run(paths: &[PathBuf], brain: &dyn Brain) -> anyhow::Result<Report> {
    let mut outcomes = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let file: EvalFile = serde_yaml_ng::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let script_path = path.parent().unwrap_or(Path::new(".")).join(&file.script);
        let script = crate::chat::load_script(&script_path)?;
        let zone: Tz = file
            .timezone
            .parse()
            .map_err(|_| anyhow::anyhow!("{}: `{}` is not an IANA time zone", path.display(), file.timezone))?;
        let now: DateTime<Tz> = zone
            .from_local_datetime(&file.now)
            .earliest()
            .ok_or_else(|| anyhow::anyhow!("{}: `now` does not exist in {zone}", path.display()))?;
        let mut variables = json!({"contact": file.contact, "custom": script.custom});
        vars::set(&mut variables, "call.type", json!("outbound"));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (i, case) in file.cases.iter().enumerate() {
            let at = format!("{}: case {} ({:?})", path.display(), i + 1, case.say);
            let step = script
                .flows
                .iter()
                .flat_map(|f| &f.steps)
                .find(|s| s.id == case.step && s.step_type == StepType::Voice)
                .ok_or_else(|| anyhow::anyhow!("{at}: `{}` is not a voice step of the script", case.step))?;
            let line = vars::render(step.script.as_deref().unwrap_or_default(), &variables);
            let transcript = [Turn {
                role: Role::Assistant,
                text: line.trim_start_matches("Say:").trim().to_owned(),
                start_ms: 0,
                step: Some(step.id.clone()),
                interrupted: false,
            }];
            let started = Instant::now();
            let decision = brain
                .decide(DecideRequest {
                    script: &script,
                    step,
                    utterance: &case.say,
                    transcript: &transcript,
                    only_if_sure: false,
                })
                .await;
            let millis = started.elapsed().as_secs_f64() * 1000.0;
            let got = match decision {
                Ok(d) => label(&script, &step.id, &d),
                Err(e) => format!("error: {e}"),
            };
            let data_scored = brain.name() == "rules";
            let mut data_misses = Vec::new();
            for (field_name, want) in case.data.iter().flatten().filter(|_| data_scored) {
                let field = script
                    .data_collection
                    .iter()
                    .find(|f| &f.name == field_name && f.from_step.as_deref() == Some(&step.id))
                    .ok_or_else(|| anyhow::anyhow!("{at}: no data field `{field_name}` is read at this step"))?;
                let chosen =
                    Some(got.as_str()).filter(|g| step.conditions.iter().any(|c| c.when.as_deref() == Some(g)));
                let got = rules::extract_at(field, &case.say, chosen, now);
                if !same(want, &got) {
                    data_misses.push((field_name.clone(), want.clone(), got));
                }
            }
            outcomes.push(Outcome {
                file: name.clone(),
                step: case.step.clone(),
                category: case.category.clone(),
                say: case.say.clone(),
                expected: case.expect.clone(),
                got,
                data_misses,
                data_scored,
                millis,
            });
        }
    }
    Ok(Report {
        brain: brain.name().into(),
        outcomes,
    })
}

/// [`same_value`], and free text when it holds every word expected ("yeah it's Priya Nair, 0412
/// 345 678" holds "Priya Nair, 0412 345 678").
fn same(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::String(w), Value::String(g)) if w != g => {
            let words = |s: &str| -> Vec<String> {
                s.to_lowercase()
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            let got = words(g);
            // Dates and enum values must be exact; only free text is compared by words.
            w.contains(' ') && words(w).iter().all(|x| got.contains(x))
        }
        _ => same_value(want, got),
    }
}
