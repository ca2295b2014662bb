//! Settings: command-line flags, then `VOXD_*` environment variables, then an optional TOML config
//! file (`--config` / `VOXD_CONFIG`), then defaults. Flag and variable names are fixed: other
//! tooling relies on them.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::{
    api::ApiSettings,
    store::{default_sqlite_url, DbOptions},
};

#[derive(Debug, Clone, Copy, Default, ValueEnum, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Where the database and settings come from: options of every command that opens the database
/// (not `chat`), given before or after its subcommand.
#[derive(Debug, Clone, Args, Default)]
pub struct DbArgs {
    /// TOML config file (keys as in `voxd.example.toml`).
    #[arg(long, env = "VOXD_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://…` [default: a SQLite file in the data dir]
    #[arg(long, env = "VOXD_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the embedded database lives [default: ./data]
    #[arg(long, env = "VOXD_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Address to serve HTTP on, HOST:PORT (127.0.0.1:8080, localhost:8080, [::]:8080)
    /// [default: 127.0.0.1:8080]
    #[arg(long, env = "VOXD_LISTEN", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,
    /// Default API requests per second per key (teams may override) [default: 50]
    #[arg(long, env = "VOXD_REQUESTS_PER_SECOND")]
    pub requests_per_second: Option<u32>,
    /// Behind a proxy: the header holding the client's address (e.g. X-Forwarded-For; its last
    /// entry is used). Unset: the connection's address.
    #[arg(long, env = "VOXD_TRUSTED_PROXY_HEADER")]
    pub trusted_proxy_header: Option<String>,
    /// Let webhooks, automation steps and tools reach private and loopback addresses (a CRM on the
    /// same network, a receiver on this machine).
    #[arg(long, env = "VOXD_ALLOW_PRIVATE_NETWORK")]
    pub allow_private_network: bool,
}

/// A listen address: an IP and port, or a host name and port (resolved; the first address wins).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let example = "give HOST:PORT, e.g. 127.0.0.1:8080, localhost:8080 or [::]:8080";
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !text.contains(':') {
        return Err(format!("`{text}` has no port: {example}"));
    }
    let mut found = text
        .to_socket_addrs()
        .map_err(|e| format!("`{text}` cannot be resolved ({e}): {example}"))?;
    found
        .next()
        .ok_or_else(|| format!("`{text}` resolves to no address: {example}"))
}

/// The config file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// HOST:PORT; a host name is resolved.
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub database_max_connections: Option<u32>,
    pub requests_per_second: Option<u32>,
    pub max_concurrent_calls: Option<u32>,
    pub max_body_bytes: Option<usize>,
    /// Seconds a verified API key is trusted before it is looked up again (revocation delay).
    pub key_cache_seconds: Option<u64>,
    pub unauthenticated_requests_per_second: Option<u32>,
    pub trusted_proxy_header: Option<String>,
    /// Let tools reach private and loopback addresses.
    pub allow_private_network: Option<bool>,
    /// A bearer token `/metrics` requires (also `VOXD_METRICS_TOKEN`); unset, it is open.
    pub metrics_token: Option<String>,
    /// Simulated carrier: milliseconds of ringing, and before answer.
    pub sim_ring_ms: Option<u64>,
    pub sim_answer_ms: Option<u64>,
    /// How long a dispatcher's claim on a call lasts without renewal (default 120 s): after a
    /// crash, calls in flight are recovered this long later.
    pub dispatch_lease_seconds: Option<u64>,
    /// Run no dispatcher in this process (an API-only replica).
    pub dispatcher_disabled: Option<bool>,
    /// Most calls one caller id places per second (default 10; 0 = no limit).
    pub calls_per_second_per_number: Option<u32>,
    /// Run no automation worker in this process (executions and webhooks run elsewhere).
    pub automations_disabled: Option<bool>,
    /// How long an automation worker's claim on an execution or delivery lasts (default 60 s):
    /// after a crash, work in flight is resumed this long later.
    pub automation_lease_seconds: Option<u64>,
    /// Tries of an automation step that fails transiently before its execution is dead-lettered
    /// (default 5), and of an event webhook delivery (default 8).
    pub automation_step_attempts: Option<i32>,
    pub webhook_delivery_attempts: Option<i32>,
    /// First retry delay in milliseconds (default 2000), doubling up to `retry_cap_seconds` (600).
    pub retry_base_ms: Option<u64>,
    pub retry_cap_seconds: Option<u64>,
    /// Email for notification steps: an SMTP relay (`smtp://host:port`) and the sender address.
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
    /// Web calls: the gateway's SIP-over-WebSocket URL, SIP domain, ICE server URLs, the secret
    /// shared with the gateway and TURN server, and how long minted credentials last.
    pub web_call_websocket_url: Option<String>,
    pub web_call_sip_domain: Option<String>,
    pub web_call_ice_servers: Option<Vec<String>>,
    pub web_call_secret: Option<String>,
    pub web_call_credential_seconds: Option<u64>,
    /// Live voice: the base URL clients reach the API at (recording links); default from `listen`.
    /// An `https://` URL also makes dashboard cookies `Secure`.
    pub public_url: Option<String>,
    /// How long a dashboard sign-in lasts (default 12 hours).
    pub dashboard_session_hours: Option<u64>,
    /// The address media (WebRTC UDP) sockets bind to; default the `listen` address's (loopback
    /// stays loopback; `0.0.0.0` needs `media_public_address`).
    pub media_address: Option<std::net::IpAddr>,
    /// The address put in ICE candidates, behind NAT the public one; default `media_address`.
    pub media_public_address: Option<std::net::IpAddr>,
    /// UDP ports for media, `FIRST-LAST` (default 40000-40999): one per live call.
    pub media_ports: Option<String>,
    /// No audio from a browser for this long ends its call as dropped (default 15 s).
    pub media_timeout_seconds: Option<u64>,
    /// Speech engines: `stt` = whisper | openai | none (default whisper), `tts` = auto | piper |
    /// espeak | openai | none (default auto: piper when installed, else espeak); models are looked for in `speech_dir` (default ~/.cache/voxd/speech,
    /// where `scripts/speech.sh install` puts them).
    pub stt: Option<String>,
    pub tts: Option<String>,
    pub speech_dir: Option<PathBuf>,
    /// For `openai` speech: an OpenAI-compatible server (`…/v1`); its key in VOXD_SPEECH_API_KEY.
    pub speech_base_url: Option<String>,
    /// Record live calls (default true; a script's `settings.recording: false` turns it off for it).
    pub recordings: Option<bool>,
    /// Run no web-call gateway in this process.
    pub voice_disabled: Option<bool>,
    /// Where the SIP endpoint for trunks listens (UDP), `off` for none; default the listen
    /// address's IP, port 5060.
    pub sip_listen: Option<String>,
    /// How long an outbound call over a trunk may ring before it is cancelled (default 45).
    pub ring_timeout_seconds: Option<u64>,
    /// Tell answering machines from people on outbound trunk calls (default true): a machine
    /// gets the script's voicemail message after its greeting, and the call ends `voicemail`.
    pub answering_machine_detection: Option<bool>,
    /// Twilio's REST API (default https://api.twilio.com): teams' Twilio numbers place calls
    /// there. Twilio must reach `public_url` for its webhooks and media streams.
    pub twilio_api_base: Option<String>,
}

/// Live voice, resolved.
#[derive(Debug, Clone)]
pub struct VoiceSettings {
    pub enabled: bool,
    pub public_url: String,
    pub media: crate::voice::webrtc::MediaSettings,
    pub media_timeout: std::time::Duration,
    pub stt: String,
    pub tts: String,
    pub speech_dir: PathBuf,
    pub speech_base_url: Option<String>,
    /// Where recordings go; None: off.
    pub recordings: Option<PathBuf>,
    /// The SIP endpoint for trunks; None: off.
    pub sip_listen: Option<SocketAddr>,
    pub ring_timeout: std::time::Duration,
    pub machine_detection: bool,
    pub twilio_api_base: String,
}

/// `FIRST-LAST` as a port range.
fn parse_ports(text: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let bad = || format!("media_ports `{text}`: give FIRST-LAST, e.g. 40000-40999");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok(a..=b)
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub db: DbOptions,
    pub log_format: LogFormat,
    pub api: ApiSettings,
    /// Default concurrent-call limit per team (used by call dispatch).
    pub max_concurrent_calls: u32,
    pub allow_private_network: bool,
    pub sim_delays: crate::carrier::sim::SimDelays,
    pub dispatch_lease: std::time::Duration,
    pub dispatcher_enabled: bool,
    pub calls_per_second_per_number: u32,
    pub automations: crate::automations::AutomationSettings,
    pub automations_enabled: bool,
    pub smtp_url: Option<String>,
    pub smtp_from: String,
    pub voice: VoiceSettings,
}

impl Settings {
    pub fn resolve(global: &DbArgs, log_format: Option<LogFormat>, serve: &ServeArgs) -> anyhow::Result<Self> {
        let file: FileConfig = match &global.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = global
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let url = match global.database_url.clone().or(file.database_url) {
            Some(url) => url,
            None => {
                // The default data dir is the one folder voxd makes itself.
                std::fs::create_dir_all(&data_dir)
                    .map_err(|e| anyhow::anyhow!("cannot create the data dir {}: {e}", data_dir.display()))?;
                default_sqlite_url(&data_dir)
            }
        };
        let defaults = ApiSettings::default();
        let listen = match (serve.listen, &file.listen) {
            (Some(a), _) => a,
            (None, Some(text)) => parse_listen(text).map_err(|e| anyhow::anyhow!("config `listen`: {e}"))?,
            (None, None) => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let voice = {
            let d = crate::voice::webrtc::MediaSettings::default();
            let bind = file.media_address.unwrap_or(listen.ip());
            VoiceSettings {
                enabled: !file.voice_disabled.unwrap_or(false),
                public_url: file.public_url.clone().unwrap_or_else(|| {
                    let host = if listen.ip().is_unspecified() {
                        "127.0.0.1".to_owned()
                    } else {
                        listen.ip().to_string()
                    };
                    match listen.ip() {
                        std::net::IpAddr::V6(_) if !listen.ip().is_unspecified() => {
                            format!("http://[{host}]:{}", listen.port())
                        }
                        _ => format!("http://{host}:{}", listen.port()),
                    }
                }),
                media: crate::voice::webrtc::MediaSettings {
                    bind,
                    public: file.media_public_address,
                    ports: match &file.media_ports {
                        Some(p) => parse_ports(p).map_err(anyhow::Error::msg)?,
                        None => d.ports,
                    },
                    ..d
                },
                media_timeout: std::time::Duration::from_secs(file.media_timeout_seconds.unwrap_or(15).max(1)),
                sip_listen: match file.sip_listen.as_deref().map(str::trim) {
                    Some("off") => None,
                    Some(text) => Some(parse_listen(text).map_err(|e| anyhow::anyhow!("config `sip_listen`: {e}"))?),
                    None => Some(SocketAddr::new(listen.ip(), 5060)),
                },
                ring_timeout: std::time::Duration::from_secs(file.ring_timeout_seconds.unwrap_or(45).clamp(5, 300)),
                machine_detection: file.answering_machine_detection.unwrap_or(true),
                twilio_api_base: file
                    .twilio_api_base
                    .clone()
                    .unwrap_or_else(|| "https://api.twilio.com".into())
                    .trim_end_matches('/')
                    .to_owned(),
                stt: file.stt.clone().unwrap_or_else(|| "whisper".into()),
                tts: file.tts.clone().unwrap_or_else(|| "auto".into()),
                speech_dir: file
                    .speech_dir
                    .clone()
                    .unwrap_or_else(crate::voice::speech::default_speech_dir),
                speech_base_url: file.speech_base_url.clone(),
                recordings: file.recordings.unwrap_or(true).then(|| data_dir.join("recordings")),
            }
        };
        let allow_private_network = serve.allow_private_network || file.allow_private_network.unwrap_or(false);
        Ok(Settings {
            voice,
            listen,
            db: DbOptions {
                url,
                max_connections: file.database_max_connections.unwrap_or(8),
            },
            log_format: log_format.or(file.log_format).unwrap_or_default(),
            api: ApiSettings {
                requests_per_second: serve
                    .requests_per_second
                    .or(file.requests_per_second)
                    .unwrap_or(defaults.requests_per_second),
                max_body_bytes: file.max_body_bytes.unwrap_or(defaults.max_body_bytes),
                key_cache_ttl: file
                    .key_cache_seconds
                    .map(std::time::Duration::from_secs)
                    .unwrap_or(defaults.key_cache_ttl),
                unauthenticated_per_second: file
                    .unauthenticated_requests_per_second
                    .unwrap_or(defaults.unauthenticated_per_second),
                allow_private_network,
                metrics_token: std::env::var("VOXD_METRICS_TOKEN")
                    .ok()
                    .or(file.metrics_token)
                    .filter(|t| !t.is_empty())
                    .map(crate::api::metrics::MetricsToken),
                trusted_proxy_header: match serve.trusted_proxy_header.clone().or(file.trusted_proxy_header) {
                    None => None,
                    Some(h) => Some(
                        axum::http::HeaderName::try_from(h.trim().to_ascii_lowercase())
                            .map_err(|_| anyhow::anyhow!("trusted_proxy_header `{h}` is not a header name"))?,
                    ),
                },
                dashboard: crate::api::DashboardSettings {
                    session_ttl: file
                        .dashboard_session_hours
                        .map(|h| std::time::Duration::from_secs(h.clamp(1, 24 * 30) * 3600))
                        .unwrap_or(defaults.dashboard.session_ttl),
                    secure_cookies: file.public_url.as_deref().is_some_and(|u| u.starts_with("https://")),
                },
                web_calls: {
                    let d = crate::api::WebCallSettings::default();
                    crate::api::WebCallSettings {
                        websocket_url: file.web_call_websocket_url.or(d.websocket_url),
                        sip_domain: file.web_call_sip_domain.or(d.sip_domain),
                        ice_servers: file.web_call_ice_servers.unwrap_or(d.ice_servers),
                        secret: std::env::var("VOXD_WEB_CALL_SECRET")
                            .ok()
                            .or(file.web_call_secret)
                            .map(String::into_bytes)
                            .unwrap_or_default(),
                        credential_ttl: file
                            .web_call_credential_seconds
                            .map(std::time::Duration::from_secs)
                            .unwrap_or(d.credential_ttl),
                    }
                },
            },
            max_concurrent_calls: file.max_concurrent_calls.unwrap_or(10),
            allow_private_network,
            dispatch_lease: std::time::Duration::from_secs(file.dispatch_lease_seconds.unwrap_or(120).max(1)),
            dispatcher_enabled: !file.dispatcher_disabled.unwrap_or(false),
            calls_per_second_per_number: file.calls_per_second_per_number.unwrap_or(10),
            automations: {
                let d = crate::automations::AutomationSettings::default();
                crate::automations::AutomationSettings {
                    lease: file
                        .automation_lease_seconds
                        .map(|s| std::time::Duration::from_secs(s.max(1)))
                        .unwrap_or(d.lease),
                    step_attempts: file.automation_step_attempts.unwrap_or(d.step_attempts).max(1),
                    delivery_attempts: file.webhook_delivery_attempts.unwrap_or(d.delivery_attempts).max(1),
                    retry_base: file
                        .retry_base_ms
                        .map(std::time::Duration::from_millis)
                        .unwrap_or(d.retry_base),
                    retry_cap: file
                        .retry_cap_seconds
                        .map(std::time::Duration::from_secs)
                        .unwrap_or(d.retry_cap),
                    allow_private_network,
                    ..d
                }
            },
            automations_enabled: !file.automations_disabled.unwrap_or(false),
            smtp_url: std::env::var("VOXD_SMTP_URL").ok().or(file.smtp_url),
            smtp_from: file.smtp_from.unwrap_or_else(|| "voxd@localhost".into()),
            sim_delays: crate::carrier::sim::SimDelays {
                ring: std::time::Duration::from_millis(file.sim_ring_ms.unwrap_or(2000)),
                answer: std::time::Duration::from_millis(file.sim_answer_ms.unwrap_or(1000)),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_listen;

    #[test]
    fn listen_addresses_take_host_names() {
        assert_eq!(parse_listen("127.0.0.1:8080").unwrap().port(), 8080);
        assert!(parse_listen("localhost:9090").unwrap().ip().is_loopback());
        assert_eq!(parse_listen("[::1]:80").unwrap().port(), 80);
        assert!(parse_listen("localhost").unwrap_err().contains("no port"));
        assert!(parse_listen("localhost:http-ish")
            .unwrap_err()
            .contains("e.g. 127.0.0.1:8080"));
    }
}
