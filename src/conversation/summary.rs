//! The `rules` brain's summary: what happened, in the callee's terms, without a model. It is built
//! from the conditions taken (their wording turned to the callee: "They liked it" → "Ava liked
//! it"), the data collected (money as money), how the call ended and the callee's own words.

use serde_json::{Map, Value};

use super::{
    analysis::ObjectiveResult,
    brain::{
        rules::{intents, Intent},
        AnalyseRequest,
    },
    script::{DataField, FieldType},
    transcript::Role,
};

/// "They are busy or ask to be called later" → "Ava is busy or asks to be called later".
pub fn about(name: &str, wording: &str) -> String {
    let mut words: Vec<String> = wording
        .trim()
        .trim_end_matches('.')
        .split(' ')
        .map(str::to_owned)
        .collect();
    if words.first().is_some_and(|w| w.eq_ignore_ascii_case("they")) {
        words[0] = name.to_owned();
        if let Some(verb) = words.get_mut(1) {
            *verb = third_person(verb);
        }
        // A second verb for the same subject: "… or ask", "… and want".
        for i in 2..words.len().saturating_sub(1) {
            if matches!(words[i].as_str(), "or" | "and") && is_verb(&words[i + 1]) {
                words[i + 1] = third_person(&words[i + 1]);
            }
        }
    }
    words.join(" ")
}

fn is_verb(word: &str) -> bool {
    const VERBS: [&str; 16] = [
        "ask", "want", "agree", "decline", "say", "need", "prefer", "refuse", "like", "give", "confirm", "choose",
        "wish", "have", "are", "do",
    ];
    VERBS.contains(&word)
}

fn third_person(verb: &str) -> String {
    match verb {
        "are" => "is".into(),
        "were" => "was".into(),
        "have" => "has".into(),
        "do" => "does".into(),
        "go" => "goes".into(),
        v if v.ends_with("ed") || matches!(v, "did" | "was" | "had" | "said" | "can" | "could" | "would" | "will") => {
            v.into()
        }
        v if v.ends_with('s') || v.ends_with("sh") || v.ends_with("ch") => format!("{v}es"),
        v if v.ends_with('y') && !v.ends_with("ay") && !v.ends_with("ey") => format!("{}ies", &v[..v.len() - 1]),
        v => format!("{v}s"),
    }
}

/// Money as people say it: $1.2M, $650K, $900.
fn money(v: f64) -> String {
    let short = |n: f64, unit: &str| {
        let s = format!("{n:.2}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("${s}{unit}")
    };
    match v.abs() {
        a if a >= 1e6 => short(v / 1e6, "M"),
        a if a >= 1e4 => short(v / 1e3, "K"),
        _ => short(v, ""),
    }
}

/// "budget about $1.2M", "preferred day 2026-11-30", "liked property: yes".
fn datum(field: &DataField, value: &Value) -> Option<String> {
    let name = field.name.replace('_', " ");
    let text = match (field.field_type, value) {
        (_, Value::Null) => return None,
        (FieldType::Boolean, Value::Bool(b)) => format!("{name}: {}", if *b { "yes" } else { "no" }),
        (FieldType::Number | FieldType::Integer, Value::Number(n)) if field.is_money() => {
            format!("{name} about {}", money(n.as_f64()?))
        }
        (_, Value::String(s)) if s.chars().count() > 80 => {
            format!("{name}: \"{}…\"", s.chars().take(80).collect::<String>())
        }
        (FieldType::String, Value::String(s)) => format!("{name}: \"{s}\""),
        (_, Value::String(s)) => format!("{name} {s}"),
        (_, v) => format!("{name} {v}"),
    };
    Some(text)
}

/// The summary of a finished conversation.
pub fn summarise(req: &AnalyseRequest<'_>, data: &Map<String, Value>, objectives: &[ObjectiveResult]) -> String {
    let name = req.vars["contact"]["first_name"]
        .as_str()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("The callee");
    let user_turns: Vec<&str> = req
        .transcript
        .iter()
        .filter(|t| t.role == Role::User)
        .map(|t| t.text.as_str())
        .collect();
    let mut sentences = Vec::new();
    if user_turns.is_empty() {
        sentences.push(match req.end_reason {
            "silence timeout" => format!("{name} said nothing, and the call ended after the silence."),
            "user hangup" => format!("{name} hung up before saying anything."),
            other => format!("{name} said nothing; the call ended ({other})."),
        });
    } else {
        let mut did: Vec<String> = req
            .choices
            .iter()
            .filter(|(_, w)| w != "otherwise")
            .map(|(_, w)| about(name, w))
            .collect();
        // The same subject once: "Ava liked it, agrees" reads better as "Ava liked it; agrees".
        for d in did.iter_mut().skip(1) {
            if let Some(rest) = d.strip_prefix(&format!("{name} ")) {
                *d = rest.to_owned();
            }
        }
        if !did.is_empty() {
            sentences.push(format!("{}.", did.join(", then ")));
        }
        let said = |intent: Intent| user_turns.iter().any(|t| intents(t).first() == Some(&intent));
        if said(Intent::DoNotCall) {
            sentences.push(format!("{name} asked not to be called again."));
        } else if said(Intent::WrongPerson) {
            sentences.push(format!("{name} said it was the wrong person or number."));
        } else if req.end_reason == "user hangup" {
            sentences.push(format!("{name} hung up."));
        }
        // The callee's most telling words: the longest thing they said.
        if let Some(words) = user_turns
            .iter()
            .max_by_key(|t| t.len())
            .filter(|t| t.split_whitespace().count() >= 4)
        {
            sentences.push(format!("In their words: \"{}\"", words.trim()));
        }
    }
    let facts: Vec<String> = req
        .script
        .data_collection
        .iter()
        .filter_map(|f| datum(f, data.get(&f.name).unwrap_or(&Value::Null)))
        .collect();
    if !facts.is_empty() {
        sentences.push(format!("Collected: {}.", facts.join("; ")));
    }
    if !objectives.is_empty() {
        let met: Vec<&str> = objectives
            .iter()
            .filter(|o| o.achieved)
            .map(|o| o.description.as_str())
            .collect();
        sentences.push(match met.len() {
            0 => format!("No objective met ({} set).", objectives.len()),
            n if n == objectives.len() => format!("All {n} objectives met."),
            n => format!("{n} of {} objectives met: {}.", objectives.len(), met.join("; ")),
        });
    }
    sentences.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_as_what_the_callee_did() {
        assert_eq!(about("Ava", "They liked it"), "Ava liked it");
        assert_eq!(
            about("Ava", "They are busy or ask to be called later"),
            "Ava is busy or asks to be called later"
        );
        assert_eq!(about("Ava", "They agree to book"), "Ava agrees to book");
        assert_eq!(about("Ava", "They did not like it"), "Ava did not like it");
        assert_eq!(
            about("Ava", "They want to sell, rent or get an appraisal"),
            "Ava wants to sell, rent or get an appraisal"
        );
        assert_eq!(about("Ava", "Wants a call back"), "Wants a call back");
    }

    #[test]
    fn money_reads_short() {
        assert_eq!(money(1_200_000.0), "$1.2M");
        assert_eq!(money(1_250_000.0), "$1.25M");
        assert_eq!(money(650_000.0), "$650K");
        assert_eq!(money(900.0), "$900");
    }
}
