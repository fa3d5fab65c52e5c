//! What the HTTP side reads: the latest verdict per instance ([`store`],
//! JSON pre-rendered by [`render`]), poll [`counters`], and [`heartbeat`]s;
//! and what the history is handed without waiting ([`record`]).

pub mod counters;
pub mod heartbeat;
pub mod record;
pub mod render;
pub mod store;
