//! Extractors that turn every malformed input into an `ApiError` (so into the envelope), naming the
//! field at fault.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Query, Request},
    http::{header, request::Parts, HeaderMap, StatusCode},
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;
use crate::domain::FieldError;

/// A JSON request body. A body sent without a content type is read as JSON (curl users forget the
/// header); one sent with another type is a 415. The body must parse, and fit the target type
/// exactly.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Refuses a body that says it is not JSON (`application/json` or any `+json` type).
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be application/json (got `{text}`); with curl, add -H 'Content-Type: application/json'"
        )))
    }
}

/// A JSON body that may be left out entirely (an empty body is `None`).
pub struct ApiOptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiOptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(ApiOptionalJson(None));
        }
        require_json(&headers)?;
        parse_json(&bytes).map(|v| ApiOptionalJson(Some(v)))
    }
}

pub(crate) async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("request body is too large".into())
        } else {
            ApiError::bad_request(format!("could not read the request body: {e}"))
        }
    })
}

/// Parses JSON into `T`, naming the path of the first bad field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::bad_request("a JSON request body is required")),
        // serde would read a struct from an array too; the API only takes objects.
        Some(b'{') => {}
        Some(_) => return Err(ApiError::bad_request("the request body must be a JSON object (a map)")),
    }
    refuse_nul(bytes)?;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("malformed JSON: {inner}"))
        } else if path == "." {
            ApiError::bad_request(strip_position(&inner.to_string()))
        } else {
            ApiError::bad_request(format!("{path}: {}", strip_position(&inner.to_string()))).with("field", path)
        }
    })
}

/// NUL cannot be stored in PostgreSQL text: a string holding one (`\u0000`) is refused on every
/// backend, naming where it is. Only bodies that spell the escape are parsed twice.
fn refuse_nul(bytes: &[u8]) -> Result<(), ApiError> {
    if !bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Ok(());
    }
    fn find(v: &serde_json::Value, at: &str) -> Option<String> {
        match v {
            serde_json::Value::String(s) => s.contains('\0').then(|| at.to_owned()),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, x)| find(x, &format!("{at}[{i}]"))),
            serde_json::Value::Object(m) => m.iter().find_map(|(k, x)| {
                let shown = k.replace('\0', "\\u0000");
                let here = if at.is_empty() { shown } else { format!("{at}.{shown}") };
                if k.contains('\0') {
                    Some(here)
                } else {
                    find(x, &here)
                }
            }),
            _ => None,
        }
    }
    // Malformed JSON is left for the real parse to report.
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    match find(&v, "") {
        None => Ok(()),
        Some(field) => Err(ApiError::bad_request(format!(
            "{field}: NUL characters (\\u0000) are not accepted in text"
        ))
        .with("field", field)),
    }
}

/// Like [`parse_json`] for an already parsed value (one item of a batch), with the item's place.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value, place: &str) -> Result<T, (String, String)> {
    if !value.is_object() {
        return Err((place.to_owned(), "must be a JSON object".to_owned()));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            place.to_owned()
        } else {
            format!("{place}.{path}")
        };
        (field, e.into_inner().to_string())
    })
}

/// serde_json appends " at line 1 column 17", which says nothing useful about a field.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Query parameters; a bad one is a 400 naming it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// An id from the path. A malformed id is reported like an unknown one: 404 `what not found`.
pub fn parse_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(format!("{what} not found")))
}

/// An id given in a body field or query parameter: a malformed one is a 400 naming the field (not a
/// 404, as in a path).
pub fn field_id(field: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw.trim()).map_err(|_| FieldError::new(field, format!("`{raw}` is not an id")).into())
}

/// A `text/csv` body, read as it streams in: 415 for another type, 413 when its declared length
/// is over `limit` (a body that says nothing is cut at the limit instead).
pub async fn csv_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: u64,
    batch: usize,
) -> Result<crate::import::CsvRows, ApiError> {
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.type_() == mime::TEXT && m.subtype() == "csv");
    if !csv {
        return Err(ApiError::UnsupportedMediaType("the body must be text/csv".into()));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(format!(
            "the file is larger than {limit} bytes"
        )));
    }
    Ok(crate::import::CsvRows::from_body(body, limit, batch).await?)
}
