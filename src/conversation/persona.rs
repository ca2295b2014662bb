//! Simulated callees. A persona has a profile (what it knows: its name, whether it is the person
//! asked for, whether it can talk now, its opinion, budget, availability, other facts) and a
//! temperament (cooperative, unsure, busy, hostile, talkative, silent, interrupts, asks questions),
//! and answers the question the assistant actually asked from its profile, in its temperament. It
//! can also follow `rules` (keywords in what the assistant just said) or a list of `lines`, which
//! come first. `simulate` runs a whole conversation against one, moving an injected clock, with a
//! bounded number of turns. Deterministic: the same persona answers the same way every time.

use std::{collections::BTreeMap, collections::VecDeque, sync::Arc};

use chrono::Duration;
use serde::Deserialize;

use super::{text::Conversation, transcript::Role};
use crate::clock::ManualClock;

/// A reply chosen when the assistant's last line contains any of `when` (case-insensitive).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub when: Vec<String>,
    pub say: String,
}

/// How a persona behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Temperament {
    /// Answers what is asked, agrees when it can.
    #[default]
    Cooperative,
    /// Hedges: "I'm not sure really".
    Unsure,
    /// Cannot talk now: asks to be called back.
    Busy,
    /// Wants the call over and not to be called again.
    Hostile,
    /// Answers, and then some.
    Talkative,
    /// Says nothing.
    Silent,
    /// Talks over the assistant.
    Interrupts,
    /// Asks its `question` (or who is calling) before answering.
    AsksQuestions,
}

/// What a persona knows. Unset facts get plain answers in the persona's temperament.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Whether it is the person the call is for (false: "wrong number").
    pub right_person: bool,
    /// Whether it wants what is offered (yes/no questions).
    pub interested: bool,
    /// Its view when asked what it thought ("We loved it, the kitchen especially").
    pub opinion: Option<String>,
    /// Its answer about money ("About 1.2 million").
    pub budget: Option<String>,
    /// When it is free ("Next Monday morning"); offered another time, it asks for this one.
    pub availability: Option<String>,
    /// Its name and number when asked for details.
    pub details: Option<String>,
    /// Its email when asked.
    pub email: Option<String>,
    /// The question an `asks_questions` persona asks first.
    pub question: Option<String>,
    /// Anything else: a topic's words → the answer ("score": "Eight out of ten").
    pub facts: BTreeMap<String, String>,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            right_person: true,
            interested: true,
            opinion: None,
            budget: None,
            availability: None,
            details: None,
            email: None,
            question: None,
            facts: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Persona {
    pub name: String,
    pub temperament: Temperament,
    pub profile: Profile,
    /// Checked first, in order.
    pub rules: Vec<Rule>,
    /// Said in order when no rule matches (a persona can be only lines).
    pub lines: VecDeque<String>,
    /// Said when no rule matches and the lines are used up, instead of answering from the
    /// profile; none = the profile answers.
    pub fallback: Option<String>,
    /// Hangs up instead of answering the n-th assistant turn (1-based).
    pub hang_up_at: Option<usize>,
    /// Never says anything (as the `silent` temperament).
    pub silent: bool,
    /// Talks over the assistant instead of waiting for it to finish (as `interrupts`).
    pub interrupts: bool,
    /// Assistant turns heard so far.
    #[serde(skip)]
    pub heard: usize,
    /// Whether the `asks_questions` question was asked.
    #[serde(skip)]
    pub asked: bool,
}

/// What the persona does after the assistant speaks.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Say(String),
    Silence,
    HangUp,
}

/// What the assistant's line asks about, in the order a line is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    Identity,
    Goodbye,
    Anything,
    Details,
    Email,
    Opinion,
    Money,
    Offered,
    When,
    Help,
    CanTalk,
    YesNo,
    Statement,
}

const TOPICS: [(Topic, &[&str]); 11] = [
    (
        Topic::Identity,
        &["am i speaking with", "am i speaking to", "is this ", "is that "],
    ),
    (
        Topic::Goodbye,
        &["goodbye", "bye for now", "have a great day", "talk soon"],
    ),
    (Topic::Anything, &["anything else"]),
    (
        Topic::Details,
        &["your name", "best number", "your details", "contact details"],
    ),
    (Topic::Email, &["email address", "your email"]),
    (
        Topic::Opinion,
        &[
            "think of",
            "what did you think",
            "how did you find",
            "feedback",
            "how was",
        ],
    ),
    (
        Topic::Money,
        &["budget", "price range", "how much", "spend", "afford", "working with"],
    ),
    (
        Topic::Offered,
        &["does that suit", "does that work", "would that suit", "is that ok"],
    ),
    (
        Topic::When,
        &[
            "which day",
            "what day",
            "what time",
            "when would",
            "when suits",
            "suit you better",
            "when are you",
        ],
    ),
    (
        Topic::Help,
        &["how can i help", "how may i help", "what can i do for you"],
    ),
    (
        Topic::CanTalk,
        &[
            "got a minute",
            "good time",
            "quick chat",
            "a moment",
            "free to talk",
            "is now",
        ],
    ),
];

impl Persona {
    pub fn respond(&mut self, assistant_said: &str) -> Action {
        self.heard += 1;
        if self.hang_up_at.is_some_and(|n| self.heard >= n) {
            return Action::HangUp;
        }
        if self.silent || self.temperament == Temperament::Silent {
            return Action::Silence;
        }
        let said = assistant_said.to_lowercase();
        if let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.when.iter().any(|w| said.contains(&w.to_lowercase())))
        {
            return Action::Say(rule.say.clone());
        }
        if let Some(line) = self.lines.pop_front() {
            return Action::Say(line);
        }
        if let Some(f) = &self.fallback {
            return Action::Say(f.clone());
        }
        self.answer(&said)
    }

    /// Whether the persona talks over the assistant.
    pub fn talks_over(&self) -> bool {
        self.interrupts || self.temperament == Temperament::Interrupts
    }

    /// The answer from the profile to what the assistant asked, in the persona's temperament.
    fn answer(&mut self, said: &str) -> Action {
        use Temperament::*;
        let topic = topic(said);
        let p = &self.profile;
        if topic == Topic::Goodbye {
            return Action::HangUp;
        }
        if self.temperament == AsksQuestions && !self.asked && topic != Topic::Identity {
            self.asked = true;
            let q = p.question.clone().unwrap_or_else(|| "Sorry, who is this?".into());
            return Action::Say(q);
        }
        if !p.right_person {
            return Action::Say(match self.heard {
                1 => "Sorry, I think you've got the wrong number.".into(),
                _ => "No, you've got the wrong person, sorry.".into(),
            });
        }
        let reply: String = match (self.temperament, topic) {
            (Hostile, _) => "Not interested. Please don't call me again.".into(),
            (Busy, _) if self.heard <= 1 => {
                "Sorry, I'm just about to walk into a meeting. Can you call me back later?".into()
            }
            (_, Topic::Identity) => "Yes, speaking.".into(),
            (_, Topic::Anything) => "No, that's everything, thanks.".into(),
            (_, Topic::Details) => p
                .details
                .clone()
                .unwrap_or_else(|| "It's Alex Morgan, on 0412 345 678.".into()),
            (_, Topic::Email) => p.email.clone().unwrap_or_else(|| "It's alex@example.com.".into()),
            (_, Topic::Opinion) => p.opinion.clone().unwrap_or_else(|| match self.temperament {
                Unsure => "Hmm, I'm not sure yet, it was alright I guess.".into(),
                _ if p.interested => "I really liked it, actually.".into(),
                _ => "Honestly, it wasn't for us.".into(),
            }),
            (_, Topic::Money) => p
                .budget
                .clone()
                .unwrap_or_else(|| "I'm not sure yet, to be honest.".into()),
            (_, Topic::Offered) => match &p.availability {
                Some(free) if !said.contains(&first_word(free)) => {
                    format!("That doesn't really suit. Could we do {free} instead?")
                }
                _ if self.temperament == Unsure => "Hmm, I'm not sure, I'd have to check.".into(),
                _ => "Yes, that suits me.".into(),
            },
            (_, Topic::When) => p
                .availability
                .clone()
                .unwrap_or_else(|| "Tuesday morning would be good.".into()),
            (_, Topic::Help) => p
                .facts
                .get("help")
                .cloned()
                .unwrap_or_else(|| "Hi, I'm thinking of selling my place and wanted an appraisal.".into()),
            (_, Topic::CanTalk) => match self.temperament {
                Unsure => "Um, I suppose so, yes.".into(),
                _ => "Yeah, sure, go ahead.".into(),
            },
            (Unsure, Topic::YesNo) => "Hmm, I'm not sure really.".into(),
            (_, Topic::YesNo) if p.interested => "Yes, please.".into(),
            (_, Topic::YesNo) => "No, thanks.".into(),
            (_, Topic::Statement) => "Okay.".into(),
            (_, Topic::Goodbye) => "Bye.".into(),
        };
        let reply = self.fact_for(said).unwrap_or(reply);
        if self.temperament == Talkative {
            const ASIDES: [&str; 3] = [
                "Sorry, the dog's barking, hang on.",
                "We've been looking for a while now, it's been a long process.",
                "My partner's keen too, for what it's worth.",
            ];
            return Action::Say(format!("{reply} {}", ASIDES[self.heard % ASIDES.len()]));
        }
        Action::Say(reply)
    }

    /// A custom fact whose topic words all appear in what the assistant said.
    fn fact_for(&self, said: &str) -> Option<String> {
        self.profile
            .facts
            .iter()
            .filter(|(k, _)| *k != "help")
            .find(|(topic, _)| topic.to_lowercase().split_whitespace().all(|w| said.contains(w)))
            .map(|(_, v)| v.clone())
    }

    /// A stock persona by name: `cooperative` (the default), `unsure`, `busy`, `hostile`,
    /// `talkative`, `silent`, `interrupts`, `asks_questions`, `wrong_person`, `not_interested`,
    /// `hangs_up`.
    pub fn stock(name: &str) -> Option<Persona> {
        let with = |t: Temperament| Persona {
            name: name.into(),
            temperament: t,
            ..Default::default()
        };
        Some(match name {
            "cooperative" => Persona::cooperative(),
            "unsure" => Persona::unsure(),
            "busy" => with(Temperament::Busy),
            "hostile" => with(Temperament::Hostile),
            "talkative" => with(Temperament::Talkative),
            "silent" => Persona::silent(),
            "interrupts" => with(Temperament::Interrupts),
            "asks_questions" => with(Temperament::AsksQuestions),
            "wrong_person" => Persona {
                profile: Profile {
                    right_person: false,
                    ..Default::default()
                },
                ..with(Temperament::Cooperative)
            },
            "not_interested" => Persona {
                profile: Profile {
                    interested: false,
                    ..Default::default()
                },
                ..with(Temperament::Cooperative)
            },
            "hangs_up" => Persona::hangs_up_early(),
            _ => return None,
        })
    }

    /// The stock personas' names.
    pub const STOCK: [&'static str; 11] = [
        "cooperative",
        "unsure",
        "busy",
        "hostile",
        "talkative",
        "silent",
        "interrupts",
        "asks_questions",
        "wrong_person",
        "not_interested",
        "hangs_up",
    ];

    /// Agrees, gives what it is asked for, likes what it saw.
    pub fn cooperative() -> Self {
        Persona {
            name: "cooperative".into(),
            profile: Profile {
                opinion: Some("We loved it, the kitchen especially.".into()),
                budget: Some("About 1.2 million.".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    pub fn unsure() -> Self {
        Persona {
            name: "unsure".into(),
            temperament: Temperament::Unsure,
            ..Default::default()
        }
    }

    pub fn silent() -> Self {
        Persona {
            name: "silent".into(),
            temperament: Temperament::Silent,
            ..Default::default()
        }
    }

    pub fn hangs_up_early() -> Self {
        Persona {
            name: "hangs up early".into(),
            hang_up_at: Some(1),
            ..Default::default()
        }
    }

    /// Asks `question` first, then cooperates.
    pub fn off_topic(question: &str) -> Self {
        Persona {
            name: "off-topic question".into(),
            lines: VecDeque::from([question.to_owned()]),
            ..Persona::cooperative()
        }
    }
}

fn topic(said: &str) -> Topic {
    // The question is in the line's last sentence: "Great. Roughly what budget …?"
    let last = said
        .trim_end_matches(['?', '.', '!'])
        .rsplit(['.', '!', '?'])
        .next()
        .unwrap_or(said);
    for scope in [last, said] {
        if let Some((t, _)) = TOPICS.iter().find(|(_, cues)| cues.iter().any(|c| scope.contains(c))) {
            return *t;
        }
    }
    if said.trim_end().ends_with('?') {
        Topic::YesNo
    } else {
        Topic::Statement
    }
}

fn first_word(text: &str) -> String {
    text.split_whitespace()
        .find(|w| !matches!(w.to_lowercase().as_str(), "next" | "this" | "on" | "the"))
        .unwrap_or_default()
        .to_lowercase()
}

/// Seconds a simulated callee takes to answer (here and on the `sim` carrier's leg).
pub const ANSWER_SECS: i64 = 3;
/// Seconds into the assistant's line at which an interrupting callee talks over it.
pub const INTERRUPT_SECS: i64 = 1;

/// Runs the conversation against the persona until it ends or `max_turns` callee turns have passed.
pub async fn simulate(
    conversation: &mut Conversation,
    persona: &mut Persona,
    clock: &Arc<ManualClock>,
    max_turns: usize,
) {
    let mut turns = 0;
    let mut seen_assistant = 0;
    while !conversation.is_over() && turns < max_turns {
        let assistant_turns: Vec<String> = conversation
            .transcript()
            .iter()
            .filter(|t| t.role == Role::Assistant)
            .map(|t| t.text.clone())
            .collect();
        let last = assistant_turns.last().cloned().unwrap_or_default();
        let fresh = assistant_turns.len() > seen_assistant;
        seen_assistant = assistant_turns.len();
        let action = if fresh { persona.respond(&last) } else { Action::Silence };
        match action {
            Action::Say(text) if persona.talks_over() => {
                clock.advance(Duration::seconds(INTERRUPT_SECS));
                conversation.interrupt(&text).await;
                turns += 1;
            }
            Action::Say(text) => {
                clock.advance(Duration::seconds(ANSWER_SECS));
                conversation.hear(&text).await;
                turns += 1;
            }
            Action::HangUp => conversation.hang_up(),
            Action::Silence => {
                // Wait a second at a time until the assistant speaks again or gives up.
                for _ in 0..600 {
                    clock.advance(Duration::seconds(1));
                    conversation.tick().await;
                    let spoke = conversation
                        .transcript()
                        .iter()
                        .filter(|t| t.role == Role::Assistant)
                        .count()
                        > seen_assistant;
                    if conversation.is_over() || spoke {
                        break;
                    }
                }
                turns += 1;
            }
        }
    }
    if !conversation.is_over() {
        conversation.hang_up();
    }
}
