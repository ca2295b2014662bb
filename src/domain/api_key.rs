//! API keys: 32 random bytes behind a recognisable prefix, shown once, stored as a SHA-256 digest.
//!
//! A fast digest is enough here: the key carries 256 bits of entropy, so there is nothing for a slow
//! password hash to protect against, and a digest lets the server find the key with one indexed lookup.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "vxd_";
/// How much of the key is kept in clear to recognise it in listings.
const SHOWN_CHARS: usize = 12;

pub struct NewKey {
    /// The full key: given to the user once, never stored.
    pub secret: String,
    /// The first characters, stored to tell keys apart.
    pub prefix: String,
    pub hash: Vec<u8>,
}

pub fn generate() -> NewKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewKey {
        prefix: secret[..SHOWN_CHARS].to_owned(),
        hash: hash(&secret),
        secret,
    }
}

pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_prefixed_and_hash_stably() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(PREFIX));
        assert_eq!(a.secret.len(), PREFIX.len() + 43);
        assert_eq!(a.hash, hash(&a.secret));
        assert!(a.secret.starts_with(&a.prefix));
    }
}
