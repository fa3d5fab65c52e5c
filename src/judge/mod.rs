//! Judging: [`outcome`] names statuses, reasons and failures; [`rules`]
//! turns each instance's poll outcomes into a damped verdict.

pub mod outcome;
pub mod rules;
