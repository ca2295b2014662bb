//! The `rules` brain: deterministic and offline. It reads intents from words (yes, no, later, do not
//! call, who is this, questions), matches conditions by their keywords, by the intent their wording
//! implies and by shared words, answers questions from the knowledge base and guidelines by word
//! overlap, and analyses calls from the path taken and the answers given. Everything it produces
//! says it came from `rules`.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::DateTime;
use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::{AnalyseRequest, Brain, BrainError, DecideRequest, Decision};
use crate::conversation::{
    analysis::{typed_data, Analysis, ObjectiveResult, SuccessEvaluation},
    script::{DataField, FieldType, Script},
    transcript::{Role, Turn},
    when,
};

pub struct RulesBrain;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Affirm,
    Deny,
    Later,
    /// Another day or time ("can we push it back?", "could we do 11 instead?").
    Reschedule,
    Cancel,
    DoNotCall,
    WhoIsThis,
    WrongPerson,
    Unsure,
    /// Nothing more to ask ("that's all, thanks").
    Done,
    Question,
}

/// Phrases that signal each intent, most specific first.
const PHRASES: [(Intent, &[&str]); 11] = [
    (
        Intent::DoNotCall,
        &[
            "do not call",
            "don't call",
            "dont call",
            "stop calling",
            "remove me",
            "take me off",
            "off your list",
            "unsubscribe",
            "never call",
            "don't ring",
            "stop ringing",
            "don't contact",
            "do not contact",
            "never contact",
            "leave me alone",
            "robot calls",
            "don't want anyone calling",
            "didn't contact me",
            "don't want to be contacted",
            "not to be contacted",
            "lose my number",
        ],
    ),
    (
        Intent::WrongPerson,
        &[
            "wrong number",
            "wrong person",
            "got the wrong",
            "no one by that name",
            "nobody by that name",
            "no one here by that name",
            "nobody here by that name",
            "doesn't live here",
            "does not live here",
            "don't know who that is",
            "never heard of",
            "not the person",
            "you must have the wrong",
            "not the account holder",
            "this is her husband",
            "this is his wife",
            "this is her daughter",
            "this is his son",
            "her daughter speaking",
            "his son speaking",
            "you'd want my",
            "this is his flatmate",
            "my dad's place",
            "my mum's place",
            "i'm not the",
            "that's my husband",
            "that's my wife",
        ],
    ),
    (
        Intent::WhoIsThis,
        &[
            "who is this",
            "who's this",
            "who is calling",
            "who's calling",
            "who are you",
            "what company",
            "where are you calling from",
            "is this a real person",
            "am i talking to a",
            "is this a robot",
            "are you a robot",
            "are you a person",
            "how did you get my number",
            "who am i speaking",
            "who am i talking",
        ],
    ),
    (
        Intent::Reschedule,
        &[
            "push it back",
            "push it to",
            "move it",
            "reschedule",
            "a clash",
            "another day",
            "different day",
            "different time",
            "another time instead",
            "instead",
            "would be better",
            "suit me better",
            "works better",
            "can we do",
            "could we do",
            "could we make it",
            "can we make it",
            "how about",
            "any chance of",
            "is there anything",
            "later in the day",
            "rather move",
            "can i move",
            "bring it forward",
        ],
    ),
    (
        Intent::Later,
        &[
            "call me back",
            "call back",
            "callback",
            "ring back",
            "ring me back",
            "ring you back",
            "try me",
            "try again",
            "later",
            "busy",
            "not a good time",
            "not a great time",
            "bad time",
            "another time",
            "driving",
            "in a meeting",
            "into a meeting",
            "heading into",
            "not right now",
            "can't talk",
            "cant talk",
            "flat out",
            "got to go",
            "gotta go",
            "have to go",
            "got to run",
            "gotta run",
            "at the door",
            "in the middle of",
            "at work",
            "wrap this up",
            "i'll call back",
            "i'll ring back",
            "when i'm home",
            "in the car",
            "about to go",
            "another day",
        ],
    ),
    (
        Intent::Cancel,
        &[
            "cancel",
            "not coming",
            "won't be coming",
            "won't be needing",
            "don't need it",
            "give the spot",
            "won't make it",
            "not going to come",
            "call it off",
        ],
    ),
    (
        Intent::Done,
        &[
            "that's all",
            "that's everything",
            "that's it",
            "nothing else",
            "never mind",
            "got what i needed",
            "all good thanks",
            "no more questions",
            "i'm good thanks",
            "nah i'm good",
            "thanks for your help",
        ],
    ),
    (
        Intent::Unsure,
        &[
            "not sure",
            "unsure",
            "don't know",
            "dont know",
            "dunno",
            "maybe",
            "perhaps",
            "possibly",
            "i'll think",
            "need to think",
            "have to think",
            "think about it",
            "undecided",
            "hard to say",
            "have to check",
            "need to check",
            "check my calendar",
            "get back to you",
            "less sure",
            "not so sure",
            "let me talk to",
            "let me check",
            "i'll see",
            "it was alright",
            "it's got potential",
            "got potential",
            "mixed feelings",
            "on the fence",
        ],
    ),
    (
        Intent::Deny,
        &[
            "no",
            "nope",
            "nah",
            "not really",
            "not interested",
            "no thanks",
            "don't",
            "do not",
            "didn't",
            "wasn't",
            "negative",
            "decline",
            "not for me",
            "not for us",
            "wasn't for us",
            "i'll pass",
            "pass",
            "wouldn't",
            "would not",
            "won't",
            "probably not",
            "no way",
            "not a chance",
            "not in a million years",
            "too small",
            "tiny",
            "too expensive",
            "too far",
            "hated",
            "disappointing",
            "bigger than it is",
            "smaller than",
            "not keen",
            "rather not",
            "already bought",
            "already listed",
            "not selling",
            "bid on the day",
            "so no",
        ],
    ),
    (
        Intent::Affirm,
        &[
            "yes",
            "yeah",
            "yep",
            "yup",
            "sure",
            "ok",
            "okay",
            "of course",
            "sounds good",
            "definitely",
            "absolutely",
            "correct",
            "that's right",
            "go ahead",
            "please do",
            "interested",
            "loved",
            "liked",
            "great",
            "happy to",
            "i would",
            "i'd like",
            "i'd love",
            "i want",
            "we want",
            "keen",
            "confirm",
            "i guess so",
            "i suppose so",
            "guess so",
            "suppose so",
            "why not",
            "for sure",
            "perfect",
            "go for it",
            "go on",
            "i reckon",
            "i think so",
            "should be right",
            "probably",
            "i will",
            "i'll be there",
            "see you",
            "fine",
            "that works",
            "works for me",
            "suits",
            "gorgeous",
            "lovely",
            "beautiful",
            "amazing",
            "fantastic",
            "already have",
            "too right",
            "speaking",
            "i can",
            "we can",
            "alright",
            "righto",
            "love to",
            "could work",
            "that'd work",
            "if it's quick",
        ],
    ),
    (Intent::Question, &[]),
];

/// Words in a condition's wording that tell which intents it expects.
const CONDITION_HINTS: [(Intent, &[&str]); 10] = [
    (
        Intent::DoNotCall,
        &[
            "do not call",
            "don't call",
            "not to be called",
            "opt out",
            "remove",
            "contacted at all",
            "no contact",
        ],
    ),
    (
        Intent::WrongPerson,
        &[
            "wrong person",
            "wrong number",
            "not the patient",
            "not the right person",
            "not the account holder",
        ],
    ),
    (Intent::WhoIsThis, &["who is calling", "who we are", "identity"]),
    (
        Intent::Reschedule,
        &[
            "reschedule",
            "another day",
            "different day",
            "move the appointment",
            "another time",
            "change the",
        ],
    ),
    (
        Intent::Later,
        &[
            "busy",
            "later",
            "call back",
            "callback",
            "called back",
            "not a good time",
        ],
    ),
    (Intent::Cancel, &["cancel"]),
    (Intent::Done, &["no more questions", "nothing else", "that's all"]),
    (
        Intent::Unsure,
        &["unsure", "not sure", "undecided", "hesitant", "maybe", "need to check"],
    ),
    (
        Intent::Deny,
        &[
            "not interested",
            "declines",
            "decline",
            "refuses",
            "disagrees",
            "negative",
            "dislike",
        ],
    ),
    (
        Intent::Affirm,
        &[
            "yes",
            "agrees",
            "agree",
            "happy",
            "interested",
            "confirms",
            "confirm",
            "accepts",
            "wants",
            "positive",
            "liked",
            "available",
            "can talk",
            "ok",
            "would",
            "will",
        ],
    ),
];

const STOPWORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "to", "of", "in", "on", "for", "is", "are", "was", "were", "be", "it", "that",
    "this", "they", "them", "their", "i", "you", "your", "we", "our", "me", "my", "do", "does", "did", "with", "at",
    "about", "what", "how", "when", "where", "which", "can", "could", "would", "will", "there", "have", "has", "any",
    "if", "so", "just", "like", "its", "it's", "im", "i'm", "please", "tell", "say", "says", "said", "user", "caller",
    "callee", "not", "no", "yes", "really", "hmm", "um", "well", "very", "much", "too", "also", "but", "all", "some",
    "think",
];

fn normalise(text: &str) -> String {
    let lower = text.to_lowercase().replace('’', "'");
    lower
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect()
}

fn contains_phrase(haystack: &str, phrase: &str) -> bool {
    let padded = format!(" {haystack} ");
    padded.contains(&format!(" {phrase} "))
}

/// Content words, for overlap scores.
fn words(text: &str) -> HashSet<String> {
    normalise(text)
        .split_whitespace()
        .filter(|w| w.len() > 1 && !STOPWORDS.contains(w))
        .map(|w| w.trim_end_matches('s').to_owned())
        .collect()
}

fn is_question(text: &str) -> bool {
    let t = text.trim().to_lowercase();
    const STARTS: [&str; 14] = [
        "what", "how", "when", "where", "why", "who", "which", "is ", "are ", "can ", "do ", "does ", "will ", "could ",
    ];
    let asks =
        t.ends_with('?') || STARTS.iter().any(|s| t.starts_with(s)) || t.contains(", what ") || t.contains(", how ");
    // "Hello?" checks the line; it asks nothing.
    let greeting = matches!(
        normalise(&t).trim(),
        "hello" | "hi" | "hey" | "hello hello" | "yes hello"
    );
    asks && !proposes(&t) && !greeting
}

/// "How about the 12th?", "Saturday?", "tomorrow but earlier, like 8?": an answer in the form of
/// a question, which proposes something rather than asks.
fn proposes(t: &str) -> bool {
    const LEADS: [&str; 9] = [
        "how about",
        "what about",
        "could we",
        "can we",
        "can i do",
        "can the",
        "any chance",
        "is there anything",
        "can i move",
    ];
    if LEADS.iter().any(|l| t.starts_with(l)) || t.contains("instead") {
        return true;
    }
    // A question word opening any clause asks ("Hi, what are your hours on Saturday?").
    const WH: [&str; 11] = [
        "what", "how", "when", "where", "why", "who", "which", "will", "is it", "do you", "does",
    ];
    let wh = t
        .split([',', '.', '!', '?'])
        .map(str::trim)
        .any(|clause| WH.iter().any(|w| clause.starts_with(w)));
    !wh && (when::mentions(t) || crate::conversation::amounts::parse(t).is_some())
}

/// "there's no Liam here", "Maria's not here", "mum's not home": the callee is not the person.
fn not_here(n: &str) -> bool {
    let w: Vec<&str> = n.split_whitespace().collect();
    let no_x_here = w
        .windows(3)
        .any(|x| x[0] == "no" && x[2] == "here" && !matches!(x[1], "one" | "problem"));
    let xs_not_here = w
        .windows(3)
        .any(|x| x[0].ends_with("'s") && x[1] == "not" && matches!(x[2], "here" | "home" | "in"));
    no_x_here || xs_not_here
}

/// Whether the callee asked, in any of their turns, not to be called again.
pub fn asked_not_to_be_called(transcript: &[Turn]) -> bool {
    transcript
        .iter()
        .filter(|t| t.role == Role::User)
        .any(|t| intents(&t.text).first() == Some(&Intent::DoNotCall))
}

/// The intents in an utterance, strongest first.
pub fn intents(text: &str) -> Vec<Intent> {
    let n = normalise(text);
    let mut found: Vec<Intent> = PHRASES
        .iter()
        .filter(|(_, phrases)| phrases.iter().any(|p| contains_phrase(&n, p)))
        .map(|(i, _)| *i)
        .collect();
    if not_here(&n) && !found.contains(&Intent::WrongPerson) {
        found.insert(0, Intent::WrongPerson);
    }
    // Someone else answering who asks for a call back: a call back ("Ava's out, try her later").
    if found.contains(&Intent::Later) {
        found.retain(|i| *i != Intent::WrongPerson);
    }
    // Another day is more than later; a cancel more than a no.
    if found.contains(&Intent::Reschedule) {
        found.retain(|i| !matches!(i, Intent::Deny | Intent::Affirm | Intent::Cancel));
    }
    // "not sure" contains "not": unsure wins over deny; "do not call" over deny.
    let overrides = [
        Intent::DoNotCall,
        Intent::Unsure,
        Intent::WrongPerson,
        Intent::Cancel,
        Intent::Done,
    ];
    if found.iter().any(|i| overrides.contains(i)) {
        found.retain(|i| *i != Intent::Deny && *i != Intent::Affirm);
    }
    // "Sort of busy, but go on": what follows the last "but" decides.
    if let Some((_, after)) = n.rsplit_once(" but ") {
        let then = intents(after);
        if matches!(then.first(), Some(Intent::Affirm))
            && found.iter().any(|i| matches!(i, Intent::Later | Intent::Unsure))
        {
            found.retain(|i| !matches!(i, Intent::Later | Intent::Unsure | Intent::Deny));
            found.insert(0, Intent::Affirm);
        }
    }
    // A bare "I guess" is a reluctant yes ("I guess not" is an idiom, below).
    if (contains_phrase(&n, "i guess") || contains_phrase(&n, "i suppose")) && found.is_empty() {
        found.push(Intent::Affirm);
    }
    if found.contains(&Intent::Deny) && found.contains(&Intent::Affirm) {
        // "No, I'm not interested" vs "yes, no problem": the first word decides.
        let first = n.split_whitespace().next().unwrap_or_default();
        if ["no", "nope", "nah", "not"].contains(&first) || NEGATIVE_VIEWS.iter().any(|p| contains_phrase(&n, p)) {
            found.retain(|i| *i != Intent::Affirm);
        } else {
            found.retain(|i| *i != Intent::Deny);
        }
    }
    // Idioms whose words point the other way: "yeah nah" is no; "nah yeah" and "no worries" are yes.
    if let Some((_, meant)) = IDIOMS.iter().find(|(p, _)| contains_phrase(&n, p)) {
        if !found.iter().any(|i| overrides.contains(i) || *i == Intent::Reschedule) {
            found.retain(|i| *i != Intent::Deny && *i != Intent::Affirm);
            found.push(*meant);
        }
    }
    if is_question(text) && !found.contains(&Intent::WhoIsThis) {
        found.push(Intent::Question);
    }
    found
}

/// Views that are a no whatever polite words come with them.
const NEGATIVE_VIEWS: [&str; 7] = [
    "too small",
    "tiny",
    "too expensive",
    "not for us",
    "wasn't for us",
    "so no",
    "probably not",
];

/// Yes and no said in words that mean the opposite of their first one.
const IDIOMS: [(&str, Intent); 12] = [
    ("yeah no worries", Intent::Affirm),
    ("yeah no problem", Intent::Affirm),
    ("yeah nah", Intent::Deny),
    ("yeah no", Intent::Deny),
    ("i guess not", Intent::Deny),
    ("i suppose not", Intent::Deny),
    ("nah yeah", Intent::Affirm),
    ("no worries", Intent::Affirm),
    ("no problem", Intent::Affirm),
    ("not a problem", Intent::Affirm),
    ("no dramas", Intent::Affirm),
    ("no doubt", Intent::Affirm),
];

/// The intents a condition's wording expects: the specific ones it names; else a no when it is
/// negated; else a yes ("They would recommend us", "They want to sell").
fn condition_intents(wording: &str) -> Vec<Intent> {
    let n = normalise(wording);
    let named: Vec<Intent> = CONDITION_HINTS
        .iter()
        .filter(|(i, _)| !matches!(i, Intent::Deny | Intent::Affirm))
        .filter(|(_, hints)| hints.iter().any(|h| contains_phrase(&n, h)))
        .map(|(i, _)| *i)
        .collect();
    let hinted = |intent: Intent| {
        CONDITION_HINTS
            .iter()
            .any(|(i, hints)| *i == intent && hints.iter().any(|h| contains_phrase(&n, h)))
    };
    // Negations count when the wording names nothing more specific ("They are not the patient"
    // is about the person, "They would not recommend us" is a no).
    const NEGATIONS: [&str; 8] = ["no", "not", "never", "didn't", "did not", "don't", "do not", "wouldn't"];
    // "would rather not say" is a preference, not a no.
    let negated = NEGATIONS.iter().any(|h| contains_phrase(&n, h)) && !contains_phrase(&n, "rather not");
    // A yes is implied only by short wordings ("They would recommend us"); "They want to sell,
    // rent or get an appraisal" is about what they say, not whether they agree.
    let short = words(&n)
        .iter()
        .filter(|w| !matches!(w.as_str(), "want" | "would" | "will" | "agree" | "happy" | "ok"))
        .count()
        <= 1;
    let mut out = named;
    if hinted(Intent::Deny) || (negated && out.is_empty()) {
        out.push(Intent::Deny);
    } else if out.is_empty() && (short || hinted(Intent::Affirm)) {
        out.push(Intent::Affirm);
    }
    out
}

/// The knowledge-base entry or guideline sharing most words with the question.
fn answer_from_knowledge(script: &Script, question: &str) -> Option<(usize, String)> {
    let q = words(question);
    let mut best: Option<(usize, String)> = None;
    let mut consider = |score: usize, answer: &str| {
        if score > 0 && best.as_ref().is_none_or(|(b, _)| score > *b) {
            best = Some((score, answer.to_owned()));
        }
    };
    for g in &script.guidelines {
        consider(
            2 * words(&g.condition).intersection(&q).count(),
            g.response.trim_start_matches("Say:").trim(),
        );
    }
    for (topic, text) in &script.knowledge_base {
        let score = 2 * words(topic).intersection(&q).count() + words(text).intersection(&q).count();
        consider(score, text);
    }
    best
}

#[async_trait]
impl Brain for RulesBrain {
    fn name(&self) -> &'static str {
        "rules"
    }

    async fn decide(&self, req: DecideRequest<'_>) -> Result<Decision, BrainError> {
        Ok(decide(&req))
    }

    async fn compose(&self, _: &Script, instruction: &str, _: &[Turn]) -> Result<String, BrainError> {
        Ok(word_instruction(instruction))
    }

    async fn analyse(&self, req: AnalyseRequest<'_>) -> Result<Analysis, BrainError> {
        Ok(analyse(&req, "rules"))
    }
}

/// The rules decision; `Unclear` when unsure (which `hybrid` hands on).
pub fn decide(req: &DecideRequest<'_>) -> Decision {
    let said = intents(req.utterance);
    let primary = said.first().copied();
    // What an intent also counts as, when the step has no condition for it.
    let also = |i: Intent| match i {
        Intent::Reschedule => Some(Intent::Later),
        Intent::Cancel => Some(Intent::Deny),
        Intent::Done => Some(Intent::Deny),
        _ => None,
    };
    let n = normalise(req.utterance);
    let utterance_words = words(req.utterance);
    let expects: Vec<Vec<Intent>> = req
        .step
        .conditions
        .iter()
        .map(|c| condition_intents(c.when.as_deref().unwrap_or_default()))
        .collect();
    let handles = |i: Intent| {
        req.step
            .conditions
            .iter()
            .zip(&expects)
            .any(|(c, e)| !c.otherwise && e.contains(&i))
    };
    let mut best: Option<(usize, usize)> = None; // (score, index)
    for (i, c) in req.step.conditions.iter().enumerate() {
        if c.otherwise {
            continue;
        }
        let mut score = 0;
        if c.keywords.iter().any(|k| contains_phrase(&n, normalise(k).trim())) {
            score += 10;
        }
        let wording = c.when.as_deref().unwrap_or_default();
        let expected = &expects[i];
        if primary.is_some_and(|p| expected.contains(&p)) {
            score += 6;
        } else if said.iter().any(|s| {
            (*s != Intent::Question && expected.contains(s))
                || also(*s).is_some_and(|a| expected.contains(&a) && !handles(*s))
        }) {
            score += 5;
        }
        if !req.only_if_sure {
            score += words(wording).intersection(&utterance_words).count();
        }
        if score > 0 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, i));
        }
    }
    let asked = said.contains(&Intent::Question);
    let knowledge = asked
        .then(|| answer_from_knowledge(req.script, req.utterance))
        .flatten();
    // Wanting the call over, or the wrong person, ends it unless the step has a way for it.
    if primary == Some(Intent::DoNotCall) && !handles(Intent::DoNotCall) {
        return Decision::EndCall("Understood, we won't call you again. Sorry to have bothered you. Goodbye.".into());
    }
    if primary == Some(Intent::WrongPerson) && !handles(Intent::WrongPerson) {
        return Decision::EndCall("Sorry for the trouble, I'll update our records. Goodbye.".into());
    }
    if let Some((score, i)) = best {
        // A real question the knowledge base answers well beats a weak match.
        let well_answered = knowledge.as_ref().is_some_and(|(k, _)| *k >= 3) && score < 10;
        if (score >= 5 || !asked) && !well_answered {
            return Decision::Condition(i);
        }
    }
    // A call back asked for where the step has no way for it ends the call politely, unless the
    // words also answer (a day or a time is an answer to a step that asks when).
    if primary == Some(Intent::Later) && !when::mentions(req.utterance) {
        return Decision::EndCall("No problem, we'll call you back another time. Bye for now.".into());
    }
    if said.contains(&Intent::WhoIsThis) {
        let who = answer_from_knowledge(req.script, "who are you company calling")
            .map(|(_, a)| a)
            .unwrap_or_else(|| format!("This is an assistant calling about {}.", req.script.name));
        return Decision::Answer(who);
    }
    if asked {
        if let Some((_, answer)) = knowledge {
            return Decision::Answer(answer);
        }
        if req.only_if_sure {
            return Decision::Unclear;
        }
        return Decision::Answer(
            "That's a good question. I don't have that information, but I'll make a note so someone can follow up."
                .into(),
        );
    }
    if req.only_if_sure {
        return Decision::Unclear;
    }
    match req.step.conditions.iter().position(|c| c.otherwise) {
        Some(i) => Decision::Condition(i),
        None => Decision::Unclear,
    }
}

/// Turns an instruction into words without a language model: "Ask whether they liked it" →
/// "Could you tell me whether you liked it?", "Explain that X" → "X."
pub fn word_instruction(instruction: &str) -> String {
    let t = instruction.trim();
    let lower = t.to_lowercase();
    const FORMS: [(&str, &str, &str); 9] = [
        ("ask whether ", "Could you tell me whether ", "?"),
        ("ask if ", "Could you tell me if ", "?"),
        ("ask for ", "Could you give me ", "?"),
        ("ask ", "Could you tell me ", "?"),
        ("explain that ", "", "."),
        ("explain ", "", "."),
        ("tell them that ", "", "."),
        ("tell them ", "", "."),
        ("mention that ", "", "."),
    ];
    for (prefix, lead, end) in FORMS {
        if lower.starts_with(prefix) {
            let rest = second_person(t[prefix.len()..].trim_end_matches(['.', '?']));
            let mut line = format!("{lead}{rest}{end}");
            if let Some(first) = line.get(..1) {
                line.replace_range(..1, &first.to_uppercase());
            }
            return line;
        }
    }
    t.to_owned()
}

/// "they liked their visit" → "you liked your visit".
fn second_person(text: &str) -> String {
    text.split(' ')
        .map(|w| match w {
            "they" => "you",
            "their" => "your",
            "them" => "you",
            "they're" => "you're",
            "themselves" => "yourself",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What is left of an answer after the callee corrects themselves ("eight... no, make it seven"):
/// the words after the last correction, when there are any.
fn corrected(answer: &str) -> &str {
    const MARKERS: [&str; 7] = [
        "actually no,",
        "actually no",
        "no, make it",
        "make it",
        "no wait",
        "i mean",
        "or rather",
    ];
    let lower = answer.to_lowercase();
    MARKERS
        .iter()
        .filter_map(|m| lower.rfind(m).map(|at| at + m.len()))
        .max()
        .map(|at| answer[at..].trim_start_matches([',', ' ', '.']))
        .filter(|rest| !rest.trim().is_empty())
        .unwrap_or(answer)
}

/// Reads a typed value from an answer, relative to `now` (the call's moment in the callee's zone).
pub fn extract(field: &DataField, answer: &str, now: DateTime<Tz>) -> Value {
    let answer = corrected(answer);
    match field.field_type {
        FieldType::String => Value::String(answer.trim().to_owned()),
        FieldType::Boolean => match intents(answer).first() {
            Some(Intent::Affirm) => Value::Bool(true),
            Some(Intent::Deny) => Value::Bool(false),
            _ => Value::Null,
        },
        FieldType::Number | FieldType::Integer => {
            crate::conversation::amounts::parse(answer).map_or(Value::Null, |a| {
                // "Our max is 1.3": money said without a magnitude and under 20 means millions.
                let v = if field.is_money() && !a.scaled && a.value < 20.0 && a.value.fract() != 0.0 {
                    a.value * 1e6
                } else {
                    a.value
                };
                if field.field_type == FieldType::Integer || v.fract() == 0.0 {
                    Value::from(v.round() as i64)
                } else {
                    Value::from(v)
                }
            })
        }
        FieldType::Date => when::read(answer, now)
            .date
            .map_or(Value::Null, |d| Value::String(d.format("%Y-%m-%d").to_string())),
        FieldType::Datetime => when::moment(answer, now).map_or(Value::Null, |m| Value::String(m.to_rfc3339())),
        FieldType::Enum => choose(&field.values, answer).map_or(Value::Null, |v| Value::String(v.to_owned())),
    }
}

/// Other ways of saying a word that enum values often use.
const SAYINGS: [(&str, &[&str]); 10] = [
    ("email", &["email", "e mail", "inbox"]),
    ("text", &["text", "texts", "sms", "txt", "message me"]),
    ("phone", &["phone", "ring", "call me", "give me a call", "mobile"]),
    ("call", &["phone", "ring", "call me", "give me a call", "mobile"]),
    ("post", &["post", "mail", "letter", "snail mail", "postal"]),
    (
        "cost",
        &[
            "expensive",
            "price",
            "afford",
            "money",
            "tight",
            "cost",
            "pricey",
            "too dear",
        ],
    ),
    ("moved", &["moved", "relocated", "relocating", "moving", "interstate"]),
    (
        "better",
        &[
            "better",
            "stopped hurting",
            "sorted itself",
            "doesn't hurt",
            "fine now",
            "settled down",
        ],
    ),
    ("price", &["expensive", "price", "afford", "money", "cost", "pricey"]),
    ("time", &["time", "busy", "schedule", "can't fit"]),
];

/// The value an answer names: the one said outright, else the one its words point to most
/// (none on a tie); `other`, when it is a value, for an answer that names none of the rest.
fn choose<'a>(values: &'a [String], answer: &str) -> Option<&'a str> {
    let n = normalise(answer).replace("'s ", " ").replace("'s", "");
    let n = n.as_str();
    let said: Vec<&String> = values
        .iter()
        .filter(|v| contains_phrase(n, normalise(v).trim()))
        .collect();
    if let [one] = said.as_slice() {
        return Some(one.as_str());
    }
    let heard = words(n);
    let mut scored: Vec<(usize, &String)> = values
        .iter()
        .map(|v| {
            let own = words(&v.replace(['_', '-'], " "));
            let sayings = own
                .iter()
                .filter_map(|w| SAYINGS.iter().find(|(k, _)| k == w))
                .filter(|(_, phrases)| phrases.iter().any(|p| contains_phrase(n, p)))
                .count();
            (own.intersection(&heard).count() + sayings, v)
        })
        .filter(|(score, _)| *score > 0)
        .collect();
    scored.sort_by_key(|s| std::cmp::Reverse(s.0));
    match scored.as_slice() {
        [(best, v), rest @ ..] if rest.first().is_none_or(|(next, _)| next < best) => return Some(v.as_str()),
        [_, ..] => return None,
        [] => {}
    }
    let says_something = n.split_whitespace().count() >= 3
        && !intents(answer).iter().any(|i| {
            matches!(
                i,
                Intent::Question
                    | Intent::Unsure
                    | Intent::Later
                    | Intent::DoNotCall
                    | Intent::Reschedule
                    | Intent::WhoIsThis
            )
        })
        && !contains_phrase(n, "rather not");
    values
        .iter()
        .find(|v| v.eq_ignore_ascii_case("other"))
        .filter(|_| says_something)
        .map(String::as_str)
}

/// [`extract`], where a yes/no field reads the condition taken at its step first ("They liked
/// it" is a yes however it was said).
pub fn extract_at(field: &DataField, answer: &str, chosen: Option<&str>, now: DateTime<Tz>) -> Value {
    if field.field_type == FieldType::Boolean {
        let expected = chosen
            .filter(|w| *w != "otherwise")
            .map(condition_intents)
            .unwrap_or_default();
        match expected.first() {
            Some(Intent::Affirm) => return Value::Bool(true),
            Some(Intent::Deny | Intent::Cancel) => return Value::Bool(false),
            Some(_) => return Value::Null,
            None => {}
        }
    }
    if field.field_type == FieldType::String {
        // Questions, hedges and refusals are not the thing asked for.
        let off = intents(answer).iter().any(|i| {
            matches!(
                i,
                Intent::Question | Intent::WhoIsThis | Intent::Later | Intent::DoNotCall | Intent::Unsure
            )
        }) || contains_phrase(&normalise(answer), "rather not");
        if off {
            return Value::Null;
        }
    }
    extract(field, answer, now)
}

/// The `rules` analysis, labelled with `brain` (hybrid reuses it).
pub fn analyse(req: &AnalyseRequest<'_>, brain: &str) -> Analysis {
    let user_text: Vec<&str> = req
        .transcript
        .iter()
        .filter(|t| t.role == Role::User)
        .map(|t| t.text.as_str())
        .collect();
    let objectives: Vec<ObjectiveResult> = req
        .script
        .objectives
        .iter()
        .map(|o| {
            let by_step = o
                .step
                .as_ref()
                .filter(|s| req.path.contains(s))
                .map(|s| format!("the conversation reached step `{s}`"));
            let by_words = o.keywords.iter().find_map(|k| {
                let k = normalise(k);
                user_text
                    .iter()
                    .find(|t| contains_phrase(&normalise(t), k.trim()))
                    .map(|t| format!("the callee said \"{t}\""))
            });
            let evidence = by_step.or(by_words);
            ObjectiveResult {
                id: o.id.clone(),
                description: o.description.clone(),
                achieved: evidence.is_some(),
                evidence,
            }
        })
        .collect();
    let mut raw = Map::new();
    for field in &req.script.data_collection {
        let value = field
            .from_step
            .as_ref()
            .and_then(|s| req.answers.get(s))
            .map_or(Value::Null, |a| {
                let chosen = req
                    .choices
                    .iter()
                    .rev()
                    .find(|(s, _)| Some(s) == field.from_step.as_ref());
                extract_at(field, a, chosen.map(|(_, w)| w.as_str()), req.now)
            });
        raw.insert(field.name.clone(), value);
    }
    let achieved = objectives.iter().filter(|o| o.achieved).count();
    let evaluation = SuccessEvaluation::from_objectives(achieved, objectives.len(), req.flow_succeeded);
    let engaged = !user_text.is_empty();
    let rating = match (evaluation, engaged) {
        (SuccessEvaluation::Successful, _) => 5,
        (SuccessEvaluation::PartiallySuccessful, _) => 3,
        (SuccessEvaluation::Unsuccessful, true) => 2,
        (SuccessEvaluation::Unsuccessful, false) => 1,
    };
    let structured_data = typed_data(req.script, &raw);
    let summary = crate::conversation::summary::summarise(req, &structured_data, &objectives);
    Analysis {
        brain: brain.into(),
        summary,
        objectives,
        structured_data,
        success_evaluation: evaluation,
        rating,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_intents() {
        assert_eq!(intents("Yes, sure")[0], Intent::Affirm);
        assert_eq!(intents("No thanks")[0], Intent::Deny);
        assert_eq!(intents("I'm not sure really")[0], Intent::Unsure);
        assert_eq!(intents("I'm busy, call me back later")[0], Intent::Later);
        assert_eq!(intents("Please do not call me again")[0], Intent::DoNotCall);
        assert_eq!(intents("Who is this?")[0], Intent::WhoIsThis);
        assert!(intents("What is the price?").contains(&Intent::Question));
        assert_eq!(intents("No, I'm not interested, yes I'm sure")[0], Intent::Deny);
    }

    #[test]
    fn hedges_and_idioms() {
        let primary = |t: &str| intents(t).first().copied();
        assert_eq!(primary("Yeah nah, not for me"), Some(Intent::Deny));
        assert_eq!(primary("nah yeah, go for it"), Some(Intent::Affirm));
        assert_eq!(primary("No worries"), Some(Intent::Affirm));
        assert_eq!(primary("no problem at all"), Some(Intent::Affirm));
        assert_eq!(primary("I guess so"), Some(Intent::Affirm));
        assert_eq!(primary("I guess not"), Some(Intent::Deny));
        assert_eq!(primary("not really"), Some(Intent::Deny));
        assert_eq!(primary("I'm in a meeting right now"), Some(Intent::Later));
        assert_eq!(
            primary("Can we push it back? I've got a clash"),
            Some(Intent::Reschedule)
        );
        assert_eq!(primary("yeah no worries, I'll be there"), Some(Intent::Affirm));
        assert_eq!(primary("probably not"), Some(Intent::Deny));
        assert_eq!(primary("there's no Liam here"), Some(Intent::WrongPerson));
        assert_eq!(primary("Ava's not home, can you try her later?"), Some(Intent::Later));
        assert_eq!(primary("Yeah nah, please don't call me again"), Some(Intent::DoNotCall));
        assert_eq!(primary("I'm not sure, I guess"), Some(Intent::Unsure));
    }

    fn field(field_type: FieldType, values: &[&str]) -> DataField {
        DataField {
            name: "x".into(),
            field_type,
            description: None,
            from_step: None,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn extracts_typed_values() {
        use chrono::TimeZone;
        // A Thursday, 10am in Sydney.
        let now = chrono_tz::Australia::Sydney
            .with_ymd_and_hms(2026, 11, 26, 10, 0, 0)
            .unwrap();
        let x = |t: FieldType, text: &str| extract(&field(t, &[]), text, now);
        assert_eq!(x(FieldType::Integer, "We need three bedrooms"), Value::from(3));
        assert_eq!(x(FieldType::Number, "about $650,000"), Value::from(650000));
        assert_eq!(x(FieldType::Number, "About 1.2 million"), Value::from(1_200_000));
        assert_eq!(x(FieldType::Number, "six hundred grand"), Value::from(600_000));
        assert_eq!(x(FieldType::Boolean, "yeah definitely"), Value::Bool(true));
        assert_eq!(x(FieldType::Date, "Monday works"), Value::from("2026-11-30"));
        assert_eq!(x(FieldType::Date, "tomorrow please"), Value::from("2026-11-27"));
        assert_eq!(x(FieldType::Date, "no idea"), Value::Null);
        assert_eq!(
            x(FieldType::Datetime, "tomorrow arvo at half past three"),
            Value::from("2026-11-27T15:30:00+11:00")
        );
        let channel = field(FieldType::Enum, &["email", "text message", "phone call"]);
        assert_eq!(extract(&channel, "Just email me", now), Value::from("email"));
        assert_eq!(extract(&channel, "a text is best", now), Value::from("text message"));
        assert_eq!(extract(&channel, "whatever", now), Value::Null);
    }

    #[test]
    fn words_instructions() {
        assert_eq!(
            word_instruction("Ask whether they liked the property"),
            "Could you tell me whether you liked the property?"
        );
        assert_eq!(
            word_instruction("Explain that the auction is on Saturday."),
            "The auction is on Saturday."
        );
    }
}
