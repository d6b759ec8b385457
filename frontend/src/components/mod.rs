//! The page's panels: thin views over the model types, wired to the shared contexts.

pub mod anomalies_panel;
pub mod charts_panel;
pub mod compare;
pub mod controls;
pub mod delivery;
pub mod event_log;
pub mod faults;
pub mod live_controls;
pub mod map;
pub mod message_canvas;
pub mod metrics;
pub mod player_bar;
pub mod sequence_diagram;
pub mod share;
pub mod tables;
