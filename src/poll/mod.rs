//! Polling: [`fleet`] runs one task per instance on a dedicated thread and
//! applies target-set changes (start, stop, restart) as a diff.

pub mod fleet;
