//! Conversations: Scripts, the engine that runs them turn by turn, the brains that drive it,
//! built-in functions and tools, simulated callees.

pub mod amounts;
pub mod analysis;
pub mod brain;
pub mod context;
pub mod engine;
pub mod eval;
pub mod functions;
pub mod persona;
pub mod script;
pub mod script_source;
pub mod suite;
pub mod summary;
pub mod text;
pub mod tools;
pub mod transcript;
pub mod vars;
pub mod when;
