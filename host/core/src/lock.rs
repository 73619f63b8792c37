//! Exclusive locks on the folders a job writes to (its checkpoint folder, its file sinks'
//! folders) and on its job id, so that a second process writing the same files is refused
//! at start instead of silently corrupting them.
//!
//! A lock is `flock(2)` on a `.cairn.lock` file in the folder: the kernel releases it when
//! the process ends, however it ends, so a crash (`kill -9`) leaves no lock behind. The file
//! records the holder (process id and job id) for the message of whoever is refused; it is
//! removed when the lock is released.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The lock file's name in a locked folder.
pub const LOCK_FILE: &str = ".cairn.lock";

/// Why a folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock (file `path`).
    #[error("{}: held by {holder}", .path.display())]
    Held { path: PathBuf, holder: Holder },
    #[error("{action} {}: {cause}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// Who holds a lock, as its lock file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    pub job: Option<String>,
}

impl Holder {
    fn of_this_process(job: &str) -> Self {
        Holder {
            pid: Some(std::process::id()),
            job: Some(job.to_owned()),
        }
    }

    /// `pid 1234 job 0123…`; what a lock file holds.
    fn to_line(&self) -> String {
        let pid = self.pid.map_or_else(|| "?".to_owned(), |p| p.to_string());
        format!("pid {pid} job {}\n", self.job.as_deref().unwrap_or("?"))
    }

    /// Reads what [`to_line`](Self::to_line) wrote; anything else gives an unknown holder.
    fn parse(text: &str) -> Self {
        let mut words = text.split_whitespace();
        let mut holder = Holder {
            pid: None,
            job: None,
        };
        while let (Some(key), Some(value)) = (words.next(), words.next()) {
            match key {
                "pid" => holder.pid = value.parse().ok(),
                "job" => holder.job = Some(value.to_owned()).filter(|j| j != "?"),
                _ => {}
            }
        }
        holder
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.pid, &self.job) {
            (Some(pid), Some(job)) => write!(f, "another cairn process (pid {pid}, job {job})"),
            (Some(pid), None) => write!(f, "another cairn process (pid {pid})"),
            _ => f.write_str("another cairn process"),
        }
    }
}

/// A held lock; released (and its file removed) when dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    /// Locks folder `dir` (created if missing) for job `job`, or says who holds it.
    pub fn acquire(dir: &Path, job: &str) -> Result<Self, LockError> {
        Self::file(&dir.join(LOCK_FILE), job)
    }

    /// Locks the lock file `path` (its folder created if missing) for job `job`.
    pub fn file(path: &Path, job: &str) -> Result<Self, LockError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io("cannot create folder", dir))?;
        }
        let path = path.to_owned();
        // The holder removes the file when it lets go; whoever locked a file that is no
        // longer the one at `path` tries again with the new one.
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io("cannot create lock file", &path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    // An unreadable holder line still means the folder is taken.
                    let _ = file.read_to_string(&mut text);
                    return Err(LockError::Held {
                        path,
                        holder: Holder::parse(&text),
                    });
                }
                Err(TryLockError::Error(cause)) => {
                    return Err(LockError::Io {
                        action: "cannot lock",
                        path,
                        cause,
                    });
                }
            }
            let same = match (file.metadata(), std::fs::metadata(&path)) {
                (Ok(held), Ok(current)) => {
                    held.ino() == current.ino() && held.dev() == current.dev()
                }
                _ => false,
            };
            if !same {
                continue;
            }
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(Holder::of_this_process(job).to_line().as_bytes()))
                .and_then(|()| file.sync_all())
                .map_err(io("cannot write lock file", &path))?;
            return Ok(Lock { file, path });
        }
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LockError {
    let path = path.to_owned();
    move |cause| LockError::Io {
        action,
        path,
        cause,
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock, so nobody locks a file on its way out.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_named_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("cairn-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = Lock::acquire(&dir, "aa").unwrap();
        let Err(LockError::Held { holder, .. }) = Lock::acquire(&dir, "bb") else {
            panic!("a second lock must be refused");
        };
        assert_eq!(holder, Holder::of_this_process("aa"));
        assert!(
            holder
                .to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{holder}"
        );
        drop(first);
        assert!(
            !dir.join(LOCK_FILE).exists(),
            "the lock file goes with the lock"
        );
        let again = Lock::acquire(&dir, "bb").unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn holder_lines_round_trip_and_tolerate_junk() {
        let holder = Holder::of_this_process("0123");
        assert_eq!(Holder::parse(&holder.to_line()), holder);
        assert_eq!(
            Holder::parse("garbage"),
            Holder {
                pid: None,
                job: None
            }
        );
        assert_eq!(Holder::parse("").to_string(), "another cairn process");
    }
}
