//! Which time zone a callee is in, for calling windows: the contact's own zone if it has one; else
//! the zone of the country the destination number belongs to, when that country keeps one zone;
//! else the team's zone.
//!
//! The country table lists only countries where every number of the country's calling code is in
//! one zone (their outlying islands with other zones have calling codes of their own, e.g. France's
//! overseas departments). Countries with several zones (AU, US, CA, BR, RU, MX, ID, ES with the
//! Canaries, PT with the Azores, …) are left out on purpose: their area codes do not follow zone
//! lines closely enough to guess from (in Australia, Tweed Heads in NSW dials on Queensland's 07 5
//! and Broken Hill in NSW on South Australia's 08 8, and mobiles carry no place at all), so for
//! them the team's zone is used unless the contact has one. New Zealand is listed with its one
//! exception spelt out: the Chatham Islands (`+64 3 305`) keep a zone 45 minutes ahead.

use chrono_tz::Tz;
use phonenumber::country::Id;

/// Where a call's time zone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneSource {
    Contact,
    Number,
    Team,
}

impl ZoneSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneSource::Contact => "contact",
            ZoneSource::Number => "number",
            ZoneSource::Team => "team",
        }
    }
}

/// Countries (ISO 3166) whose calling code covers one time zone, and that zone.
const SINGLE_ZONE: &[(Id, &str)] = &[
    (Id::AE, "Asia/Dubai"),
    (Id::AT, "Europe/Vienna"),
    (Id::BE, "Europe/Brussels"),
    (Id::CH, "Europe/Zurich"),
    (Id::CN, "Asia/Shanghai"),
    (Id::CZ, "Europe/Prague"),
    (Id::DE, "Europe/Berlin"),
    (Id::DK, "Europe/Copenhagen"),
    (Id::FI, "Europe/Helsinki"),
    (Id::FJ, "Pacific/Fiji"),
    (Id::FR, "Europe/Paris"),
    (Id::GB, "Europe/London"),
    // The Crown dependencies share the UK's +44 (and its clock).
    (Id::GG, "Europe/Guernsey"),
    (Id::GR, "Europe/Athens"),
    (Id::HK, "Asia/Hong_Kong"),
    (Id::HU, "Europe/Budapest"),
    (Id::IE, "Europe/Dublin"),
    (Id::IL, "Asia/Jerusalem"),
    (Id::IM, "Europe/Isle_of_Man"),
    (Id::IN, "Asia/Kolkata"),
    (Id::IS, "Atlantic/Reykjavik"),
    (Id::IT, "Europe/Rome"),
    (Id::JE, "Europe/Jersey"),
    (Id::JP, "Asia/Tokyo"),
    (Id::KR, "Asia/Seoul"),
    (Id::MY, "Asia/Kuala_Lumpur"),
    (Id::NL, "Europe/Amsterdam"),
    (Id::NO, "Europe/Oslo"),
    (Id::NZ, "Pacific/Auckland"),
    (Id::PH, "Asia/Manila"),
    (Id::PL, "Europe/Warsaw"),
    (Id::SA, "Asia/Riyadh"),
    (Id::SE, "Europe/Stockholm"),
    (Id::SG, "Asia/Singapore"),
    (Id::TH, "Asia/Bangkok"),
    (Id::TW, "Asia/Taipei"),
    (Id::VN, "Asia/Ho_Chi_Minh"),
    (Id::ZA, "Africa/Johannesburg"),
];

/// The zone of a single-zone country; `None` for countries with several (or not in the table).
pub fn zone_of_region(region: Id) -> Option<&'static str> {
    SINGLE_ZONE.iter().find(|(id, _)| *id == region).map(|(_, zone)| *zone)
}

/// The zone an E.164 number's country implies, when it implies one.
pub fn zone_of_number(e164: &str) -> Option<&'static str> {
    let number = phonenumber::parse(None, e164).ok()?;
    let region = number.country().id()?;
    if region == Id::NZ && number.national().value().to_string().starts_with("3305") {
        return Some("Pacific/Chatham");
    }
    zone_of_region(region)
}

/// The callee's zone: the contact's (when it names a real zone), else the number's country's,
/// else the team's.
pub fn callee_zone(contact: Option<&str>, to_number: &str, team: &str) -> (String, ZoneSource) {
    if let Some(tz) = contact.filter(|tz| tz.parse::<Tz>().is_ok()) {
        return (tz.to_owned(), ZoneSource::Contact);
    }
    if let Some(tz) = zone_of_number(to_number) {
        return (tz.to_owned(), ZoneSource::Number);
    }
    (team.to_owned(), ZoneSource::Team)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_zone_in_the_table_exists() {
        for (id, zone) in SINGLE_ZONE {
            assert!(zone.parse::<Tz>().is_ok(), "{id:?} → {zone}");
        }
    }

    #[test]
    fn the_contact_zone_wins() {
        assert_eq!(
            callee_zone(Some("Australia/Perth"), "+447400123456", "Australia/Sydney"),
            ("Australia/Perth".into(), ZoneSource::Contact)
        );
        // A zone that does not exist is not used.
        assert_eq!(
            callee_zone(Some("Mars/Olympus"), "+447400123456", "Australia/Sydney").1,
            ZoneSource::Number
        );
    }

    #[test]
    fn single_zone_countries_come_from_the_number() {
        for (number, zone) in [
            ("+447400123456", "Europe/London"),
            // +44 7911 is Guernsey's.
            ("+447911123456", "Europe/Guernsey"),
            ("+33612345678", "Europe/Paris"),
            ("+64211234567", "Pacific/Auckland"),
            ("+6433050000", "Pacific/Chatham"),
            ("+6591234567", "Asia/Singapore"),
        ] {
            assert_eq!(
                callee_zone(None, number, "Australia/Sydney"),
                (zone.into(), ZoneSource::Number),
                "{number}"
            );
        }
    }

    #[test]
    fn multi_zone_countries_fall_back_to_the_team() {
        for number in [
            "+61429069971",
            "+61891234567",
            "+14155552671",
            "+5511912345678",
            "not a number",
        ] {
            assert_eq!(
                callee_zone(None, number, "Australia/Sydney"),
                ("Australia/Sydney".into(), ZoneSource::Team),
                "{number}"
            );
        }
    }
}
