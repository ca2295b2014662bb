//! A team's phone numbers, with every rule about them in one place (the API's `/phone-numbers` and
//! `voxd number` both come here): numbers are stored in E.164 read in the team's region, a team
//! has each at most once, the script that answers one is an inbound script of the same team, and a
//! number that scheduled or running calls ring from cannot be removed.

use uuid::Uuid;

use crate::{
    calls::TeamScope,
    conversation::script::ScriptType,
    domain::{new_id, now, phone, FieldError},
    store::{
        numbers::{NumberInUse, PhoneNumber},
        Db, OnUnique, StoreError,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum NumberError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("the team already has the number {0}")]
    Taken(String),
    #[error("no such number")]
    NotFound,
    #[error("script {0} not found")]
    NoSuchScript(Uuid),
    #[error("script {0} is an outbound script; a number is answered by an inbound script")]
    NotInbound(Uuid),
    #[error("trunk {0} not found")]
    NoSuchTrunk(Uuid),
    #[error(
        "a number rings through a SIP trunk or through Twilio, not both: clear trunk_id first, or set twilio false"
    )]
    TwoCarriers,
    #[error("{0} calls that are scheduled or under way ring from this number; cancel them or let them end first")]
    InUse(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks that the script can answer the team's numbers.
async fn check_inbound_script(db: &Db, team_id: Uuid, script: Uuid) -> Result<(), NumberError> {
    let found = db
        .get_script(team_id, script)
        .await?
        .ok_or(NumberError::NoSuchScript(script))?;
    if found.definition.0.script_type != ScriptType::Inbound {
        return Err(NumberError::NotInbound(script));
    }
    Ok(())
}

/// Checks that the trunk is one of the team's.
async fn check_trunk(db: &Db, team_id: Uuid, trunk: Uuid) -> Result<(), NumberError> {
    db.get_trunk(team_id, trunk)
        .await?
        .map(|_| ())
        .ok_or(NumberError::NoSuchTrunk(trunk))
}

/// Adds a number (any common format) to the team, answered by `inbound_script` if given, its
/// calls ringing through `trunk` if given, or through the team's Twilio account with `twilio`.
pub async fn add(
    db: &Db,
    team: &TeamScope,
    number: &str,
    inbound_script: Option<Uuid>,
    trunk: Option<Uuid>,
    twilio: bool,
) -> Result<PhoneNumber, NumberError> {
    let e164 = phone::normalize("number", number, team.region)?;
    if trunk.is_some() && twilio {
        return Err(NumberError::TwoCarriers);
    }
    if let Some(script) = inbound_script {
        check_inbound_script(db, team.id, script).await?;
    }
    if let Some(trunk) = trunk {
        check_trunk(db, team.id, trunk).await?;
    }
    let n = PhoneNumber {
        id: new_id(),
        team_id: team.id,
        number: e164.clone(),
        inbound_script_id: inbound_script,
        trunk_id: trunk,
        twilio,
        created_at: now(),
    };
    db.add_number(&n).await.on_unique(|| NumberError::Taken(e164))?;
    Ok(n)
}

/// Changes (or clears) the script that answers one of the team's numbers.
pub async fn set_inbound_script(
    db: &Db,
    team_id: Uuid,
    id: Uuid,
    inbound_script: Option<Uuid>,
) -> Result<PhoneNumber, NumberError> {
    let change = Change {
        inbound_script: Some(inbound_script),
        ..Change::default()
    };
    update(db, team_id, id, change).await
}

/// Puts one of the team's numbers on one of its trunks, or (`None`) back on the simulated network.
pub async fn set_trunk(db: &Db, team_id: Uuid, id: Uuid, trunk: Option<Uuid>) -> Result<PhoneNumber, NumberError> {
    let change = Change {
        trunk: Some(trunk),
        ..Change::default()
    };
    update(db, team_id, id, change).await
}

/// What changes of a number: `None` leaves a part as it is; `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct Change {
    pub inbound_script: Option<Option<Uuid>>,
    pub trunk: Option<Option<Uuid>>,
    pub twilio: Option<bool>,
}

/// Changes what is given of a number, everything checked before anything is written.
pub async fn update(db: &Db, team_id: Uuid, id: Uuid, change: Change) -> Result<PhoneNumber, NumberError> {
    let Change {
        inbound_script,
        trunk,
        twilio,
    } = change;
    if let Some(Some(script)) = inbound_script {
        check_inbound_script(db, team_id, script).await?;
    }
    if let Some(Some(trunk)) = trunk {
        check_trunk(db, team_id, trunk).await?;
    }
    let mut n = db.get_number(team_id, id).await?.ok_or(NumberError::NotFound)?;
    let on_trunk = trunk.map_or(n.trunk_id.is_some(), |t| t.is_some());
    if on_trunk && twilio.unwrap_or(n.twilio) {
        return Err(NumberError::TwoCarriers);
    }
    if let Some(twilio) = twilio {
        n = db
            .set_number_twilio(team_id, id, twilio)
            .await?
            .ok_or(NumberError::NotFound)?;
    }
    if let Some(script) = inbound_script {
        n = db
            .set_inbound_script(team_id, id, script)
            .await?
            .ok_or(NumberError::NotFound)?;
    }
    if let Some(trunk) = trunk {
        n = db
            .set_number_trunk(team_id, id, trunk)
            .await?
            .ok_or(NumberError::NotFound)?;
    }
    Ok(n)
}

/// Removes one of the team's numbers.
pub async fn remove(db: &Db, team_id: Uuid, id: Uuid) -> Result<(), NumberError> {
    match db.remove_number(team_id, id).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(NumberError::NotFound),
        Err(e) => Err(e.refused_as(|NumberInUse::ActiveCalls(n)| NumberError::InUse(n))),
    }
}

/// The team's number written in any common format.
pub async fn find(db: &Db, team: &TeamScope, number: &str) -> Result<PhoneNumber, NumberError> {
    let e164 = phone::normalize("number", number, team.region)?;
    db.team_number(team.id, &e164).await?.ok_or(NumberError::NotFound)
}
