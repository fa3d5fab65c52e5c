//! Polling: [`discovery`] turns clusters into node targets, [`fleet`] runs
//! one task per instance on a dedicated thread and
//! applies target-set changes (start, stop, restart) as a diff; [`ticks`]
//! wakes the pollers due at one tick with one timer.

pub mod discovery;
pub mod fleet;
pub mod ticks;
