//! Tools for tool steps: a Webhook (HTTP request, JSON answer mapped into outputs) and SMS send.
//! Outbound HTTP goes through a client that refuses private, loopback and link-local addresses
//! unless the operator allows them, checked both for IP literals and for every address a name
//! resolves to (so a public name cannot point the request inside the network).

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::{json, Map, Value};

use super::{script::ToolConfig, vars};

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

pub struct Tools {
    http: reqwest::Client,
    allow_private: bool,
    pub sms: Arc<dyn SmsSender>,
    /// Region for reading phone numbers (the team's).
    pub region: phonenumber::country::Id,
    /// Where "today" is for date functions (the contact's, else the team's).
    pub timezone: chrono_tz::Tz,
}

/// Whether an address is one outbound requests must not reach by default.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]) // carrier-grade NAT
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg & 0xfe00) == 0xfc00 // unique local
                || (seg & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// An HTTP client for requests to addresses users configure (tools, automation steps, event
/// webhooks): no redirects (a public URL must not bounce inside), and unless `allow_private`, names
/// that resolve only to private addresses are refused at connect time.
pub fn outbound_client(allow_private: bool, timeout: Duration) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder.build().expect("HTTP client")
}

/// Parses an http(s) URL and, unless `allow_private`, refuses private IP literals (names are
/// checked by [`outbound_client`]'s resolver).
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => return Err(format!("`{url}` is not an http(s) URL")),
    };
    if !allow_private {
        let host = parsed.host_str().unwrap_or_default();
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if literal.is_some_and(is_private) {
            return Err(format!("{url} is a private address, which is not allowed"));
        }
    }
    Ok(parsed)
}

/// Resolves names and drops private addresses, so the connection can only go to public ones.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "{} resolves only to private addresses, which are not allowed",
                    name.as_str()
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

impl Tools {
    /// `allow_private`: let requests reach private and loopback addresses (tests, on-premise CRMs).
    pub fn new(allow_private: bool, sms: Arc<dyn SmsSender>, region: phonenumber::country::Id) -> Self {
        Tools {
            http: outbound_client(allow_private, Duration::from_secs(10)),
            allow_private,
            sms,
            region,
            timezone: chrono_tz::UTC,
        }
    }

    pub fn with_timezone(mut self, timezone: chrono_tz::Tz) -> Self {
        self.timezone = timezone;
        self
    }

    pub async fn run(&self, tool: &ToolConfig, inputs: &BTreeMap<String, String>, vars: &Value) -> ToolResult {
        match tool {
            ToolConfig::Webhook {
                url,
                method,
                headers,
                body,
                response_map,
            } => {
                self.webhook(url, method, headers, body.as_ref(), response_map, vars)
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
        let parsed = match check_url(&url, self.allow_private) {
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
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => return fail(format!("request failed: {e}")),
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

    #[test]
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "100.64.0.1",
            "0.0.0.0",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        let tools = Tools::new(false, Arc::new(RecordingSms::default()), phonenumber::country::Id::AU);
        let tool = ToolConfig::Webhook {
            url: "http://127.0.0.1:9/x".into(),
            method: "POST".into(),
            headers: Default::default(),
            body: None,
            response_map: Default::default(),
        };
        let r = tools.run(&tool, &Default::default(), &json!({})).await;
        assert!(!r.success);
        assert!(r.outputs["error"].as_str().unwrap().contains("private"));
        let named = ToolConfig::Webhook {
            url: "http://localhost:9/x".into(),
            method: "GET".into(),
            headers: Default::default(),
            body: None,
            response_map: Default::default(),
        };
        let r = tools.run(&named, &Default::default(), &json!({})).await;
        assert!(!r.success, "a name resolving to loopback is refused too");
    }
}
