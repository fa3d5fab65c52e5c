//! What the HTTP side reads: the latest verdict per instance ([`store`],
//! JSON pre-rendered by [`render`]), poll [`counters`], and [`heartbeat`]s.

pub mod counters;
pub mod heartbeat;
pub mod record;
pub mod render;
pub mod store;
