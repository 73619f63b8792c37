//! A folder in an object store: local disk, memory, S3 (or anything S3-compatible), GCS or
//! Azure, through the `object_store` crate. Transient errors are retried with backoff.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::buffered::BufWriter;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use super::StateError;
use super::blob::{self, BlobInfo};
use crate::config::S3Config;

/// Attempts per store operation before its error counts.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Multipart part size for large state uploads.
const PART_SIZE: usize = 8 << 20;

/// The process's memory stores by host (`memory://<host>/…`): every open of one URL must see
/// the same store, or a restarted attempt finds none of the checkpoints the last one wrote.
static MEMORY_STORES: LazyLock<Mutex<HashMap<String, Arc<InMemory>>>> =
    LazyLock::new(Default::default);

/// A folder in an object store.
#[derive(Clone)]
pub struct StateStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
    /// This folder as a URL, for messages.
    url: String,
    /// The folder on disk, for local stores: their empty folders need removing too.
    local_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl StateStore {
    /// Opens `location`: a plain path or `file://` URL (created if missing), `memory://`,
    /// `s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`. Cloud
    /// credentials come from the usual environment variables; `s3.*` keys override them.
    pub fn open(location: &str, s3: &S3Config) -> Result<Self, StateError> {
        let invalid = |message: String| StateError::Location {
            location: location.to_owned(),
            message,
        };
        if let Some(path) = Self::local_path(location) {
            return Self::local(&path, location);
        }
        let url = url::Url::parse(location).map_err(|e| invalid(e.to_string()))?;
        let root = Path::parse(url.path().trim_matches('/')).map_err(|e| invalid(e.to_string()))?;
        if url.scheme() != "memory" {
            install_tls_provider();
        }
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => return Err(invalid("not a local path".into())),
            "memory" => memory_store(url.host_str().unwrap_or_default()),
            "s3" | "s3a" => {
                let mut builder = AmazonS3Builder::from_env().with_url(url.as_str());
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                if let Some(key) = &s3.access_key {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = &s3.secret_key {
                    builder = builder.with_secret_access_key(secret);
                }
                if let Some(region) = &s3.region {
                    builder = builder.with_region(region);
                }
                if s3.path_style {
                    builder = builder.with_virtual_hosted_style_request(false);
                }
                // Without credentials object_store asks the instance metadata service, a
                // request to a host the user never named: only on request.
                if !s3.use_instance_credentials && !has_s3_credentials(&builder) {
                    return Err(StateError::NoS3Credentials {
                        location: location.to_owned(),
                    });
                }
                // Cairn retries whole operations itself; one quick client retry is enough.
                builder = builder.with_retry(object_store::RetryConfig {
                    max_retries: 1,
                    retry_timeout: Duration::from_secs(10),
                    ..Default::default()
                });
                Arc::new(builder.build().map_err(|e| invalid(e.to_string()))?)
            }
            "gs" => Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            "az" | "azure" | "abfs" | "abfss" => Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            other => {
                return Err(invalid(format!(
                    "unsupported scheme '{other}' (use a path, file://, memory://, s3://, gs:// or az://)"
                )));
            }
        };
        Ok(StateStore {
            store,
            root,
            url: location.trim_end_matches('/').to_owned(),
            local_dir: None,
        })
    }

    /// The root of any `object_store` backend, for embedding and tests (a store that
    /// injects faults, say); `url` names the folder in messages.
    pub fn from_object_store(store: Arc<dyn ObjectStore>, url: &str) -> Self {
        StateStore {
            store,
            root: Path::default(),
            url: url.trim_end_matches('/').to_owned(),
            local_dir: None,
        }
    }

    fn local(path: &std::path::Path, location: &str) -> Result<Self, StateError> {
        let invalid = |message: String| StateError::Location {
            location: location.to_owned(),
            message,
        };
        std::fs::create_dir_all(path).map_err(|e| invalid(format!("cannot create folder: {e}")))?;
        let path = std::fs::canonicalize(path).map_err(|e| invalid(e.to_string()))?;
        let store = LocalFileSystem::new_with_prefix(&path).map_err(|e| invalid(e.to_string()))?;
        Ok(StateStore {
            store: Arc::new(store),
            root: Path::default(),
            url: format!("file://{}", path.display()),
            local_dir: Some(path),
        })
    }

    /// The folder on this machine that `location` names, if it is local: a plain path or a
    /// `file://` URL.
    pub fn local_path(location: &str) -> Option<std::path::PathBuf> {
        if !location.contains("://") {
            return Some(location.into());
        }
        let url = url::Url::parse(location).ok()?;
        (url.scheme() == "file").then(|| url.to_file_path().ok())?
    }

    /// Whether `location` is a `memory://` URL: a store that ends with the process.
    pub fn in_memory(location: &str) -> bool {
        memory_host(location).is_some()
    }

    /// Whether `location` is a `memory://` store this process has not opened: nothing can
    /// be in it.
    pub fn unopened_memory(location: &str) -> bool {
        memory_host(location).is_some_and(|host| {
            !MEMORY_STORES
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(&host)
        })
    }

    /// This folder as a URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A subfolder (`rel` may have several `/`-separated parts).
    pub fn child(&self, rel: &str) -> StateStore {
        StateStore {
            store: self.store.clone(),
            root: self.path(rel),
            url: format!("{}/{rel}", self.url),
            local_dir: self.local_dir.as_ref().map(|dir| dir.join(rel)),
        }
    }

    fn path(&self, rel: &str) -> Path {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.root.clone(), |path, part| path.clone().join(part))
    }

    /// The URL of a file in this folder, for messages.
    pub fn url_of(&self, rel: &str) -> String {
        format!("{}/{rel}", self.url)
    }

    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<(), StateError> {
        let path = self.path(rel);
        retry("write", &self.url_of(rel), || async {
            self.store.put(&path, bytes.clone().into()).await?;
            Ok(())
        })
        .await
    }

    /// Compresses `raw` and uploads it to `rel` in parts: memory stays bounded by a part
    /// and a compression chunk, whatever the state's size.
    pub async fn put_blob(&self, rel: &str, raw: Arc<Vec<u8>>) -> Result<BlobInfo, StateError> {
        self.put_stream(rel, move |sink| blob::encode(&raw, sink))
            .await
    }

    /// Uploads to `rel` what `produce` passes to its sink, piece by piece, from a blocking
    /// thread (compressing is CPU work), in parts: memory stays bounded by a part and the
    /// pieces in flight. `produce` runs again if the upload is retried.
    pub async fn put_stream<T: Send + 'static>(
        &self,
        rel: &str,
        produce: impl Fn(&mut dyn FnMut(Bytes) -> Result<(), StateError>) -> Result<T, StateError>
        + Send
        + Sync
        + 'static,
    ) -> Result<T, StateError> {
        let path = self.path(rel);
        let location = self.url_of(rel);
        let produce = Arc::new(produce);
        retry("write", &location, || async {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(2);
            let produce = produce.clone();
            let producer = tokio::task::spawn_blocking(move || {
                produce(&mut |piece| {
                    tx.blocking_send(piece).map_err(|_| StateError::Corrupt {
                        location: "upload".into(),
                        message: "the upload stopped".into(),
                    })
                })
            });
            let mut writer = BufWriter::with_capacity(self.store.clone(), path.clone(), PART_SIZE);
            while let Some(piece) = rx.recv().await {
                if let Err(e) = writer.put(piece).await {
                    let _ = writer.abort().await;
                    return Err(e.into());
                }
            }
            let produced = match producer.await {
                Ok(Ok(produced)) => produced,
                Ok(Err(e)) => return Err(Failure::Transient(e.to_string())),
                Err(e) => return Err(Failure::Transient(format!("compression task failed: {e}"))),
            };
            writer
                .shutdown()
                .await
                .map_err(|e| Failure::Transient(e.to_string()))?;
            Ok(produced)
        })
        .await
    }

    /// Bytes `range` of `rel`.
    pub async fn get_range(
        &self,
        rel: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, StateError> {
        let path = self.path(rel);
        retry("read", &self.url_of(rel), || async {
            Ok(self.store.get_range(&path, range.clone()).await?)
        })
        .await
    }

    /// The size of `rel`, or `None` when it does not exist.
    pub async fn size(&self, rel: &str) -> Result<Option<u64>, StateError> {
        let path = self.path(rel);
        retry("read", &self.url_of(rel), || async {
            match self.store.head(&path).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    pub async fn get(&self, rel: &str) -> Result<Bytes, StateError> {
        let path = self.path(rel);
        retry("read", &self.url_of(rel), || async {
            Ok(self.store.get(&path).await?.bytes().await?)
        })
        .await
    }

    /// Whether `rel` exists (a missing file is not an error).
    pub async fn exists(&self, rel: &str) -> Result<bool, StateError> {
        let path = self.path(rel);
        retry("read", &self.url_of(rel), || async {
            match self.store.head(&path).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Names of the folders directly in this folder.
    pub async fn folders(&self) -> Result<Vec<String>, StateError> {
        retry("list", &self.url, || async {
            let listing = self.store.list_with_delimiter(Some(&self.root)).await?;
            Ok(listing
                .common_prefixes
                .iter()
                .filter_map(|p| p.filename().map(str::to_owned))
                .collect())
        })
        .await
    }

    /// Deletes everything in subfolder `rel`.
    pub async fn delete_all(&self, rel: &str) -> Result<(), StateError> {
        let prefix = self.path(rel);
        retry("delete", &self.url_of(rel), || async {
            let files: Vec<Path> = self
                .store
                .list(Some(&prefix))
                .map_ok(|meta| meta.location)
                .try_collect()
                .await?;
            for file in files {
                match self.store.delete(&file).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        })
        .await?;
        // Local folders outlive their files; remove the empty ones too.
        if let Some(dir) = &self.local_dir {
            let _ = std::fs::remove_dir_all(dir.join(rel));
        }
        Ok(())
    }
}

/// The store of `memory://<host>`, made on first use and kept for the life of the process.
fn memory_store(host: &str) -> Arc<dyn ObjectStore> {
    MEMORY_STORES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(host.to_owned())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

/// The host of a `memory://<host>/…` URL; `None` for any other location.
fn memory_host(location: &str) -> Option<String> {
    let url = url::Url::parse(location).ok()?;
    (url.scheme() == "memory").then(|| url.host_str().unwrap_or_default().to_owned())
}

/// HTTP clients in this process (the cloud stores', the CLI's) speak TLS through rustls with
/// the process's default crypto provider, and building one panics without it: install
/// ring's (a second install is refused, harmlessly). Stores call it when they open.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Whether `builder` has credentials of its own — keys, web identity, container credentials
/// or unsigned requests — rather than falling back to the instance metadata service.
fn has_s3_credentials(builder: &AmazonS3Builder) -> bool {
    use AmazonS3ConfigKey as Key;
    let set = |key: Key| {
        builder
            .get_config_value(&key)
            .is_some_and(|v| !v.is_empty())
    };
    // A key without its secret (or the reverse) is the builder's own clear error.
    set(Key::AccessKeyId)
        || set(Key::SecretAccessKey)
        || (set(Key::WebIdentityTokenFile) && set(Key::RoleArn))
        || set(Key::ContainerCredentialsRelativeUri)
        || (set(Key::ContainerCredentialsFullUri) && set(Key::ContainerAuthorizationTokenFile))
        || builder.get_config_value(&Key::SkipSignature).as_deref() == Some("true")
}

/// Why one attempt at a store operation failed.
enum Failure {
    /// The file is not there: retrying cannot bring it back.
    NotFound,
    /// Anything else, perhaps passing: worth another try.
    Transient(String),
}

impl From<object_store::Error> for Failure {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Failure::NotFound,
            e => Failure::Transient(e.to_string()),
        }
    }
}

/// Runs `attempt` until it succeeds or [`ATTEMPTS`] have failed, backing off between tries;
/// a missing file fails at once.
async fn retry<T, F, Fut>(
    action: &'static str,
    location: &str,
    mut attempt: F,
) -> Result<T, StateError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut backoff = FIRST_BACKOFF;
    for n in 1.. {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(Failure::NotFound) => return Err(StateError::NotFound(location.to_owned())),
            Err(Failure::Transient(cause)) if n >= ATTEMPTS => {
                return Err(StateError::Store {
                    action,
                    location: location.to_owned(),
                    cause,
                });
            }
            Err(Failure::Transient(cause)) => {
                tracing::warn!(
                    "cannot {action} {location} (attempt {n} of {ATTEMPTS}, retrying in {backoff:?}): {cause}"
                );
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
    unreachable!("the loop returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    #[test]
    fn every_open_of_a_memory_url_sees_the_same_store() {
        assert!(StateStore::unopened_memory("memory://shared-test/a"));
        let first = StateStore::open("memory://shared-test/a", &S3Config::default()).unwrap();
        assert!(!StateStore::unopened_memory("memory://shared-test/b"));
        block_on(first.put("x", Bytes::from_static(b"kept"))).unwrap();
        let again = StateStore::open("memory://shared-test/a", &S3Config::default()).unwrap();
        assert_eq!(
            block_on(again.get("x")).unwrap(),
            Bytes::from_static(b"kept")
        );
        let other = StateStore::open("memory://other-test/a", &S3Config::default()).unwrap();
        assert!(!block_on(other.exists("x")).unwrap());
    }

    #[test]
    fn only_memory_urls_are_in_memory() {
        assert!(StateStore::in_memory("memory://chk"));
        assert!(StateStore::in_memory("memory:///chk"));
        assert!(!StateStore::in_memory("/tmp/chk"));
        assert!(!StateStore::in_memory("s3://memory/chk"));
        assert!(!StateStore::unopened_memory("/tmp/chk"));
    }

    #[test]
    fn a_missing_file_is_not_retried() {
        let store = StateStore::open("memory://missing-test", &S3Config::default()).unwrap();
        let started = std::time::Instant::now();
        let error = block_on(store.get("nothing")).unwrap_err();
        assert!(matches!(error, StateError::NotFound(_)), "{error}");
        assert!(started.elapsed() < FIRST_BACKOFF, "retried");
    }

    #[test]
    fn s3_credentials_are_keys_web_identity_container_or_unsigned() {
        let with = |pairs: &[(AmazonS3ConfigKey, &str)]| {
            let builder = pairs
                .iter()
                .fold(AmazonS3Builder::new(), |b, (key, value)| {
                    b.with_config(*key, *value)
                });
            has_s3_credentials(&builder)
        };
        use AmazonS3ConfigKey as Key;
        assert!(!with(&[]));
        assert!(!with(&[(Key::Region, "us-east-1"), (Key::Token, "t")]));
        assert!(with(&[
            (Key::AccessKeyId, "a"),
            (Key::SecretAccessKey, "s")
        ]));
        assert!(
            with(&[(Key::AccessKeyId, "a")]),
            "the builder names the missing secret"
        );
        assert!(!with(&[(Key::WebIdentityTokenFile, "/t")]));
        assert!(with(&[
            (Key::WebIdentityTokenFile, "/t"),
            (Key::RoleArn, "r")
        ]));
        assert!(with(&[(Key::ContainerCredentialsRelativeUri, "/v2/x")]));
        assert!(!with(&[(Key::ContainerCredentialsFullUri, "http://c")]));
        assert!(with(&[
            (Key::ContainerCredentialsFullUri, "http://c"),
            (Key::ContainerAuthorizationTokenFile, "/t")
        ]));
        assert!(with(&[(Key::SkipSignature, "true")]));
        assert!(!with(&[(Key::SkipSignature, "false")]));
    }

    #[test]
    fn s3_opens_with_keys_or_with_instance_credentials_wanted() {
        // Keys given as `s3.*` settings are credentials whatever the environment holds.
        let keys = S3Config {
            access_key: Some("a".into()),
            secret_key: Some("s".into()),
            ..S3Config::default()
        };
        assert!(StateStore::open("s3://bucket/chk", &keys).is_ok());
        let instance = S3Config {
            use_instance_credentials: true,
            ..S3Config::default()
        };
        assert!(StateStore::open("s3://bucket/chk", &instance).is_ok());
    }
}
