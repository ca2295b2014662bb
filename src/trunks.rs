//! A team's SIP trunks, with every rule about them in one place (the API's `/trunks` and `voxd
//! trunk` both come here): a trunk has a name unique in its team and a `sip:HOST[:PORT]` address,
//! its password is sealed before it is stored (and never given back), a password needs a
//! username, and a trunk that numbers ring through cannot be removed.

use uuid::Uuid;

use crate::{
    domain::{new_id, now, sealed::SealKey, FieldError},
    store::{trunks::Trunk, Db, OnUnique, StoreError},
};

/// Transports a trunk may name; only UDP is carried so far.
pub const TRANSPORTS: [&str; 1] = ["udp"];

#[derive(Debug, thiserror::Error)]
pub enum TrunkError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("the team has a trunk named {0} already")]
    Taken(String),
    #[error("no such trunk")]
    NotFound,
    #[error("{0} number(s) ring through this trunk; move them to another trunk or off it first")]
    InUse(i64),
    #[error("the seal key is unusable: {0}")]
    SealKey(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a new trunk is made of, as the API and the command line take it.
#[derive(Debug, Default)]
pub struct NewTrunk {
    pub name: String,
    pub uri: String,
    pub transport: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The key trunk passwords are sealed with: `VOXD_SEAL_KEY`, else a secret the database keeps.
pub async fn seal_key(db: &Db) -> Result<SealKey, TrunkError> {
    match SealKey::from_env() {
        Some(key) => key.map_err(TrunkError::SealKey),
        None => SealKey::new(&db.server_secret("trunk_seal", now()).await?).map_err(TrunkError::SealKey),
    }
}

/// `sip:HOST[:PORT]` (or `HOST[:PORT]`; URI parameters are ignored) as host and port, 5060 by default.
pub fn parse_uri(uri: &str) -> Result<(String, u16), FieldError> {
    let bad = || FieldError::new("uri", "is not a trunk address: give sip:HOST[:PORT]");
    let trimmed = uri.trim();
    if trimmed.len() > 255 {
        return Err(FieldError::new("uri", "is longer than 255 characters"));
    }
    let rest = trimmed.strip_prefix("sip:").unwrap_or(trimmed);
    let rest = rest.split(';').next().unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (
            h,
            p.parse::<u16>()
                .map_err(|_| FieldError::new("uri", "has a port that is not a number"))?,
        ),
        _ => (rest, 5060),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !host_ok || port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

fn optional(field: &'static str, value: Option<String>, max: usize) -> Result<Option<String>, FieldError> {
    match value {
        Some(v) if v.chars().count() > max => Err(FieldError::new(field, format!("is longer than {max} characters"))),
        Some(v) if v.chars().any(char::is_control) => Err(FieldError::new(field, "holds control characters")),
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Checks and stores a new trunk of the team, its password sealed to the trunk's id.
pub async fn add(db: &Db, team_id: Uuid, new: NewTrunk) -> Result<Trunk, TrunkError> {
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(FieldError::new("name", "is 1 to 100 characters").into());
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(FieldError::new("name", "holds control characters or a slash").into());
    }
    let (host, port) = parse_uri(&new.uri)?;
    let transport = new.transport.unwrap_or_else(|| "udp".into()).to_lowercase();
    if !TRANSPORTS.contains(&transport.as_str()) {
        let why = if ["tcp", "tls"].contains(&transport.as_str()) {
            format!("`{transport}` is not carried yet: only udp is")
        } else {
            format!("`{transport}` is not a transport (udp)")
        };
        return Err(FieldError::new("transport", why).into());
    }
    let username = optional("username", new.username, 128)?;
    let password = optional("password", new.password, 256)?;
    if password.is_some() && username.is_none() {
        return Err(FieldError::new("username", "is needed with a password").into());
    }
    let id = new_id();
    let sealed = match &password {
        Some(p) => Some(seal_key(db).await?.seal(p, id.as_bytes())),
        None => None,
    };
    let trunk = Trunk {
        id,
        team_id,
        name: name.clone(),
        host,
        port: i32::from(port),
        transport,
        username,
        password: sealed,
        created_at: now(),
    };
    db.add_trunk(&trunk).await.on_unique(|| TrunkError::Taken(name))?;
    tracing::info!(trunk_id = %trunk.id, host = %trunk.host, port = trunk.port, "trunk added");
    Ok(trunk)
}

/// Removes one of the team's trunks; refused while numbers ring through it.
pub async fn remove(db: &Db, team_id: Uuid, id: Uuid) -> Result<(), TrunkError> {
    let trunk = db.get_trunk(team_id, id).await?.ok_or(TrunkError::NotFound)?;
    let used = db.trunk_numbers(trunk.id).await?;
    if used > 0 {
        return Err(TrunkError::InUse(used));
    }
    if !db.remove_trunk(team_id, id).await? {
        return Err(TrunkError::NotFound);
    }
    tracing::info!(trunk_id = %id, "trunk removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunk_addresses() {
        assert_eq!(
            parse_uri("sip:sip.example.com").unwrap(),
            ("sip.example.com".into(), 5060)
        );
        assert_eq!(
            parse_uri(" sip:10.0.0.1:5080;transport=udp ").unwrap(),
            ("10.0.0.1".into(), 5080)
        );
        assert_eq!(parse_uri("pbx.local:5062").unwrap(), ("pbx.local".into(), 5062));
        assert_eq!(parse_uri("sip:[::1]:5070").unwrap(), ("::1".into(), 5070));
        for bad in [
            "",
            "sip:",
            "sip:user@host",
            "sip:host:0",
            "sip:host:99999",
            "sip:ho st",
            "http://x/y",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad} was taken");
        }
    }
}
