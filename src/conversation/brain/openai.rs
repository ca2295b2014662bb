//! The `openai` brain: any OpenAI-compatible chat-completions endpoint (OpenAI, a gateway, or a
//! local llama.cpp `llama-server`, which accepts the same `response_format: json_schema`). Every
//! answer is asked for as JSON matching a schema, checked, and retried on timeouts, 429 and 5xx.
//!
//! Settings from the environment: `VOXD_OPENAI_BASE_URL` (default `https://api.openai.com/v1`),
//! `VOXD_OPENAI_MODEL` (default `gpt-4o-mini`), `VOXD_OPENAI_API_KEY` or `OPENAI_API_KEY`
//! (optional for local servers), `VOXD_OPENAI_TIMEOUT_SECS` (default 20).

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{AnalyseRequest, Brain, BrainError, DecideRequest, Decision};
use crate::conversation::{
    analysis::{typed_data, Analysis, ObjectiveResult, SuccessEvaluation},
    script::{FieldType, Script, ThinkingEffort},
    transcript::{Role, Turn},
};

const OPENAI_URL: &str = "https://api.openai.com/v1";
/// Turns of history a `fast` step sends with a decision.
const FAST_HISTORY: usize = 4;

pub struct OpenAiBrain {
    client: reqwest::Client,
    base_url: String,
    model: String,
    api_key: Option<String>,
    retries: u32,
}

impl std::fmt::Debug for OpenAiBrain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiBrain")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

impl OpenAiBrain {
    pub fn new(base_url: &str, model: &str, api_key: Option<String>, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("HTTP client");
        OpenAiBrain {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key,
            retries: 2,
        }
    }

    /// Settings from `VOXD_OPENAI_*`; an error when they cannot work (OpenAI without a key).
    pub fn from_env() -> Result<Self, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let timeout = match var("VOXD_OPENAI_TIMEOUT_SECS") {
            Some(s) => s
                .parse()
                .map_err(|_| format!("VOXD_OPENAI_TIMEOUT_SECS `{s}` is not a number"))?,
            None => 20,
        };
        let base_url = var("VOXD_OPENAI_BASE_URL").unwrap_or_else(|| OPENAI_URL.into());
        let key = var("VOXD_OPENAI_API_KEY").or_else(|| var("OPENAI_API_KEY"));
        // OpenAI itself refuses every request without a key: say so now, not on the first turn.
        // (A local server at another base URL may need none.)
        if key.is_none() && base_url.trim_end_matches('/') == OPENAI_URL {
            return Err(format!(
                "the openai brain needs VOXD_OPENAI_API_KEY (or OPENAI_API_KEY) for {OPENAI_URL}; \
                 for a local model server that needs no key, set VOXD_OPENAI_BASE_URL"
            ));
        }
        Ok(Self::new(
            &base_url,
            &var("VOXD_OPENAI_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
            key,
            Duration::from_secs(timeout),
        ))
    }

    /// One try of a chat-completions request (after a back-off when it is not the first): the
    /// response when it succeeded, or whether another try may help (network, 429, 5xx).
    async fn send(&self, url: &str, body: &Value, attempt: u32) -> Result<reqwest::Response, Try> {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
        }
        let mut req = self.client.post(url).json(body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let response = req
            .send()
            .await
            .map_err(|e| Try::Again(BrainError::Unavailable(format!("{url}: {e}"))))?;
        let status = response.status();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(Try::Again(BrainError::Unavailable(format!("{url} answered {status}"))));
        }
        if !status.is_success() {
            return Err(Try::Stop(BrainError::Unavailable(format!("{url} answered {status}"))));
        }
        Ok(response)
    }

    /// One chat completion whose reply must be JSON matching `schema`.
    async fn ask(&self, name: &str, system: String, user: Value, schema: Value) -> Result<Value, BrainError> {
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user.to_string()},
            ],
            "response_format": {"type": "json_schema", "json_schema": {"name": name, "strict": true, "schema": schema}},
        });
        let url = format!("{}/chat/completions", self.base_url);
        let mut last = BrainError::Unavailable("no attempt".into());
        for attempt in 0..=self.retries {
            let response = match self.send(&url, &body, attempt).await {
                Ok(r) => r,
                Err(Try::Again(e)) => {
                    last = e;
                    continue;
                }
                Err(Try::Stop(e)) => return Err(e),
            };
            let reply: Value = match response.json().await {
                Ok(v) => v,
                Err(e) => {
                    last = BrainError::Malformed(format!("not JSON: {e}"));
                    continue;
                }
            };
            let content = reply
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match serde_json::from_str::<Value>(content) {
                Ok(v) if v.is_object() => return Ok(v),
                _ => last = BrainError::Malformed(format!("message content is not a JSON object: {content:.200}")),
            }
        }
        Err(last)
    }
}

/// Why a request try failed.
enum Try {
    /// Worth another try (network, 429, 5xx).
    Again(BrainError),
    /// Another try would fail the same way.
    Stop(BrainError),
}

fn history(transcript: &[Turn]) -> Vec<Value> {
    transcript
        .iter()
        .map(|t| json!({"role": if t.role == Role::Assistant { "assistant" } else { "callee" }, "text": t.text}))
        .collect()
}

fn knowledge(script: &Script) -> Value {
    json!({
        "knowledge_base": script.knowledge_base,
        "guidelines": script.guidelines.iter().map(|g| json!({"condition": g.condition, "response": g.response})).collect::<Vec<_>>(),
    })
}

#[async_trait]
impl Brain for OpenAiBrain {
    fn name(&self) -> &'static str {
        "openai"
    }

    async fn decide(&self, req: DecideRequest<'_>) -> Result<Decision, BrainError> {
        let conditions: Vec<Value> = req
            .step
            .conditions
            .iter()
            .enumerate()
            .map(|(i, c)| json!({"index": i, "when": if c.otherwise { "otherwise (none of the others)" } else { c.when.as_deref().unwrap_or_default() }, "keywords": c.keywords}))
            .collect();
        let mut system = "You follow a phone call script. Given the step the assistant is on, its numbered \
            conditions and what the callee just said, reply with JSON: action `condition` with the index \
            of the condition that holds; or `answer` with a short spoken reply when the callee asked an \
            off-script question (use only the knowledge base and guidelines); or `end_call` with a polite \
            goodbye when the callee wants no more calls; or `unclear`."
            .to_owned();
        // The step's thinking effort: `fast` sends only the recent turns (a shorter prompt is read
        // sooner); `deep` has the model reason first, in a field before its answer (more tokens,
        // a later answer, fewer misreadings of hedged or indirect replies).
        let effort = req.step.thinking_effort;
        let recent = match effort {
            ThinkingEffort::Fast => &req.transcript[req.transcript.len().saturating_sub(FAST_HISTORY)..],
            _ => req.transcript,
        };
        let user = json!({
            "step": {"id": req.step.id, "script": req.step.script},
            "conditions": conditions,
            "callee_said": req.utterance,
            "history": history(recent),
            "knowledge": knowledge(req.script),
        });
        let mut properties = json!({
            "action": {"type": "string", "enum": ["condition", "answer", "end_call", "unclear"]},
            "condition": {"type": "integer"},
            "reply": {"type": "string"}
        });
        if effort == ThinkingEffort::Deep {
            system.push_str(
                " First write in `_reasoning`, in two or three sentences, what the callee means given the \
                 whole history (hedges, indirect answers, corrections); then decide.",
            );
            // Models write fields in schema order and our maps order keys by name: the leading
            // underscore puts the reasoning before the answer it is for.
            properties["_reasoning"] = json!({"type": "string"});
        }
        let required: Vec<&String> = properties.as_object().map(|p| p.keys().collect()).unwrap_or_default();
        let schema = json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false
        });
        let v = self.ask("decision", system, user, schema).await?;
        let reply = v["reply"].as_str().unwrap_or_default().to_owned();
        match v["action"].as_str() {
            Some("condition") => match v["condition"].as_u64() {
                Some(i) if (i as usize) < req.step.conditions.len() => Ok(Decision::Condition(i as usize)),
                other => Err(BrainError::Malformed(format!(
                    "condition {other:?} is not one of the step's"
                ))),
            },
            Some("answer") if !reply.is_empty() => Ok(Decision::Answer(reply)),
            Some("end_call") => Ok(Decision::EndCall(if reply.is_empty() {
                "Goodbye.".into()
            } else {
                reply
            })),
            Some("unclear") => Ok(Decision::Unclear),
            other => Err(BrainError::Malformed(format!("unknown action {other:?}"))),
        }
    }

    async fn compose(&self, script: &Script, instruction: &str, transcript: &[Turn]) -> Result<String, BrainError> {
        let system = "You are the assistant on a phone call. Turn the instruction into one or two short, \
            natural spoken sentences. Reply with JSON {\"say\": ...}."
            .to_owned();
        let user = json!({"script": script.name, "instruction": instruction, "history": history(transcript)});
        let schema = json!({"type": "object", "properties": {"say": {"type": "string"}}, "required": ["say"], "additionalProperties": false});
        let v = self.ask("turn", system, user, schema).await?;
        match v["say"].as_str() {
            Some(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            _ => Err(BrainError::Malformed("empty `say`".into())),
        }
    }

    /// Streams the reply (`stream: true`, server-sent events) and hands over each sentence as it
    /// completes. Retried like every request while nothing has been handed over; after that a
    /// failure ends the reply (what was said cannot be unsaid).
    async fn compose_stream(
        &self,
        script: &Script,
        instruction: &str,
        transcript: &[Turn],
        piece: &mut (dyn FnMut(String) + Send),
    ) -> Result<String, BrainError> {
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "stream": true,
            "messages": [
                {"role": "system", "content": "You are the assistant on a phone call. Turn the instruction into one \
                    or two short, natural spoken sentences. Reply with the words to say, nothing else."},
                {"role": "user", "content": json!({"script": script.name, "instruction": instruction, "history": history(transcript)}).to_string()},
            ],
        });
        let url = format!("{}/chat/completions", self.base_url);
        let mut last = BrainError::Unavailable("no attempt".into());
        for attempt in 0..=self.retries {
            let mut response = match self.send(&url, &body, attempt).await {
                Ok(r) => r,
                Err(Try::Again(e)) => {
                    last = e;
                    continue;
                }
                Err(Try::Stop(e)) => return Err(e),
            };
            // `data: {json}` lines; `data: [DONE]` ends the stream.
            let (mut lines, mut text, mut given) = (String::new(), String::new(), 0usize);
            let mut cut = None;
            loop {
                let chunk = match response.chunk().await {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) if given == 0 => {
                        cut = Some(BrainError::Unavailable(format!("{url}: {e}")));
                        break;
                    }
                    Err(e) => return Err(BrainError::Unavailable(format!("{url}: stream cut: {e}"))),
                };
                lines.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(nl) = lines.find('\n') {
                    let line: String = lines.drain(..=nl).collect();
                    let Some(data) = line.trim().strip_prefix("data:").map(str::trim) else {
                        continue;
                    };
                    if data == "[DONE]" {
                        continue;
                    }
                    let delta: Value = serde_json::from_str(data)
                        .map_err(|e| BrainError::Malformed(format!("stream event is not JSON: {e}")))?;
                    if let Some(t) = delta.pointer("/choices/0/delta/content").and_then(Value::as_str) {
                        text.push_str(t);
                    }
                }
                let end = super::complete_sentences_end(&text);
                if end > given {
                    for s in super::sentences(&text[given..end]) {
                        piece(s);
                    }
                    given = end;
                }
            }
            if let Some(e) = cut {
                last = e;
                continue;
            }
            if text.trim().is_empty() {
                if given == 0 {
                    last = BrainError::Malformed("the streamed reply is empty".into());
                    continue;
                }
                return Err(BrainError::Malformed("the streamed reply is empty".into()));
            }
            for s in super::sentences(&text[given..]) {
                piece(s);
            }
            return Ok(text.trim().to_owned());
        }
        Err(last)
    }

    async fn analyse(&self, req: AnalyseRequest<'_>) -> Result<Analysis, BrainError> {
        let fields: Map<String, Value> = req
            .script
            .data_collection
            .iter()
            .map(|f| {
                let schema = match f.field_type {
                    FieldType::String | FieldType::Date | FieldType::Datetime => json!({"type": ["string", "null"]}),
                    FieldType::Number => json!({"type": ["number", "null"]}),
                    FieldType::Integer => json!({"type": ["integer", "null"]}),
                    FieldType::Boolean => json!({"type": ["boolean", "null"]}),
                    FieldType::Enum => {
                        let mut values: Vec<Value> = f.values.iter().map(|v| json!(v)).collect();
                        values.push(Value::Null);
                        json!({"enum": values})
                    }
                };
                (f.name.clone(), schema)
            })
            .collect();
        let field_names: Vec<&str> = req.script.data_collection.iter().map(|f| f.name.as_str()).collect();
        let schema = json!({
            "type": "object",
            "properties": {
                "summary": {"type": "string"},
                "objectives": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "achieved": {"type": "boolean"}, "evidence": {"type": ["string", "null"]}
                }, "required": ["id", "achieved", "evidence"], "additionalProperties": false}},
                "structured_data": {"type": "object", "properties": fields, "required": field_names, "additionalProperties": false},
                "success_evaluation": {"type": "string", "enum": ["successful", "partially_successful", "unsuccessful"]},
                "rating": {"type": "integer", "minimum": 1, "maximum": 5}
            },
            "required": ["summary", "objectives", "structured_data", "success_evaluation", "rating"],
            "additionalProperties": false
        });
        let system = "Analyse a finished phone call. Summarise it in two or three sentences; grade each \
            objective as achieved or not, quoting the evidence; extract the data fields (null when not \
            said; dates as YYYY-MM-DD, date-times as RFC 3339 in the callee's offset, relative to `now`); evaluate success and rate the call from 1 to 5."
            .to_owned();
        let user = json!({
            "now": req.now.to_rfc3339(),
            "end_reason": req.end_reason,
            "objectives": req.script.objectives.iter().map(|o| json!({"id": o.id, "description": o.description})).collect::<Vec<_>>(),
            "data_fields": req.script.data_collection.iter().map(|f| json!({"name": f.name, "type": f.field_type, "description": f.description, "values": f.values})).collect::<Vec<_>>(),
            "transcript": history(req.transcript),
        });
        let v = self.ask("analysis", system, user, schema).await?;
        let graded = v["objectives"].as_array().cloned().unwrap_or_default();
        let objectives = req
            .script
            .objectives
            .iter()
            .map(|o| {
                let g = graded.iter().find(|g| g["id"] == o.id.as_str());
                ObjectiveResult {
                    id: o.id.clone(),
                    description: o.description.clone(),
                    achieved: g.and_then(|g| g["achieved"].as_bool()).unwrap_or(false),
                    evidence: g.and_then(|g| g["evidence"].as_str()).map(str::to_owned),
                }
            })
            .collect();
        let success_evaluation = serde_json::from_value::<SuccessEvaluation>(v["success_evaluation"].clone())
            .map_err(|_| BrainError::Malformed("success_evaluation".into()))?;
        let rating = v["rating"]
            .as_u64()
            .filter(|r| (1..=5).contains(r))
            .ok_or_else(|| BrainError::Malformed("rating".into()))? as u8;
        Ok(Analysis {
            brain: "openai".into(),
            summary: v["summary"].as_str().unwrap_or_default().to_owned(),
            objectives,
            structured_data: typed_data(req.script, v["structured_data"].as_object().unwrap_or(&Map::new())),
            success_evaluation,
            rating,
        })
    }
}
