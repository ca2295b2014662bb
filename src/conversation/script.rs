//! The Script: what an assistant says and how it moves, as the product describes it. A main flow
//! and sub-flows of steps; conditions that move between steps; objectives, guidelines, a knowledge
//! base, a voicemail message, settings and a data-collection schema.
//!
//! Scripts arrive as JSON (API) or YAML/JSON files (`voxd script import`, `voxd chat`) and are
//! checked by [`Script::validate`] before anything runs them.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{functions, vars};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScriptType {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Script {
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    #[serde(rename = "type")]
    pub script_type: ScriptType,
    /// The flow the conversation starts in.
    pub main_flow_id: String,
    /// The main flow and its sub-flows.
    pub flows: Vec<Flow>,
    #[serde(default)]
    pub objectives: Vec<Objective>,
    #[serde(default)]
    pub guidelines: Vec<Guideline>,
    /// Topic → text the assistant may answer from.
    #[serde(default)]
    pub knowledge_base: BTreeMap<String, String>,
    /// Said when an outbound call reaches voicemail.
    #[serde(default)]
    pub voicemail_message: Option<String>,
    #[serde(default)]
    pub settings: Settings,
    /// Fields extracted from the conversation after it ends.
    #[serde(default)]
    pub data_collection: Vec<DataField>,
    /// Default values of `{{custom.*}}` variables.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Steps in order; the flow starts at the first.
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    /// Speaks and waits for the callee; conditions are natural language.
    Voice,
    /// Runs a built-in function; conditions are success / failure.
    Function,
    /// Runs a tool (webhook, SMS); conditions are success / failure.
    Tool,
    /// Runs a sub-flow; conditions are its success / failure.
    Flow,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Eagerness {
    Keen,
    #[default]
    Normal,
    Patient,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThinkingEffort {
    Fast,
    #[default]
    Normal,
    Deep,
}

/// How long the assistant waits in silence before prompting, and before ending the call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SilenceTolerance {
    #[default]
    Hurried,
    Patient,
    ExtremelyPatient,
    Infinite,
}

impl SilenceTolerance {
    /// (seconds until a prompt, seconds until shutdown); `None` never.
    pub fn timers(self) -> Option<(u64, u64)> {
        match self {
            SilenceTolerance::Hurried => Some((4, 15)),
            SilenceTolerance::Patient => Some((16, 60)),
            SilenceTolerance::ExtremelyPatient => Some((48, 180)),
            SilenceTolerance::Infinite => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    #[serde(rename = "type")]
    pub step_type: StepType,
    /// Voice: what to say, verbatim ("Say: …") or as an instruction ("Ask whether …").
    /// Function/tool: an optional line said while it runs.
    #[serde(default)]
    pub script: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Function steps: a built-in function's name.
    #[serde(default)]
    pub function: Option<String>,
    /// Tool steps: the tool and its settings.
    #[serde(default)]
    pub tool: Option<ToolConfig>,
    /// Flow steps: the sub-flow to run.
    #[serde(default)]
    pub flow: Option<String>,
    /// Function/tool inputs: name → text with `{{variables}}`.
    #[serde(default)]
    pub input: BTreeMap<String, String>,
    /// Function/tool outputs to keep: output name → variable (`custom.x`, `calendar.slot`).
    #[serde(default)]
    pub output: BTreeMap<String, String>,
    #[serde(default)]
    pub eagerness: Eagerness,
    #[serde(default)]
    pub thinking_effort: ThinkingEffort,
    #[serde(default)]
    pub silence_tolerance: SilenceTolerance,
}

/// One way out of a step. Voice steps use `when` (natural language, with optional `keywords` the
/// `rules` brain matches); function, tool and flow steps use `outcome`. `otherwise` catches the rest.
/// The action is `next` (a step of the same flow), `end_flow` (end this flow: the main flow ends the
/// call, a sub-flow returns to its parent) or `end_call` (assistant hangs up; main flow only).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    #[serde(default)]
    pub otherwise: bool,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub end_flow: Option<Outcome>,
    #[serde(default)]
    pub end_call: bool,
    /// Said when the condition is taken, before moving.
    #[serde(default)]
    pub say: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    #[serde(alias = "failure")]
    Fail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum ToolConfig {
    /// An HTTP request; the JSON answer is mapped into variables by `response_map`.
    Webhook(WebhookTool),
    /// Sends an SMS to the contact: input `message`.
    SmsSend,
}

/// In the OpenAPI document a tool is one flat object (`kind` plus the request's fields), not a
/// tagged union: code generators handle the flat form, and the server checks what each kind needs.
impl utoipa::PartialSchema for ToolConfig {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
        let kind = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["webhook", "sms_send"]))
            .description(Some(
                "`webhook`: an HTTP request (needs `url`); its JSON answer is mapped into variables by \
                 `response_map`. `sms_send`: sends an SMS to the contact (input `message`; no other field).",
            ));
        let mut tool = ObjectBuilder::new()
            .description(Some("A tool step's tool and its settings."))
            .property("kind", kind)
            .required("kind")
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
            .build();
        if let utoipa::openapi::RefOr::T(Schema::Object(request)) = <WebhookTool as utoipa::PartialSchema>::schema() {
            tool.properties.extend(request.properties);
        }
        Schema::Object(tool).into()
    }
}

impl ToSchema for ToolConfig {}

/// A tool step's HTTP request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookTool {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body template (any JSON value); strings may hold `{{variables}}`. Absent: no body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = serde_json::Value)]
    pub body: Option<serde_json::Value>,
    /// Output name → JSON pointer into the JSON response (`/data/id`); the step's `output`
    /// puts outputs into variables. `status` and `response` are always outputs.
    #[serde(default)]
    pub response_map: BTreeMap<String, String>,
}

fn default_method() -> String {
    "POST".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    pub id: String,
    pub description: String,
    /// Achieved when the conversation passes through this step (`rules` brain evidence).
    #[serde(default)]
    pub step: Option<String>,
    /// Or when the callee says one of these.
    #[serde(default)]
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Guideline {
    pub condition: String,
    pub response: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The assistant ends the call after this long.
    pub max_duration_seconds: u64,
    /// Said when the call ends for silence.
    pub silence_goodbye: String,
    /// Said when the callee is silent past the prompt timer.
    pub silence_prompt: String,
    /// Words speech recognition should expect on live calls (names, products, places).
    pub keywords: Vec<String>,
    /// Whether live calls of this script are recorded (both sides).
    pub recording: bool,
    /// Live calls listen with this engine instead of the server's `stt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stt: Option<SttEngine>,
    /// Live calls speak with this engine instead of the server's `tts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tts: Option<TtsEngine>,
}

/// A speech-to-text engine a script can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SttEngine {
    Whisper,
    Openai,
}

/// A text-to-speech engine a script can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TtsEngine {
    Piper,
    Espeak,
    Openai,
}

impl SttEngine {
    pub fn name(self) -> &'static str {
        match self {
            SttEngine::Whisper => "whisper",
            SttEngine::Openai => "openai",
        }
    }
}

impl TtsEngine {
    pub fn name(self) -> &'static str {
        match self {
            TtsEngine::Piper => "piper",
            TtsEngine::Espeak => "espeak",
            TtsEngine::Openai => "openai",
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_duration_seconds: 600,
            silence_goodbye: "I haven't heard anything for a while, so I'll end the call here. Goodbye.".into(),
            silence_prompt: "Are you still there?".into(),
            keywords: Vec::new(),
            recording: true,
            stt: None,
            tts: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Number,
    Integer,
    Boolean,
    /// A day, `YYYY-MM-DD`, read relative to the call in the callee's zone.
    Date,
    /// A moment, RFC 3339 in the callee's zone ("tomorrow at 3pm"; 9am when only a day is said).
    Datetime,
    /// One of the field's `values`.
    Enum,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataField {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default)]
    pub description: Option<String>,
    /// The step whose answer holds the value (`rules` brain extraction).
    #[serde(default)]
    pub from_step: Option<String>,
    /// `enum` fields: the values allowed (the answer's words choose one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl DataField {
    /// Whether the field holds money (its name or description says budget, price, cost, dollars…).
    pub fn is_money(&self) -> bool {
        let text = format!("{} {}", self.name, self.description.as_deref().unwrap_or_default()).to_lowercase();
        ["budget", "price", "dollar", "cost", "amount", "offer", "$"]
            .iter()
            .any(|w| text.contains(w))
    }
}

/// A problem in a script, naming where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ScriptError {
    /// `flows.main.steps.greet.conditions[1]` and the like.
    pub at: String,
    pub problem: String,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.problem)
    }
}

/// Variable namespaces always available. `objects` holds a call's object by its type name
/// (`{{objects.property.address}}`), empty when the call has none.
pub const NAMESPACES: [&str; 4] = ["contact", "call", "custom", "objects"];

impl Script {
    pub fn from_yaml_or_json(text: &str) -> Result<Self, String> {
        match text.trim_start().starts_with('{') {
            true => serde_json::from_str(text).map_err(|e| e.to_string()),
            false => serde_yaml_ng::from_str(text).map_err(|e| e.to_string()),
        }
    }

    pub fn flow(&self, id: &str) -> Option<&Flow> {
        self.flows.iter().find(|f| f.id == id)
    }

    /// Every problem found; empty when the script can run.
    pub fn validate(&self) -> Vec<ScriptError> {
        let mut errors = Vec::new();
        let mut err = |at: String, problem: String| errors.push(ScriptError { at, problem });
        if self.name.trim().is_empty() || self.name.len() > 255 {
            err("name".into(), "must be 1 to 255 characters".into());
        }
        let mut flow_ids = HashSet::new();
        for f in &self.flows {
            if !flow_ids.insert(f.id.as_str()) {
                err(format!("flows.{}", f.id), "flow id used twice".into());
            }
        }
        if self.flow(&self.main_flow_id).is_none() {
            err("main_flow_id".into(), format!("no flow has id `{}`", self.main_flow_id));
        }
        let namespaces = self.namespaces();
        for flow in &self.flows {
            let is_main = flow.id == self.main_flow_id;
            let at_flow = format!("flows.{}", flow.id);
            if flow.steps.is_empty() {
                err(at_flow.clone(), "has no steps".into());
            }
            let mut step_ids = HashSet::new();
            for s in &flow.steps {
                if !step_ids.insert(s.id.as_str()) {
                    err(
                        format!("{at_flow}.steps.{}", s.id),
                        "step id used twice in this flow".into(),
                    );
                }
            }
            for step in &flow.steps {
                let at = format!("{at_flow}.steps.{}", step.id);
                match step.step_type {
                    StepType::Voice => {
                        if step.script.as_deref().is_none_or(|s| s.trim().is_empty()) {
                            err(at.clone(), "a voice step needs a script".into());
                        }
                    }
                    StepType::Function => match step.function.as_deref() {
                        None => err(at.clone(), "a function step needs `function`".into()),
                        Some(name) if !functions::exists(name) => err(
                            at.clone(),
                            format!(
                                "function `{name}` does not exist (known: {})",
                                functions::NAMES.join(", ")
                            ),
                        ),
                        Some(_) => {}
                    },
                    StepType::Tool => {
                        if step.tool.is_none() {
                            err(at.clone(), "a tool step needs `tool`".into());
                        }
                    }
                    StepType::Flow => match step.flow.as_deref() {
                        None => err(at.clone(), "a flow step needs `flow`".into()),
                        Some(id) if self.flow(id).is_none() => err(at.clone(), format!("flow `{id}` does not exist")),
                        Some(id) if id == self.main_flow_id || id == flow.id => {
                            err(at.clone(), format!("flow `{id}` cannot run inside itself"))
                        }
                        Some(_) => {}
                    },
                }
                if step.conditions.is_empty() {
                    err(at.clone(), "has no conditions: nothing says where to go next".into());
                }
                for (i, c) in step.conditions.iter().enumerate() {
                    let at_c = format!("{at}.conditions[{i}]");
                    let actions =
                        usize::from(c.next.is_some()) + usize::from(c.end_flow.is_some()) + usize::from(c.end_call);
                    if actions != 1 {
                        err(
                            at_c.clone(),
                            "needs exactly one of `next`, `end_flow`, `end_call`".into(),
                        );
                    }
                    if let Some(next) = &c.next {
                        if !step_ids.contains(next.as_str()) {
                            err(
                                at_c.clone(),
                                format!("next step `{next}` is not a step of flow `{}`", flow.id),
                            );
                        }
                    }
                    if c.end_call && !is_main {
                        err(
                            at_c.clone(),
                            "a sub-flow cannot end the call directly; use `end_flow` to return to its parent".into(),
                        );
                    }
                    let guard = match step.step_type {
                        StepType::Voice => c.when.is_some() || c.otherwise,
                        _ => c.outcome.is_some() || c.otherwise,
                    };
                    if !guard {
                        let wanted = if step.step_type == StepType::Voice {
                            "`when`"
                        } else {
                            "`outcome`"
                        };
                        err(at_c.clone(), format!("needs {wanted} or `otherwise: true`"));
                    }
                    if let Some(say) = &c.say {
                        check_vars(&namespaces, say, &format!("{at_c}.say"), &mut err);
                    }
                }
                for text in step.script.iter().chain(step.input.values()) {
                    check_vars(&namespaces, text, &at, &mut err);
                }
                for target in step.output.values() {
                    match target.split_once('.') {
                        Some((ns, rest)) if !rest.is_empty() && ns != "contact" && ns != "call" => {}
                        _ => err(
                            at.clone(),
                            format!("output `{target}` must name a variable `namespace.name` outside contact and call"),
                        ),
                    }
                }
            }
            if !flow.steps.is_empty() && !reaches_end(flow) {
                err(
                    at_flow.clone(),
                    "no ending is reachable from its first step (no `end_flow` or `end_call`)".into(),
                );
            }
        }
        for (i, o) in self.objectives.iter().enumerate() {
            if let Some(step) = &o.step {
                if !self.flows.iter().any(|f| f.steps.iter().any(|s| &s.id == step)) {
                    err(format!("objectives[{i}]"), format!("step `{step}` does not exist"));
                }
            }
        }
        for (i, d) in self.data_collection.iter().enumerate() {
            match (d.field_type, d.values.is_empty()) {
                (FieldType::Enum, true) => err(format!("data_collection[{i}]"), "an enum field needs `values`".into()),
                (FieldType::Enum, false) => {}
                (_, false) => err(format!("data_collection[{i}]"), "only enum fields take `values`".into()),
                (_, true) => {}
            }
            if let Some(step) = &d.from_step {
                if !self.flows.iter().any(|f| f.steps.iter().any(|s| &s.id == step)) {
                    err(format!("data_collection[{i}]"), format!("step `{step}` does not exist"));
                }
            }
        }
        if let Some(v) = &self.voicemail_message {
            check_vars(&namespaces, v, "voicemail_message", &mut err);
        }
        errors
    }

    /// The namespaces variables may use: the fixed ones and the tool output namespaces.
    fn namespaces(&self) -> HashSet<String> {
        let mut set: HashSet<String> = NAMESPACES.iter().map(|s| s.to_string()).collect();
        for flow in &self.flows {
            for step in &flow.steps {
                for target in step.output.values() {
                    if let Some((ns, _)) = target.split_once('.') {
                        set.insert(ns.to_owned());
                    }
                }
            }
        }
        set
    }
}

fn check_vars(namespaces: &HashSet<String>, text: &str, at: &str, err: &mut impl FnMut(String, String)) {
    for name in vars::references(text) {
        let ns = name.split('.').next().unwrap_or_default();
        if !namespaces.contains(ns) {
            err(at.to_owned(), format!("variable `{{{{{name}}}}}` uses namespace `{ns}`, which is not defined (known: {}, and the namespaces of step outputs)", NAMESPACES.join(", ")));
        }
    }
}

/// Whether some path from the first step reaches an ending.
fn reaches_end(flow: &Flow) -> bool {
    let index: HashMap<&str, &Step> = flow.steps.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut seen = HashSet::new();
    let mut todo = vec![flow.steps[0].id.as_str()];
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(step) = index.get(id) else { continue };
        for c in &step.conditions {
            if c.end_flow.is_some() || c.end_call {
                return true;
            }
            if let Some(next) = &c.next {
                todo.push(next.as_str());
            }
        }
    }
    false
}
