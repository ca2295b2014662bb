//! The one error type of the HTTP API and its mapping to status codes. Every error leaves as the
//! contract's envelope: `{"success": false, "message": "...", "code": "..."}`, sometimes with detail
//! fields (the failing `errors`, an existing resource's id).

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::{domain::FieldError, store::StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        message: String,
        details: Map<String, Value>,
    },
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but the request lacks what this credential needs (a dashboard session's
    /// CSRF token).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict {
        message: String,
        details: Map<String, Value>,
    },
    /// Well-formed, but a rule of the team refuses it (422 with the rule's own code, e.g.
    /// `do_not_call`).
    #[error("{message}")]
    Refused { message: String, code: &'static str },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The error envelope, as documented in our OpenAPI.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always false.
    pub success: bool,
    /// What went wrong, in words; names the field for input errors.
    pub message: String,
    /// Stable machine-readable kind: bad_request, unauthorized, forbidden, not_found, method_not_allowed,
    /// conflict, do_not_call (422: the number is on the team's do-not-call list),
    /// payload_too_large, unsupported_media_type, rate_limited, unavailable, internal.
    pub code: String,
    /// Individual problems, when there are several (e.g. schema violations).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Value>>,
    /// 400: the request field at fault (a JSON path such as `contact.phone_number`, or a query
    /// parameter).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// 409 of create-contact: the contact that already has the phone number.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    /// 409 when a contact already has another object of the type: that object.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// 409 of cancel/reschedule/end: the call's progress, which does not allow it.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            details: Map::new(),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::Conflict {
            message: message.into(),
            details: Map::new(),
        }
    }

    /// Adds a detail field to a 400 or 409 body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let ApiError::BadRequest { details, .. } | ApiError::Conflict { details, .. } = &mut self {
            details.insert(key.to_owned(), value.into());
        }
        self
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            ApiError::Refused { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<crate::objects::ObjectError> for ApiError {
    fn from(e: crate::objects::ObjectError) -> Self {
        crate::calls::CreateCallError::from(e).into()
    }
}

impl From<crate::calls::CreateCallError> for ApiError {
    fn from(e: crate::calls::CreateCallError) -> Self {
        use crate::calls::CreateCallError as E;
        match e {
            E::Invalid(f) => f.into(),
            E::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            E::Violations { message, errors } => {
                let errors = serde_json::to_value(errors).unwrap_or_default();
                ApiError::bad_request(message).with("errors", errors)
            }
            e @ E::ContactHasOther { object_id, .. } => {
                ApiError::conflict(e.to_string()).with("object_id", object_id.to_string())
            }
            e @ E::DoNotCall(_) => ApiError::Refused {
                message: e.to_string(),
                code: "do_not_call",
            },
            E::Store(s) => s.into(),
        }
    }
}

impl From<crate::import::CsvError> for ApiError {
    fn from(e: crate::import::CsvError) -> Self {
        use crate::import::CsvError as E;
        match e {
            e @ E::TooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
            E::Unreadable(why) => ApiError::bad_request(why).with("field", "body"),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::bad_request(e.to_string()).with("field", e.field)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let message = match &self {
            // The cause goes to the log with the request id; the client learns nothing internal.
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = Map::new();
        body.insert("success".into(), false.into());
        body.insert("message".into(), message.into());
        body.insert("code".into(), code.into());
        if let ApiError::BadRequest { details, .. } | ApiError::Conflict { details, .. } = self {
            body.extend(details);
        }
        let mut response = (status, Json(Value::Object(body))).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
