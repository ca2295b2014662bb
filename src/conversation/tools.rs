//! Tools for tool steps: a Webhook (HTTP request, JSON answer mapped into outputs) and SMS send.
//! Outbound HTTP goes through [`crate::outbound`], which refuses private targets unless allowed.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{script::ToolConfig, vars};
use crate::outbound;

pub struct ToolResult {
    pub success: bool,
    pub outputs: Map<String, Value>,
}

/// Sends SMS. The real carrier comes with calls; until then [`RecordingSms`] keeps what was sent.
#[async_trait]
pub trait SmsSender: Send + Sync {
    async fn send(&self, to: &str, body: &str) -> Result<(), String>;
}

/// Records messages instead of sending them (tests, `voxd chat`).
#[derive(Default)]
pub struct RecordingSms(pub Mutex<Vec<(String, String)>>);

#[async_trait]
impl SmsSender for RecordingSms {
    async fn send(&self, to: &str, body: &str) -> Result<(), String> {
        self.0.lock().expect("sms lock").push((to.to_owned(), body.to_owned()));
        Ok(())
    }
}

/// The tools service, shared by every call: what is particular to a call (region, time zones)
/// comes with the conversation's [`super::context::CallContext`], not from here.
pub struct Tools {
    http: reqwest::Client,
    allow_private: bool,
    pub sms: Arc<dyn SmsSender>,
}

impl Tools {
    /// `allow_private`: let requests reach private and loopback addresses (tests, on-premise CRMs).
    pub fn new(allow_private: bool, sms: Arc<dyn SmsSender>) -> Self {
        Tools {
            http: outbound::client(allow_private, Duration::from_secs(10)),
            allow_private,
            sms,
        }
    }

    pub async fn run(&self, tool: &ToolConfig, inputs: &BTreeMap<String, String>, vars: &Value) -> ToolResult {
        match tool {
            ToolConfig::Webhook(w) => {
                self.webhook(&w.url, &w.method, &w.headers, w.body.as_ref(), &w.response_map, vars)
                    .await
            }
            ToolConfig::SmsSend => {
                let to = vars::lookup(vars, "contact.phone_number")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let message = inputs.get("message").map(|m| m.trim()).unwrap_or_default();
                let outcome = match (to.is_empty(), message.is_empty()) {
                    (true, _) => Err("the contact has no phone number".to_owned()),
                    (_, true) => Err("the message is empty".to_owned()),
                    _ => self.sms.send(to, message).await,
                };
                match outcome {
                    Ok(()) => ToolResult {
                        success: true,
                        outputs: json!({"queued": true}).as_object().cloned().unwrap_or_default(),
                    },
                    Err(e) => ToolResult {
                        success: false,
                        outputs: json!({"queued": false, "error": e})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                    },
                }
            }
        }
    }

    async fn webhook(
        &self,
        url: &str,
        method: &str,
        headers: &BTreeMap<String, String>,
        body: Option<&Value>,
        response_map: &BTreeMap<String, String>,
        vars: &Value,
    ) -> ToolResult {
        let fail = |error: String| {
            tracing::info!(%error, "webhook tool failed");
            ToolResult {
                success: false,
                outputs: json!({ "error": error }).as_object().cloned().unwrap_or_default(),
            }
        };
        let url = vars::render(url, vars);
        let parsed = match outbound::check_url(&url, self.allow_private) {
            Ok(u) => u,
            Err(e) => return fail(e),
        };
        let Ok(method) = method.to_uppercase().parse::<reqwest::Method>() else {
            return fail(format!("`{method}` is not an HTTP method"));
        };
        let mut req = self.http.request(method, parsed);
        for (k, v) in headers {
            req = req.header(k, vars::render(v, vars));
        }
        if let Some(body) = body {
            req = req.json(&render_json(body, vars));
        }
        let response = match outbound::send(req).await {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()),
        };
        let status = response.status();
        let json: Value = response.json().await.unwrap_or(Value::Null);
        let mut outputs = Map::new();
        for (name, pointer) in response_map {
            outputs.insert(name.clone(), json.pointer(pointer).cloned().unwrap_or(Value::Null));
        }
        outputs.insert("status".into(), json!(status.as_u16()));
        outputs.insert("response".into(), json);
        ToolResult {
            success: status.is_success(),
            outputs,
        }
    }
}

/// A JSON template with every string's variables filled in.
fn render_json(template: &Value, vars: &Value) -> Value {
    match template {
        Value::String(s) => Value::String(vars::render(s, vars)),
        Value::Array(a) => Value::Array(a.iter().map(|v| render_json(v, vars)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), render_json(v, vars))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::script::WebhookTool;

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        let tools = Tools::new(false, Arc::new(RecordingSms::default()));
        let tool = ToolConfig::Webhook(WebhookTool {
            url: "http://127.0.0.1:9/x".into(),
            method: "POST".into(),
            headers: Default::default(),
            body: None,
            response_map: Default::default(),
        });
        let r = tools.run(&tool, &Default::default(), &json!({})).await;
        assert!(!r.success);
        assert!(r.outputs["error"].as_str().unwrap().contains("private"));
        let named = ToolConfig::Webhook(WebhookTool {
            url: "http://localhost:9/x".into(),
            method: "GET".into(),
            headers: Default::default(),
            body: None,
            response_map: Default::default(),
        });
        let r = tools.run(&named, &Default::default(), &json!({})).await;
        assert!(!r.success, "a name resolving to loopback is refused too");
    }
}
