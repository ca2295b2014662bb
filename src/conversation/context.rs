//! What a conversation knows about where its call happens, fixed when the call starts: the team's
//! region (how the callee's phone numbers read) and the time zones that decide what "today",
//! "tomorrow" and "the next business day" mean.

use chrono_tz::Tz;
use phonenumber::country;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallContext {
    /// The team's region: numbers the callee says without a country code are read in it.
    pub region: country::Id,
    /// The team's time zone.
    pub team_timezone: Tz,
    /// The callee's time zone (the contact's, else the number's country's when it has one zone,
    /// else the team's): dates the callee hears and says are in it.
    pub callee_timezone: Tz,
}

impl CallContext {
    /// From stored text (team settings, the call's zone); what does not parse falls back to AU and
    /// UTC, with a warning, so a call still runs.
    pub fn from_settings(region: &str, team_timezone: &str, callee_timezone: &str) -> Self {
        let zone = |name: &str| {
            name.parse::<Tz>().unwrap_or_else(|_| {
                tracing::warn!(timezone = name, "unknown time zone; using UTC");
                chrono_tz::UTC
            })
        };
        let region = crate::domain::phone::parse_region(region).unwrap_or_else(|_| {
            tracing::warn!(region, "unknown region; using AU");
            country::Id::AU
        });
        CallContext {
            region,
            team_timezone: zone(team_timezone),
            callee_timezone: zone(callee_timezone),
        }
    }
}

impl Default for CallContext {
    fn default() -> Self {
        CallContext {
            region: country::Id::AU,
            team_timezone: chrono_tz::Australia::Sydney,
            callee_timezone: chrono_tz::Australia::Sydney,
        }
    }
}
