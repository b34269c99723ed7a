//! What every test module shares.

pub mod fake;
pub mod interop;
pub mod layout;
pub mod registry;
