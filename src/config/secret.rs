//! Passwords: [`Secret`] (never shown by `Debug`) and where a target's
//! password comes from when its URL has none (a file or an environment
//! variable, per target or as the default).

use super::text::{read_bounded, shown};
use std::path::PathBuf;

/// Largest password file read: a password is short, and this stops a
/// mistake like `password_file = "/dev/zero"` from eating memory.
const MAX_PASSWORD_FILE: u64 = 4096;

/// A password. `Debug` never shows it, so it cannot leak through logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a password.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The password itself, for the AUTH command only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where secrets come from when a URL has none.
#[derive(Clone, Debug, Default)]
pub(crate) struct PasswordSource {
    pub file: Option<PathBuf>,
    pub env: Option<String>,
}

impl PasswordSource {
    /// The password, if a source is set.
    pub fn read(&self) -> Result<Option<Secret>, String> {
        self.read_as("password")
    }

    /// The secret, if a source is set; errors name `{what}_file` or
    /// `{what}_env`. One trailing newline of a file is not part of it
    /// (`echo secret > file` writes one).
    pub fn read_as(&self, what: &str) -> Result<Option<Secret>, String> {
        if let Some(path) = &self.file {
            let text = read_bounded(path, MAX_PASSWORD_FILE)
                .map_err(|e| format!("{what}_file {}: {e}", shown(path)))?;
            let pass = text.strip_suffix('\n').unwrap_or(&text);
            let pass = pass.strip_suffix('\r').unwrap_or(pass);
            if pass.is_empty() {
                return Err(format!("{what}_file {} is empty", shown(path)));
            }
            return Ok(Some(Secret::new(pass)));
        }
        if let Some(var) = &self.env {
            return match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
                _ => Err(format!("{what}_env {var}: variable is not set or empty")),
            };
        }
        Ok(None)
    }
}
