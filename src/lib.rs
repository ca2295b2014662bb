//! voxd: a self-hostable AI voice-calling platform with a Voxworks-compatible REST API.
//!
//! `api` speaks HTTP, `domain` holds the rules (no I/O), `store` persists to SQLite or PostgreSQL.

pub mod api;
pub mod automations;
pub mod carrier;
pub mod chat;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod dispatcher;
pub mod domain;
pub mod store;
