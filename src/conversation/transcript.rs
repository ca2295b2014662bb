//! The transcript of a conversation: who said what, when, at which step.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Assistant,
    User,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Turn {
    pub role: Role,
    pub text: String,
    /// Milliseconds from the start of the conversation.
    pub start_ms: i64,
    /// The step the conversation was on.
    pub step: Option<String>,
    /// An assistant turn the callee talked over (only voice steps can be interrupted).
    /// Absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub interrupted: bool,
}
