//! Crosstalk's page. The logic lives in plain types tested natively (player, trace index, layout,
//! view models, URL config, stream checking); the components in `app` and its children stay thin
//! and only connect those types to signals and the DOM.

#![warn(missing_docs)]

pub mod anomalies;
pub mod charts;
pub mod computation;
pub mod config;
pub mod describe;
pub mod embed;
pub mod export;
pub mod fault_form;
pub mod format;
pub mod keys;
pub mod layout;
pub mod log_window;
pub mod player;
pub mod raster;
pub mod recorded;
pub mod selection;
pub mod sequence;
pub mod snapshots;
pub mod source;
pub mod trace_index;
pub mod view_model;

pub mod app;
pub mod components;
pub mod frame_loop;
pub mod host;
pub mod runner;
pub mod state;
pub mod ws;
