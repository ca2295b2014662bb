//! Secrets voxd must give back to someone else (a SIP trunk's password), sealed at rest with
//! AES-256-GCM under a server key: a copy of the database rows alone does not reveal them. The key
//! is `VOXD_SEAL_KEY` (64 hex digits) when set, else a server secret kept in the database (which
//! then protects against leaked rows, not a leaked database).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

pub struct SealKey(LessSafeKey);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(***)")
    }
}

impl SealKey {
    pub fn new(key: &[u8]) -> Result<SealKey, String> {
        let key = UnboundKey::new(&AES_256_GCM, key).map_err(|_| "a seal key is 32 bytes".to_string())?;
        Ok(SealKey(LessSafeKey::new(key)))
    }

    /// The key from `VOXD_SEAL_KEY` (hex), if set.
    pub fn from_env() -> Option<Result<SealKey, String>> {
        let hex_key = std::env::var("VOXD_SEAL_KEY").ok().filter(|k| !k.is_empty())?;
        Some(
            hex::decode(hex_key.trim())
                .map_err(|_| "VOXD_SEAL_KEY must be 64 hex digits".to_string())
                .and_then(|k| SealKey::new(&k)),
        )
    }

    /// A random nonce, then the ciphertext and tag. `context` (e.g. the row's id) is bound in:
    /// a sealed value copied to another row does not open there.
    pub fn seal(&self, plain: &str, context: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut data = plain.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context), &mut data)
            .expect("AES-GCM seals any input under 64 GiB");
        let mut out = nonce.to_vec();
        out.extend(data);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Option<String> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(context), &mut data).ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_their_key_and_context_only() {
        let key = SealKey::new(&[7; 32]).unwrap();
        let sealed = key.seal("s3cret", b"row-1");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_ne!(sealed, key.seal("s3cret", b"row-1"), "a fresh nonce each time");
        assert_eq!(key.open(&sealed, b"row-1").as_deref(), Some("s3cret"));
        assert_eq!(key.open(&sealed, b"row-2"), None);
        assert_eq!(SealKey::new(&[8; 32]).unwrap().open(&sealed, b"row-1"), None);
        assert_eq!(key.open(&sealed[..5], b"row-1"), None);
        assert!(SealKey::new(&[1; 16]).is_err());
    }
}
