use std::hash::{Hash, Hasher};

use cairn_wire::JobGraph;
use std::path::{Path, PathBuf};

use wasmtime::component::{Component, Linker};

use super::guest::{Guest, GuestState, Pre};
use super::{Contract, Engine, Limits};
use cairn_core::operator::{OperatorError, OperatorFactory, OperatorInstance};

/// Why a job file could not be loaded. Each message names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {cause}", .path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{} is not a WebAssembly file (it does not start with the \\0asm magic bytes)", .path.display())]
    NotWasm { path: PathBuf },
    #[error(
        "{} is a core WebAssembly module, not a component: build the job for wasm32-wasip2 \
         (or wrap the module with `wasm-tools component new`)",
        .path.display()
    )]
    CoreModule { path: PathBuf },
    #[error("{} is not a valid WebAssembly component: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(
        "{} is not a Cairn job: it exports none of {} (its exports: {exports})",
        .path.display(), Contract::known()
    )]
    NotAJob { path: PathBuf, exports: String },
    #[error(
        "{} was built against `{found}`, but this cairn runs {}",
        .path.display(), Contract::known()
    )]
    Version { path: PathBuf, found: String },
    #[error("{} does not fit the Cairn job contract: {message}", .path.display())]
    Mismatch { path: PathBuf, message: String },
    #[error("{} imports what Cairn does not give guests: {message}", .path.display())]
    Imports { path: PathBuf, message: String },
}

/// A job component, compiled and linked, ready to instantiate once per subtask.
pub struct JobComponent {
    pre: Pre,
    limits: Limits,
}

impl JobComponent {
    /// Loads, compiles (or takes from the compilation cache) and links a job file. Its
    /// instances get `limits` until [`set_limits`](Self::set_limits) changes them.
    pub fn load(
        engine: &Engine,
        path: &Path,
        use_cache: bool,
        limits: Limits,
    ) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            cause: source,
        })?;
        Self::from_bytes(engine, path, &bytes, use_cache, limits)
    }

    /// Like [`load`](Self::load), for a component's bytes; `path` names it in messages.
    pub fn from_bytes(
        engine: &Engine,
        path: &Path,
        bytes: &[u8],
        use_cache: bool,
        limits: Limits,
    ) -> Result<Self, LoadError> {
        check_header(path, bytes)?;
        let component = compile(engine.wasmtime(), path, bytes, use_cache)?;
        let contract = check_exports(engine.wasmtime(), path, &component)?;

        let mut linker = Linker::new(engine.wasmtime());
        GuestState::link(&mut linker, &component, contract).map_err(|e| LoadError::Invalid {
            path: path.to_owned(),
            message: format!("{e:#}"),
        })?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Imports {
                path: path.to_owned(),
                message: format!("{e:#}"),
            })?;
        let pre = Pre::new(contract, instance_pre).map_err(|e| LoadError::Mismatch {
            path: path.to_owned(),
            message: format!("{e:#}"),
        })?;
        Ok(JobComponent { pre, limits })
    }

    /// Sets the sandbox limits of the instances made from now on.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// A fresh, sandboxed instance; `label` tags its log records.
    pub fn instantiate(&self, label: String) -> Result<Guest, OperatorError> {
        Guest::instantiate(&self.pre, self.limits, label)
    }

    /// The job's graph for these arguments, from `describe` in a throwaway instance.
    pub fn describe(&self, args: &[String]) -> Result<JobGraph, DescribeError> {
        let mut guest = self
            .instantiate("describe".into())
            .map_err(DescribeError::Call)?;
        guest
            .describe(args)
            .map_err(DescribeError::Call)?
            .map_err(DescribeError::Refused)
    }
}

/// Why `describe` gave no graph.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    #[error("describe failed: {0}")]
    Call(OperatorError),
    #[error("the job refused to start: {0}")]
    Refused(String),
}

impl OperatorFactory for JobComponent {
    fn open(
        &self,
        ctx: &cairn_wire::Context,
        name: &str,
    ) -> Result<Box<dyn OperatorInstance>, OperatorError> {
        let label = format!("{}#{}", ctx.operator_uid, ctx.subtask);
        let guest = self.instantiate(label)?;
        Ok(Box::new(guest.open(ctx, name)?))
    }
}

fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.get(0..4) != Some(b"\0asm") {
        return Err(LoadError::NotWasm {
            path: path.to_owned(),
        });
    }
    // Bytes 4..8: version 1 and layer 0 is a core module; components use layer 1.
    if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        return Err(LoadError::CoreModule {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// The contract version whose job interface `component` exports.
fn check_exports(
    engine: &wasmtime::Engine,
    path: &Path,
    component: &Component,
) -> Result<Contract, LoadError> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    if let Some(contract) = Contract::ALL
        .into_iter()
        .find(|c| exports.iter().any(|name| name == c.interface()))
    {
        return Ok(contract);
    }
    let unversioned = "cairn:job/job";
    if let Some(found) = exports
        .iter()
        .find(|name| name.split('@').next() == Some(unversioned))
    {
        return Err(LoadError::Version {
            path: path.to_owned(),
            found: found.clone(),
        });
    }
    Err(LoadError::NotAJob {
        path: path.to_owned(),
        exports: if exports.is_empty() {
            "none".to_owned()
        } else {
            exports.join(", ")
        },
    })
}

/// Compiles a component, or loads it from the cache of compiled components. Compiling is
/// 200–400× slower than loading, and seconds for Python or JavaScript guests.
fn compile(
    engine: &wasmtime::Engine,
    path: &Path,
    bytes: &[u8],
    use_cache: bool,
) -> Result<Component, LoadError> {
    let cached = use_cache.then(|| cache_path(engine, bytes)).flatten();
    if let Some(cached) = &cached {
        match load_cached(engine, cached) {
            Ok(Some(component)) => {
                tracing::debug!(cache = %cached.display(), "loaded compiled component from cache");
                return Ok(component);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(
                cache = %cached.display(),
                "ignoring unusable compilation cache entry, recompiling: {e:#}"
            ),
        }
    }
    let component = Component::new(engine, bytes).map_err(|e| LoadError::Invalid {
        path: path.to_owned(),
        message: format!("{e:#}"),
    })?;
    if let Some(cached) = &cached
        && let Err(e) = store_in_cache(&component, cached)
    {
        tracing::warn!(cache = %cached.display(), "cannot cache compiled component: {e:#}");
    }
    Ok(component)
}

fn cache_path(engine: &wasmtime::Engine, bytes: &[u8]) -> Option<PathBuf> {
    let dir = dirs::cache_dir()?.join("cairn").join("components");
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let mut key = blake3::Hasher::new();
    key.update(bytes);
    key.update(&engine_hash.finish().to_le_bytes());
    Some(dir.join(format!("{}.cwasm", key.finalize().to_hex())))
}

/// A cache entry is this tag, the blake3 hash of the compiled component, then the component
/// as `Component::serialize` wrote it. Wasmtime trusts the code it deserializes (a flipped
/// byte can crash the process), so the hash is checked first.
const CACHE_TAG: &[u8; 8] = b"cairn-c1";
const CACHE_HEADER: usize = CACHE_TAG.len() + blake3::OUT_LEN;

/// The cache entry of a serialized component.
fn seal(serialized: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(CACHE_HEADER + serialized.len());
    entry.extend_from_slice(CACHE_TAG);
    entry.extend_from_slice(blake3::hash(serialized).as_bytes());
    entry.extend_from_slice(serialized);
    entry
}

/// The serialized component in a cache entry, if the entry is intact; `None` for a damaged
/// entry or one of an older format.
fn unseal(entry: &[u8]) -> Option<&[u8]> {
    let rest = entry.strip_prefix(CACHE_TAG)?;
    let (hash, serialized) = rest.split_first_chunk::<{ blake3::OUT_LEN }>()?;
    (blake3::Hash::from_bytes(*hash) == blake3::hash(serialized)).then_some(serialized)
}

/// The cached component at `path`; `None` if there is none.
fn load_cached(engine: &wasmtime::Engine, path: &Path) -> anyhow::Result<Option<Component>> {
    let entry = match std::fs::read(path) {
        Ok(entry) => entry,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let serialized = unseal(&entry)
        .ok_or_else(|| anyhow::anyhow!("checksum mismatch (damaged, or from an older cairn)"))?;
    // SAFETY: these are the bytes `Component::serialize` wrote for this engine's
    // compatibility hash (the key), verified against the hash stored with them.
    Ok(Some(unsafe { Component::deserialize(engine, serialized)? }))
}

fn store_in_cache(component: &Component, path: &Path) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow::anyhow!("cache path has no folder"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, seal(&component.serialize()?))?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intact_entry_unseals_to_what_was_sealed() {
        let serialized = b"\x7fELF compiled code".as_slice();
        assert_eq!(unseal(&seal(serialized)), Some(serialized));
        assert_eq!(unseal(&seal(b"")), Some(b"".as_slice()));
    }

    #[test]
    fn a_damaged_truncated_or_old_entry_does_not_unseal() {
        let entry = seal(b"\x7fELF compiled code");
        let mut flipped = entry.clone();
        let middle = CACHE_HEADER + 5;
        flipped[middle] ^= 0xff;
        assert_eq!(unseal(&flipped), None);
        assert_eq!(unseal(&entry[..entry.len() - 1]), None);
        assert_eq!(unseal(&entry[..CACHE_HEADER - 1]), None);
        // Entries before the checksum were the serialized bytes alone.
        assert_eq!(unseal(b"\x7fELF compiled code"), None);
    }
}
