//! Short-lived SIP/TURN credentials for browser web calls, in the ephemeral form that SIP proxies
//! (Kamailio `auth_ephemeral`) and TURN servers (the TURN REST API convention) verify with a shared
//! secret: the username carries the expiry (`<unix expiry>:<call id>`), the password is
//! base64(HMAC-SHA1(secret, username)). Nothing is stored: the gateway recomputes the password.

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha1::Sha1;

pub struct Credentials {
    pub username: String,
    pub password: String,
    pub expires_at: DateTime<Utc>,
}

pub fn credentials(secret: &[u8], call_id: &str, expires_at: DateTime<Utc>) -> Credentials {
    let username = format!("{}:{call_id}", expires_at.timestamp());
    Credentials {
        password: password(secret, &username),
        username,
        expires_at,
    }
}

/// The password of an ephemeral username.
pub fn password(secret: &[u8], username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// What a gateway does: recompute and compare in constant time, and refuse expired usernames.
pub fn verify(secret: &[u8], username: &str, password: &str, now: DateTime<Utc>) -> bool {
    let Some(expiry) = username.split(':').next().and_then(|e| e.parse::<i64>().ok()) else {
        return false;
    };
    if expiry < now.timestamp() {
        return false;
    }
    let Ok(given) = STANDARD.decode(password) else {
        return false;
    };
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_verify_until_they_expire() {
        let now: DateTime<Utc> = "2026-11-26T00:00:00Z".parse().unwrap();
        let c = credentials(b"s3cret", "call-1", now + chrono::Duration::minutes(5));
        assert_eq!(c.username, format!("{}:call-1", now.timestamp() + 300));
        assert!(verify(b"s3cret", &c.username, &c.password, now));
        assert!(!verify(b"other", &c.username, &c.password, now));
        assert!(!verify(
            b"s3cret",
            &c.username,
            &c.password,
            now + chrono::Duration::minutes(6)
        ));
        assert!(!verify(
            b"s3cret",
            &c.username.replace("call-1", "call-2"),
            &c.password,
            now
        ));
    }
}
