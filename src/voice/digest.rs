//! SIP digest authentication (RFC 3261 §22, RFC 2617 with `qop=auth`, MD5 as every softphone
//! does it): the web-call gateway's challenges, and the answers voxd gives a SIP trunk that
//! challenges it ([`answer`]). The password is never sent: the browser proves it knows the
//! ephemeral password minted for its call (`domain::web_call`). Nonces are stateless: a time and a
//! MAC over it, so any replica behind the same database verifies any other's challenge.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long a challenge's nonce is accepted.
pub const NONCE_SECONDS: i64 = 300;

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

fn nonce_mac(secret: &[u8], issued: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("sip-nonce:{issued}").as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

pub fn nonce(secret: &[u8], now_unix: i64) -> String {
    format!("{now_unix:x}.{}", nonce_mac(secret, now_unix))
}

fn nonce_valid(secret: &[u8], nonce: &str, now_unix: i64) -> bool {
    let Some((issued, mac)) = nonce.split_once('.') else {
        return false;
    };
    let Ok(issued) = i64::from_str_radix(issued, 16) else {
        return false;
    };
    let fresh = issued <= now_unix + 5 && now_unix - issued <= NONCE_SECONDS;
    fresh && bool::from(nonce_mac(secret, issued).as_bytes().ct_eq(mac.as_bytes()))
}

/// The `WWW-Authenticate` value of a 401.
pub fn challenge(realm: &str, nonce: &str) -> String {
    format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"")
}

/// An `Authorization` header's digest parameters.
#[derive(Debug, Default)]
pub struct Authorization {
    pub params: HashMap<String, String>,
}

impl Authorization {
    pub fn parse(value: &str) -> Option<Authorization> {
        let rest = value.trim().strip_prefix("Digest")?.trim_start();
        let mut params = HashMap::new();
        let mut chars = rest.char_indices().peekable();
        // key=value or key="quoted, value", separated by commas.
        loop {
            while matches!(chars.peek(), Some((_, c)) if *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let Some(&(start, _)) = chars.peek() else { break };
            let mut eq = None;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    eq = Some(i);
                    break;
                }
            }
            let eq = eq?;
            let key = rest[start..eq].trim().to_ascii_lowercase();
            let value = if matches!(chars.peek(), Some((_, '"'))) {
                chars.next();
                let mut v = String::new();
                let mut escaped = false;
                for (_, c) in chars.by_ref() {
                    match c {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        c => {
                            v.push(c);
                            escaped = false;
                        }
                    }
                }
                v
            } else {
                let mut v = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    v.push(c);
                    chars.next();
                }
                v.trim().to_owned()
            };
            params.insert(key, value);
        }
        Some(Authorization { params })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// Whether the nonce is one we issued, still fresh.
    pub fn nonce_fresh(&self, secret: &[u8], now_unix: i64) -> bool {
        self.get("nonce").is_some_and(|n| nonce_valid(secret, n, now_unix))
    }

    pub fn username(&self) -> Option<&str> {
        self.get("username")
    }

    /// Whether the response proves `password` for `method`, under a nonce we issued that is
    /// still fresh. Compared in constant time.
    pub fn verify(&self, secret: &[u8], method: &str, password: &str, now_unix: i64) -> bool {
        let (Some(user), Some(realm), Some(nonce), Some(uri), Some(response)) = (
            self.get("username"),
            self.get("realm"),
            self.get("nonce"),
            self.get("uri"),
            self.get("response"),
        ) else {
            return false;
        };
        if !matches!(self.get("algorithm"), None | Some("MD5") | Some("md5")) || !nonce_valid(secret, nonce, now_unix) {
            return false;
        }
        let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let expected = match self.get("qop") {
            Some("auth") => {
                let (Some(nc), Some(cnonce)) = (self.get("nc"), self.get("cnonce")) else {
                    return false;
                };
                md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
            }
            None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
            Some(_) => return false,
        };
        bool::from(expected.as_bytes().ct_eq(response.to_ascii_lowercase().as_bytes()))
    }
}

/// What a client sends back for a server's challenge (`WWW-Authenticate` / `Proxy-Authenticate`):
/// the `Authorization` value for `method` on `uri`, with `qop=auth` when the server offers it.
pub fn answer(challenge: &str, username: &str, password: &str, method: &str, uri: &str) -> Option<String> {
    let c = Authorization::parse(challenge)?;
    let (realm, nonce) = (c.get("realm")?, c.get("nonce")?);
    let hash = |s: String| md5_hex(&s);
    let ha1 = hash(format!("{username}:{realm}:{password}"));
    let ha2 = hash(format!("{method}:{uri}"));
    let opaque = c.get("opaque").map(|o| format!(", opaque=\"{o}\"")).unwrap_or_default();
    let offers_auth = c.get("qop").is_some_and(|q| q.split(',').any(|q| q.trim() == "auth"));
    Some(if offers_auth {
        let cnonce = hex::encode(rand::random::<[u8; 8]>());
        let response = hash(format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"));
        format!(
            "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"{cnonce}\"{opaque}"
        )
    } else {
        let response = hash(format!("{ha1}:{nonce}:{ha2}"));
        format!(
            "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm=MD5{opaque}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a softphone computes for a challenge.
    fn answer(user: &str, password: &str, nonce: &str, method: &str, uri: &str) -> String {
        let ha1 = md5_hex(&format!("{user}:voxd:{password}"));
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let response = md5_hex(&format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
        format!(
            "Digest algorithm=MD5, username=\"{user}\", realm=\"voxd\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", qop=auth, cnonce=\"abc\", nc=00000001"
        )
    }

    #[test]
    fn a_softphones_answer_verifies_and_nothing_else_does() {
        let now = 1_800_000_000;
        let n = nonce(b"k", now);
        let header = answer("1800000300:call", "pw", &n, "INVITE", "sip:call@voxd");
        let auth = Authorization::parse(&header).unwrap();
        assert_eq!(auth.username(), Some("1800000300:call"));
        assert!(auth.verify(b"k", "INVITE", "pw", now + 10));
        assert!(!auth.verify(b"k", "INVITE", "other", now + 10), "wrong password");
        assert!(!auth.verify(b"k", "BYE", "pw", now + 10), "another method");
        assert!(
            !auth.verify(b"other", "INVITE", "pw", now + 10),
            "a nonce we did not issue"
        );
        assert!(
            !auth.verify(b"k", "INVITE", "pw", now + NONCE_SECONDS + 1),
            "a stale nonce"
        );
        assert!(Authorization::parse("Basic abc").is_none());
    }

    #[test]
    fn the_challenge_names_realm_and_nonce() {
        let c = challenge("voxd", "n1");
        let parsed = Authorization::parse(&c).unwrap();
        assert_eq!(parsed.get("realm"), Some("voxd"));
        assert_eq!(parsed.get("nonce"), Some("n1"));
        assert_eq!(parsed.get("qop"), Some("auth"));
    }
}
