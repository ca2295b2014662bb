//! A team's Twilio account, with every rule about it in one place (the API's `/twilio` comes
//! here): the account SID is `AC` and 32 hex digits and belongs to one team, the auth token is
//! sealed to the team before it is stored and never given back.

use uuid::Uuid;

use crate::{
    domain::{now, FieldError},
    store::{twilio::TwilioAccount, Db, OnUnique, StoreError},
    trunks::seal_key,
};

#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("another team has this Twilio account")]
    Taken,
    #[error("the team has no Twilio account")]
    NotFound,
    #[error("the seal key is unusable: {0}")]
    SealKey(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An account's credentials, opened: what REST calls and signature checks need.
#[derive(Clone)]
pub struct Credentials {
    pub account_sid: String,
    pub auth_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.account_sid)
    }
}

fn check_sid(sid: &str) -> Result<(), FieldError> {
    let hex = sid.strip_prefix("AC").unwrap_or_default();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FieldError::new(
            "account_sid",
            "is not a Twilio account SID (AC and 32 hex digits)",
        ));
    }
    Ok(())
}

fn check_token(token: &str) -> Result<(), FieldError> {
    if token.len() < 16 || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FieldError::new(
            "auth_token",
            "is not a Twilio auth token (16 to 128 printable characters, no spaces)",
        ));
    }
    Ok(())
}

/// Sets (or replaces) the team's account.
pub async fn set(db: &Db, team_id: Uuid, account_sid: &str, auth_token: &str) -> Result<TwilioAccount, TwilioError> {
    let account_sid = account_sid.trim();
    check_sid(account_sid)?;
    check_token(auth_token)?;
    let seal = seal_key(db).await.map_err(|e| TwilioError::SealKey(e.to_string()))?;
    let at = now();
    let account = TwilioAccount {
        team_id,
        account_sid: account_sid.to_owned(),
        auth_token: seal.seal(auth_token, team_id.as_bytes()),
        created_at: at,
        updated_at: at,
    };
    let stored = db.put_twilio_account(&account).await.on_unique(|| TwilioError::Taken)?;
    tracing::info!(%team_id, account_sid = %stored.account_sid, "Twilio account set");
    Ok(stored)
}

/// The team's account with its token opened; `NotFound` without one.
pub async fn credentials(db: &Db, team_id: Uuid) -> Result<Credentials, TwilioError> {
    let account = db.twilio_account(team_id).await?.ok_or(TwilioError::NotFound)?;
    open(db, &account).await
}

/// The token of a stored account, opened.
pub async fn open(db: &Db, account: &TwilioAccount) -> Result<Credentials, TwilioError> {
    let seal = seal_key(db).await.map_err(|e| TwilioError::SealKey(e.to_string()))?;
    let auth_token = seal
        .open(&account.auth_token, account.team_id.as_bytes())
        .ok_or_else(|| TwilioError::SealKey("the auth token does not open (the seal key changed?)".into()))?;
    Ok(Credentials {
        account_sid: account.account_sid.clone(),
        auth_token,
    })
}

/// Forgets the team's account.
pub async fn remove(db: &Db, team_id: Uuid) -> Result<(), TwilioError> {
    if !db.remove_twilio_account(team_id).await? {
        return Err(TwilioError::NotFound);
    }
    tracing::info!(%team_id, "Twilio account removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_sids_and_tokens() {
        assert!(check_sid("AC0123456789abcdef0123456789ABCDEF").is_ok());
        for bad in [
            "",
            "AC",
            "PN0123456789abcdef0123456789abcdef",
            "AC0123456789abcdef0123456789abcde",
            "AC0123456789abcdef0123456789abcdeg",
        ] {
            assert!(check_sid(bad).is_err(), "{bad}");
        }
        assert!(check_token("0123456789abcdef0123456789abcdef").is_ok());
        for bad in ["short", "has a space in it 0123456789", &"x".repeat(129)] {
            assert!(check_token(bad).is_err(), "{bad}");
        }
    }
}
