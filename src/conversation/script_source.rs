//! A script as YAML text, as people edit it: parsed and validated, each problem with the line it
//! is on, so an editor can point at it. Syntax and type errors carry serde_yaml's location;
//! validation problems name a path (`flows.main.steps.ask.conditions[0]`), found in the text by
//! following its keys and ids down the indentation.

use serde::Serialize;
use utoipa::ToSchema;

use super::script::Script;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SourceProblem {
    /// Where in the script: a path such as `flows.main.steps.ask`, or `yaml` for a syntax error.
    pub at: String,
    pub problem: String,
    /// 1-based line of the text, when it could be found.
    pub line: Option<usize>,
}

/// The script, when it parses, and every problem (none: it can be saved).
pub fn check(text: &str) -> (Option<Script>, Vec<SourceProblem>) {
    let script: Script = match serde_yaml_ng::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            let line = e.location().map(|l| l.line());
            let problem = e.to_string();
            // serde_yaml repeats the location in the message; the line is given apart.
            let problem = match problem.rsplit_once(" at line ") {
                Some((head, _)) => head.to_owned(),
                None => problem,
            };
            return (
                None,
                vec![SourceProblem {
                    at: "yaml".into(),
                    problem,
                    line,
                }],
            );
        }
    };
    let problems = script
        .validate()
        .into_iter()
        .map(|p| SourceProblem {
            line: locate(text, &p.at),
            at: p.at,
            problem: p.problem,
        })
        .collect();
    (Some(script), problems)
}

enum Segment<'a> {
    Key(&'a str),
    /// An element of a list of objects with ids (flows, steps).
    Id(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut after_list_key = false;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if after_list_key && index.is_none() {
            out.push(Segment::Id(name));
            after_list_key = false;
            continue;
        }
        out.push(Segment::Key(name));
        after_list_key = matches!(name, "flows" | "steps") && index.is_none();
        if let Some(i) = index {
            out.push(Segment::Index(i));
        }
    }
    out
}

struct Line<'a> {
    /// Leading spaces.
    raw: usize,
    /// Column of the content after any `- ` list markers.
    content_at: usize,
    content: &'a str,
    item: bool,
}

fn line(text: &str) -> Line<'_> {
    let trimmed = text.trim_start();
    let raw = text.len() - trimmed.len();
    let mut content = trimmed;
    while let Some(r) = content.strip_prefix("- ") {
        content = r.trim_start();
    }
    Line {
        raw,
        content_at: text.len() - content.len(),
        content,
        item: trimmed.starts_with("- ") || trimmed == "-",
    }
}

fn key_of(content: &str) -> Option<&str> {
    let (key, _) = content.split_once(':')?;
    Some(key.trim().trim_matches(|c| c == '"' || c == '\''))
}

fn value_of(content: &str) -> Option<&str> {
    let (_, value) = content.split_once(':')?;
    Some(value.trim().trim_matches(|c| c == '"' || c == '\''))
}

/// The 1-based line a validation path points at, followed as deep as the text allows.
pub fn locate(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<Line> = text.lines().map(line).collect();
    let blank = |l: &Line| l.content.is_empty() || l.content.starts_with('#');
    // Where a key's value ends: at a line left of the key, or at its column unless a list item
    // (YAML lets a list sit at its key's own column).
    let key_end = |i: usize| {
        let c = lines[i].content_at;
        (i + 1..lines.len())
            .find(|&j| !blank(&lines[j]) && (lines[j].raw < c || (lines[j].raw == c && !lines[j].item)))
            .unwrap_or(lines.len())
    };
    // Where a list item ends: at the next line as far left as its dash.
    let item_end = |i: usize| {
        let dash = if lines[i].item {
            lines[i].raw
        } else {
            lines[i].content_at.saturating_sub(2)
        };
        (i + 1..lines.len())
            .find(|&j| !blank(&lines[j]) && lines[j].raw <= dash)
            .unwrap_or(lines.len())
    };
    // The list items directly in a range: those at the column of its first one.
    let items = |range: &mut dyn Iterator<Item = usize>| {
        let all: Vec<usize> = range.filter(|&j| lines[j].item).collect();
        let column = all.first().map(|&j| lines[j].raw);
        all.into_iter()
            .filter(|&j| Some(lines[j].raw) == column)
            .collect::<Vec<_>>()
    };
    let (mut from, mut to) = (0, lines.len());
    let mut found = None;
    for segment in segments(path) {
        let mut range = (from..to).filter(|&j| !blank(&lines[j]));
        let hit = match segment {
            Segment::Key(k) => range.find(|&j| key_of(lines[j].content) == Some(k)),
            // The item whose own `id:` (at the column of its first key, not a nested one) says it.
            Segment::Id(id) => items(&mut range).into_iter().find(|&j| {
                (j..item_end(j)).any(|k| {
                    lines[k].content_at == lines[j].content_at
                        && key_of(lines[k].content) == Some("id")
                        && value_of(lines[k].content) == Some(id)
                })
            }),
            Segment::Index(n) => items(&mut range).into_iter().nth(n),
        };
        let Some(i) = hit else { break };
        found = Some(i + 1);
        (from, to) = match segment {
            Segment::Key(_) => (i + 1, key_end(i)),
            // An item's own line holds its first key.
            Segment::Id(_) | Segment::Index(_) => (i, item_end(i)),
        };
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
name: Demo
type: outbound
main_flow_id: main
flows:
  - id: other
    steps:
      - id: ask
        type: voice
        script: Hi
        conditions:
          - otherwise: true
            end_flow: success
  - id: main
    steps:
      - id: greet
        type: voice
        script: Hello
        conditions:
          - when: They agree
            next: ask
          - otherwise: true
            next: nowhere
";

    #[test]
    fn paths_are_found_by_keys_ids_and_indexes() {
        assert_eq!(locate(YAML, "main_flow_id"), Some(3));
        assert_eq!(locate(YAML, "flows.main"), Some(13));
        assert_eq!(locate(YAML, "flows.main.steps.greet"), Some(15));
        assert_eq!(locate(YAML, "flows.main.steps.greet.conditions[0]"), Some(19));
        assert_eq!(locate(YAML, "flows.main.steps.greet.conditions[1]"), Some(21));
        assert_eq!(locate(YAML, "flows.other.steps.ask"), Some(7));
        // As deep as it goes: no `say` in the text, so the condition's line.
        assert_eq!(locate(YAML, "flows.main.steps.greet.conditions[1].say"), Some(21));
        assert_eq!(locate(YAML, "flows.missing"), Some(4));
    }

    #[test]
    fn a_broken_script_reports_its_problems_at_their_lines() {
        let (script, problems) = check(YAML);
        assert!(script.is_some(), "{problems:?}");
        let p = problems
            .iter()
            .find(|p| p.problem.contains("nowhere"))
            .expect("the bad next");
        assert_eq!(p.line, Some(21), "{problems:?}");

        let (script, problems) = check("name: Demo\nflows: [\n");
        assert!(script.is_none());
        assert_eq!(problems[0].at, "yaml");
        assert!(problems[0].line.is_some(), "{problems:?}");

        let (_, problems) = check("name: Demo\ntype: outbound\nmain_flow_id: main\nflows: 3\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(4), "{problems:?}");
    }
}
