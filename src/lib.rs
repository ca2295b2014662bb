//! voxd: a self-hostable AI voice-calling platform with a Voxworks-compatible REST API.
//!
//! `api` speaks HTTP, `domain` holds the rules (no I/O), `store` persists to SQLite or PostgreSQL.

pub mod api;
pub mod automations;
pub mod calls;
pub mod campaigns;
pub mod carrier;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conversation;
pub mod dispatcher;
pub mod do_not_call;
pub mod domain;
pub mod import;
pub mod lists;
pub mod metrics;
pub mod numbers;
pub mod objects;
pub mod outbound;
pub mod retention;
pub mod session;
pub mod store;
pub mod trunks;
pub mod twilio;
pub mod voice;

/// The text a panic was raised with, when it has one (for the error recorded where a panic is
/// caught: a step, a call attempt).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}
