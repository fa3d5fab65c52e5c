//! Judging: [`outcome`] names statuses, reasons and failures; [`rules`]
//! turns each instance's poll outcomes into a damped verdict; [`groups`]
//! judges a cluster as a whole from its nodes' verdicts.

pub mod groups;
pub mod outcome;
pub mod rules;
