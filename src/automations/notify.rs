//! Notification channels of notification steps: email and SMS behind one trait, so tests record
//! what would be sent and servers send it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lettre::{message::Mailbox, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::{conversation::tools::SmsSender, domain::automation::Channel};

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub channel: Channel,
    pub to: String,
    pub subject: Option<String>,
    pub body: String,
}

/// Why a notification was not sent.
#[derive(Debug)]
pub enum SendError {
    /// Worth trying again (the relay is down, a timeout).
    Transient(String),
    /// Trying again will not help (no channel configured, address refused).
    Permanent(String),
}

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn send(&self, n: &Notification) -> Result<(), SendError>;
}

/// Keeps every notification instead of sending it (tests, `voxd` without channels configured is
/// not this: it refuses, see [`Channels`]).
#[derive(Default)]
pub struct RecordingNotifier(pub Mutex<Vec<Notification>>);

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn send(&self, n: &Notification) -> Result<(), SendError> {
        self.0.lock().expect("notifier lock").push(n.clone());
        Ok(())
    }
}

/// The server's channels: email over SMTP when an SMTP relay is configured, SMS through the SMS
/// sender. A channel that is not configured fails the step with a message saying so.
pub struct Channels {
    pub smtp: Option<Smtp>,
    pub sms: Option<Arc<dyn SmsSender>>,
}

#[async_trait]
impl Notifier for Channels {
    async fn send(&self, n: &Notification) -> Result<(), SendError> {
        match n.channel {
            Channel::Email => match &self.smtp {
                Some(smtp) => smtp.send(n).await,
                None => Err(SendError::Permanent(
                    "no email channel: set smtp_url (VOXD_SMTP_URL) to send email".into(),
                )),
            },
            Channel::Sms => match &self.sms {
                Some(sms) => sms.send(&n.to, &n.body).await.map_err(SendError::Transient),
                None => Err(SendError::Permanent(
                    "no SMS channel is configured on this server".into(),
                )),
            },
        }
    }
}

/// Email through an SMTP relay (`smtp://host:port`, e.g. the local MTA), plain SMTP: the relay is
/// expected on the same machine or network and does the onward delivery.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    relay: String,
}

impl Smtp {
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("smtp_url `{url}`: {e}"))?;
        if parsed.scheme() != "smtp" {
            return Err(format!("smtp_url `{url}` must start with smtp://"));
        }
        let host = parsed.host_str().unwrap_or("localhost").to_owned();
        let port = parsed.port().unwrap_or(25);
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("smtp_from `{from}`: {e}"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
            .port(port)
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        Ok(Smtp {
            transport,
            from,
            relay: format!("{host}:{port}"),
        })
    }

    async fn send(&self, n: &Notification) -> Result<(), SendError> {
        let to =
            n.to.parse::<Mailbox>()
                .map_err(|e| SendError::Permanent(format!("`{}` is not an email address: {e}", n.to)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(n.subject.clone().unwrap_or_default())
            .body(n.body.clone())
            .map_err(|e| SendError::Permanent(format!("could not build the email: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("SMTP relay {} refused: {e}", self.relay))),
            Err(e) => Err(SendError::Transient(format!("SMTP relay {}: {e}", self.relay))),
        }
    }
}
