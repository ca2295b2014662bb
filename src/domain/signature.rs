//! Webhook signatures, both ways. Standard Webhooks (<https://www.standardwebhooks.com>):
//! `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature` (`v1,` + base64
//! HMAC-SHA256 of `id.timestamp.body`, several space-separated during a secret rotation), keyed
//! with the base64 bytes after `whsec_`. The timestamp is signed, so a captured request stops being
//! accepted after the tolerance, and the id lets a receiver drop a replay inside it. And the
//! Voxworks-style body-only HMAC (`X-Webhook-Signature`, hex), which cannot tell a replay.
//! Comparisons are constant-time (`Mac::verify_slice`).

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// How far a Standard Webhooks timestamp may be from now, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// A new Standard Webhooks secret: `whsec_` and 32 random bytes in base64.
pub fn new_standard_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

fn standard_mac(secret: &str, msg_id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .unwrap_or_else(|_| secret.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `v1,<base64 signature>` of a message with one secret.
pub fn standard_sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = standard_mac(secret, msg_id, &timestamp.to_string(), body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The three Standard Webhooks headers of a request, as received.
#[derive(Debug, Clone, Copy)]
pub struct StandardHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Checks a Standard Webhooks request at `now` (unix seconds); the error says what is wrong.
pub fn standard_verify(secret: &str, h: StandardHeaders<'_>, body: &[u8], now: i64) -> Result<(), String> {
    let (Some(id), Some(timestamp), Some(signature)) = (h.id, h.timestamp, h.signature) else {
        return Err("webhook-id, webhook-timestamp and webhook-signature are required for this hook".into());
    };
    if id.is_empty() || id.len() > 255 {
        return Err("webhook-id must be 1 to 255 characters".into());
    }
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| "webhook-timestamp must be unix seconds".to_owned())?;
    if (now - at).abs() > TOLERANCE_SECS {
        return Err(format!(
            "webhook-timestamp is more than {} minutes from now (replayed, or the sender's clock is off)",
            TOLERANCE_SECS / 60
        ));
    }
    let matches = signature.split_whitespace().any(|sig| {
        let Some(b64) = sig.strip_prefix("v1,") else {
            return false;
        };
        let Ok(given) = STANDARD.decode(b64) else { return false };
        standard_mac(secret, id, timestamp.trim(), body)
            .verify_slice(&given)
            .is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err("webhook-signature does not match the request".into())
    }
}

/// Checks `X-Webhook-Signature`: hex HMAC-SHA256 of the raw body, `sha256=` prefix optional.
pub fn body_verify(secret: &str, header: Option<&str>, body: &[u8]) -> bool {
    let Some(given) = header.map(str::trim) else {
        return false;
    };
    let given = given.strip_prefix("sha256=").unwrap_or(given);
    let Ok(bytes) = hex::decode(given) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

/// Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the account's auth token, of the
/// URL Twilio requested followed by each form parameter's name and value, sorted by name (a GET,
/// such as a Media Streams WebSocket, signs the URL alone).
pub fn twilio_sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(twilio_mac(auth_token, url, params).finalize().into_bytes())
}

fn twilio_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<sha1::Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// Checks `X-Twilio-Signature` (constant-time).
pub fn twilio_verify(auth_token: &str, url: &str, params: &[(String, String)], header: Option<&str>) -> bool {
    let Some(given) = header.and_then(|h| STANDARD.decode(h.trim()).ok()) else {
        return false;
    };
    twilio_mac(auth_token, url, params).verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_signature_matches_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = standard_sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn twilio_signature_matches_twilios_published_example() {
        // The example of Twilio's security documentation: its token, URL and parameters.
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let sig = twilio_sign("12345", url, &params);
        assert_eq!(sig, "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        assert!(twilio_verify("12345", url, &params, Some(&sig)));
        assert!(!twilio_verify("54321", url, &params, Some(&sig)));
        assert!(!twilio_verify(
            "12345",
            "https://mycompany.com/other",
            &params,
            Some(&sig)
        ));
        assert!(!twilio_verify("12345", url, &params[1..], Some(&sig)));
        assert!(!twilio_verify("12345", url, &params, Some("not base64!")));
        assert!(!twilio_verify("12345", url, &params, None));
    }

    #[test]
    fn standard_verification() {
        let secret = new_standard_secret();
        let (id, ts, body) = ("msg_1", 1_700_000_000, b"{\"a\":1}".as_slice());
        let sig = standard_sign(&secret, id, ts, body);
        let ts_text = ts.to_string();
        let h = |signature: &'static str| StandardHeaders {
            id: Some(id),
            timestamp: Some("1700000000"),
            signature: Some(signature),
        };
        let good = StandardHeaders {
            id: Some(id),
            timestamp: Some(&ts_text),
            signature: Some(&sig),
        };
        assert!(standard_verify(&secret, good, body, ts + 299).is_ok());
        assert!(standard_verify(&secret, good, body, ts - 299).is_ok());
        assert!(standard_verify(&secret, good, body, ts + 301)
            .unwrap_err()
            .contains("minutes"));
        assert!(standard_verify(&secret, good, b"{\"a\":2}", ts).is_err());
        assert!(standard_verify("whsec_b3RoZXI=", good, body, ts).is_err());
        // One of several (rotation) is enough; garbage is not.
        let both = format!("v1,AAAA {sig}");
        let rotated = StandardHeaders {
            signature: Some(&both),
            ..good
        };
        assert!(standard_verify(&secret, rotated, body, ts).is_ok());
        assert!(standard_verify(&secret, h("v1,!!!"), body, ts).is_err());
        assert!(standard_verify(&secret, h("v2,abc"), body, ts).is_err());
        let missing = StandardHeaders { id: None, ..good };
        assert!(standard_verify(&secret, missing, body, ts)
            .unwrap_err()
            .contains("required"));
    }

    #[test]
    fn body_signatures_with_and_without_prefix() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"{\"a\":1}");
        let hex = hex::encode(mac.finalize().into_bytes());
        assert!(body_verify("s3cret", Some(&hex), b"{\"a\":1}"));
        assert!(body_verify("s3cret", Some(&format!("sha256={hex}")), b"{\"a\":1}"));
        assert!(!body_verify("s3cret", Some(&hex), b"{\"a\":2}"));
        assert!(!body_verify("other", Some(&hex), b"{\"a\":1}"));
        assert!(!body_verify("s3cret", Some("zz"), b"{\"a\":1}"));
        assert!(!body_verify("s3cret", None, b"{\"a\":1}"));
    }
}
