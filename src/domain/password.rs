//! Dashboard passwords: argon2id with a random salt, kept as PHC strings (the parameters travel
//! with the hash, so stronger ones can come later without breaking old hashes).

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};

pub const MIN_LENGTH: usize = 10;
/// Hashing cost grows with the input; a sign-in form is no place for megabytes.
pub const MAX_LENGTH: usize = 256;

/// Why a new password is refused.
pub fn check_new(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(format!("a password needs at least {MIN_LENGTH} characters"));
    }
    if password.len() > MAX_LENGTH {
        return Err(format!("a password has at most {MAX_LENGTH} bytes"));
    }
    Ok(())
}

pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any input")
        .to_string()
}

/// Whether the password matches the stored hash (argon2's own comparison is constant-time).
pub fn verify(stored: &str, password: &str) -> bool {
    if password.len() > MAX_LENGTH {
        return false;
    }
    PasswordHash::new(stored).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when no user has the email, so that a sign-in takes as long for an
/// unknown email as for a wrong password.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("no user has this password"))
}

/// A password to hand out when the operator gives none: 16 characters from an unambiguous
/// alphabet (about 80 bits).
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash("correct horse battery");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "correct horse battery"));
        assert!(!verify(&h, "correct horse batterY"));
        assert!(!verify("not a phc string", "correct horse battery"));
        assert_ne!(h, hash("correct horse battery"), "salted");
        assert!(!verify(decoy(), ""));
    }

    #[test]
    fn new_passwords_have_a_length_range() {
        assert!(check_new("short").is_err());
        assert!(check_new(&"x".repeat(MAX_LENGTH + 1)).is_err());
        assert!(check_new("ten chars!").is_ok());
        assert_eq!(generate().len(), 16);
        assert!(check_new(&generate()).is_ok());
    }
}
