//! trafficsim: a deterministic discrete-event simulator of traffic through
//! Envoy Gateway. See ARCHITECTURE.md for the map of modules.

pub mod gateway;
pub mod time;
pub mod yaml;
