//! trafficsim: a deterministic discrete-event simulator of traffic through
//! Envoy Gateway. See ARCHITECTURE.md for the map of modules.

pub mod descriptor;
pub mod dist;
pub mod engine;
pub mod gateway;
pub mod local_rate_limit;
pub mod rng;
pub mod time;
pub mod yaml;
