//! The page's panels: thin views over the model types, wired to the shared contexts.

pub mod compare;
pub mod controls;
pub mod delivery;
pub mod event_log;
pub mod faults;
pub mod live_controls;
pub mod map;
pub mod metrics;
pub mod player_bar;
pub mod tables;
