//! The local registry of running jobs, so that `cairn list`, `savepoint`, `stop`, `cancel`
//! and `swap` find a job's REST server by its id alone.
//!
//! Each running job keeps one file, `<runtime dir>/cairn/jobs/<job-id>.json` (the runtime
//! dir is `$XDG_RUNTIME_DIR`, else the user's state or temp folder), readable only by the
//! user since it may hold the job's REST token. The file goes when the job ends; one left
//! by a killed job is noticed (nothing answers at its address) and removed by readers.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a reader waits for a registered job's server before calling the entry stale.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// One running job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub name: String,
    /// Its REST server, `host:port`.
    pub address: SocketAddr,
    /// Milliseconds since the Unix epoch.
    pub start_ms: u64,
    /// `rest.auth-token`, when the job requires one.
    pub token: Option<String>,
}

/// The folder of registry files.
pub fn dir() -> PathBuf {
    dirs::runtime_dir()
        .or_else(dirs::state_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("cairn")
        .join("jobs")
}

/// A job's registry file; removed when dropped.
pub struct Registration {
    path: PathBuf,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Registers a running job.
pub fn register(entry: &Entry) -> std::io::Result<Registration> {
    let dir = dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}.json", entry.id));
    let tmp = dir.join(format!(".{}.tmp", entry.id));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(entry).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(Registration { path })
}

/// The jobs running on this machine, oldest first. Entries whose server does not answer
/// are removed.
pub fn list() -> Vec<Entry> {
    let Ok(files) = std::fs::read_dir(dir()) else {
        return Vec::new();
    };
    let mut entries: Vec<Entry> = files
        .flatten()
        .map(|f| f.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|path| {
            let entry = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Entry>(&bytes).ok());
            match entry {
                Some(entry)
                    if TcpStream::connect_timeout(&entry.address, PROBE_TIMEOUT).is_ok() =>
                {
                    Some(entry)
                }
                _ => {
                    let _ = std::fs::remove_file(&path);
                    None
                }
            }
        })
        .collect();
    entries.sort_by_key(|e| e.start_ms);
    entries
}

/// The running job with this id, if it is registered here.
pub fn find(id: &str) -> Option<Entry> {
    list().into_iter().find(|e| e.id == id)
}
