//! trafficsim: a deterministic discrete-event simulator of traffic through
//! Envoy Gateway. See ARCHITECTURE.md for the map of modules.

pub mod chart;
pub mod check;
pub mod circuit_breaker;
pub mod client_retry;
pub mod compare;
pub mod confidence;
pub mod conn_pool;
pub mod descriptor;
pub mod diff;
pub mod dist;
pub mod engine;
pub mod envoy_config;
pub mod fuzz_entry;
pub mod gateway;
pub mod global_rate_limit;
pub mod init;
pub mod load_balancer;
pub mod local_rate_limit;
pub mod manifest;
pub mod metrics;
pub mod outlier_detection;
pub mod overrides;
pub mod progress;
pub mod report;
pub mod retry;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod sweep;
pub mod time;
pub mod validate;
pub mod yaml;
