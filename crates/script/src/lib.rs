//! Lua scenarios: the sandbox and the scenario API.

pub mod sandbox;
