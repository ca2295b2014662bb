//! Phone numbers are identities: every number is stored in E.164, parsed with the team's region.

use phonenumber::{country, Mode};

use super::FieldError;

/// A team's default region, as an ISO 3166 alpha-2 code ("AU").
pub fn parse_region(code: &str) -> Result<country::Id, String> {
    code.trim()
        .to_ascii_uppercase()
        .parse::<country::Id>()
        .map_err(|_| format!("unknown region `{code}` (expected an ISO 3166 code such as AU)"))
}

/// Normalises `raw` to E.164, reading national formats in `region`. `0429069971` in AU → `+61429069971`.
pub fn normalize(field: &str, raw: &str, region: country::Id) -> Result<String, FieldError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if raw.len() > 32 {
        return Err(FieldError::new(field, "is too long to be a phone number"));
    }
    let number = phonenumber::parse(Some(region), raw)
        .map_err(|_| FieldError::new(field, format!("`{raw}` is not a phone number")))?;
    if !number.is_valid() {
        return Err(FieldError::new(field, format!("`{raw}` is not a valid phone number")));
    }
    Ok(number.format().mode(Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_and_international_forms_meet() {
        let au = parse_region("AU").unwrap();
        assert_eq!(normalize("p", "0429069971", au).unwrap(), "+61429069971");
        assert_eq!(normalize("p", "+61 429 069 971", au).unwrap(), "+61429069971");
        assert_eq!(normalize("p", "(02) 9123 4567", au).unwrap(), "+61291234567");
    }

    #[test]
    fn region_changes_the_reading() {
        let us = parse_region("us").unwrap();
        assert_eq!(normalize("p", "(415) 555-2671", us).unwrap(), "+14155552671");
    }

    #[test]
    fn rejects_non_numbers() {
        let au = parse_region("AU").unwrap();
        assert!(normalize("p", "hello", au).is_err());
        assert!(normalize("p", "123", au).is_err());
        assert!(normalize("p", "", au).is_err());
        assert!(parse_region("ZZ").is_err());
    }
}
