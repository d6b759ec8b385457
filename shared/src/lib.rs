//! Crosstalk's core, shared by the page and the server: the trace protocol, the sans-IO services,
//! the scenarios' worlds and the metrics. The simulation that runs them is the `engine` crate.
//!
//! This crate does no IO, reads no clock and no OS randomness, and builds for wasm32.

pub mod call_metrics;
pub mod check;
pub mod compare;
pub mod decimal;
pub mod decimal_text;
pub mod event_store;
pub mod float_text;
pub mod fold;
pub mod in_force;
pub mod json;
pub mod metrics;
pub mod network;
pub mod ordered;
pub mod protocol;
pub mod rng;
pub mod scenario;
pub mod service;
pub mod services;
pub mod shared_log;
pub mod shared_map;
pub mod slot_map;
pub mod time;
pub mod world;
