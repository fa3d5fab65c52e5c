//! One redpulse per `data_dir`: an exclusive lock on `data_dir/redpulse.lock`,
//! held for the life of the process (the kernel drops it when the process
//! dies, kill -9 included), with the holder's PID written inside so a
//! second process can say who holds it.

use rustix::fs::{flock, FlockOperation};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, PartialEq)]
pub enum LockError {
    /// Another process holds it: redpulse must not start.
    InUse(String),
    /// The directory or file cannot be made or opened (read-only, full):
    /// the history goes to memory.
    Unavailable(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::InUse(m) | LockError::Unavailable(m) => f.write_str(m),
        }
    }
}

/// Take the lock on `dir` (created if missing). The error says why in one
/// line: which process holds it, or what failed.
pub fn lock(dir: &Path) -> Result<DirLock, LockError> {
    let unavailable = |e: std::io::Error, p: &Path| {
        LockError::Unavailable(format!("data_dir {}: {e}", p.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| unavailable(e, dir))?;
    let path = dir.join("redpulse.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| unavailable(e, &path))?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        let who = if holder.is_empty() {
            "another process".to_string()
        } else {
            format!("process {holder}")
        };
        return Err(LockError::InUse(format!(
            "data_dir {} is in use by {who} (lock {}); give each redpulse its own --data-dir",
            dir.display(),
            path.display()
        )));
    }
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder() {
        let dir = std::env::temp_dir().join(format!("redpulse-lock-{}", std::process::id()));
        let held = lock(&dir).unwrap();
        let e = lock(&dir).unwrap_err();
        assert!(matches!(e, LockError::InUse(_)));
        assert!(
            e.to_string()
                .contains(&format!("process {}", std::process::id())),
            "{e}"
        );
        drop(held);
        lock(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
