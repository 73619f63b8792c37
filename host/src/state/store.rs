//! A folder in an object store: local disk, memory, S3 (or anything S3-compatible), GCS or
//! Azure, through the `object_store` crate. Transient errors are retried with backoff.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
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
        if !location.contains("://") {
            return Self::local(std::path::Path::new(location), location);
        }
        let url = url::Url::parse(location).map_err(|e| invalid(e.to_string()))?;
        let root = Path::parse(url.path().trim_matches('/')).map_err(|e| invalid(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|()| invalid("not a local path".into()))?;
                return Self::local(&path, location);
            }
            "memory" => Arc::new(InMemory::new()),
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
            self.store
                .put(&path, bytes.clone().into())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
    }

    /// Compresses `raw` and uploads it to `rel` in parts: memory stays bounded by a part
    /// and a compression chunk, whatever the state's size.
    pub async fn put_blob(&self, rel: &str, raw: Arc<Vec<u8>>) -> Result<BlobInfo, StateError> {
        let path = self.path(rel);
        let location = self.url_of(rel);
        retry("write", &location, || async {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(2);
            let raw = raw.clone();
            let encoder = tokio::task::spawn_blocking(move || {
                blob::encode(&raw, |piece| {
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
                    return Err(e.to_string());
                }
            }
            let info = match encoder.await {
                Ok(Ok(info)) => info,
                Ok(Err(e)) => return Err(e.to_string()),
                Err(e) => return Err(format!("compression task failed: {e}")),
            };
            writer.shutdown().await.map_err(|e| e.to_string())?;
            Ok(info)
        })
        .await
    }

    pub async fn get(&self, rel: &str) -> Result<Bytes, StateError> {
        let path = self.path(rel);
        retry("read", &self.url_of(rel), || async {
            let result = self.store.get(&path).await.map_err(|e| e.to_string())?;
            result.bytes().await.map_err(|e| e.to_string())
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
                Err(e) => Err(e.to_string()),
            }
        })
        .await
    }

    /// Names of the folders directly in this folder.
    pub async fn folders(&self) -> Result<Vec<String>, StateError> {
        retry("list", &self.url, || async {
            let listing = self
                .store
                .list_with_delimiter(Some(&self.root))
                .await
                .map_err(|e| e.to_string())?;
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
                .await
                .map_err(|e| e.to_string())?;
            for file in files {
                match self.store.delete(&file).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.to_string()),
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

/// Runs `attempt` until it succeeds or [`ATTEMPTS`] have failed, backing off between tries.
async fn retry<T, F, Fut>(
    action: &'static str,
    location: &str,
    mut attempt: F,
) -> Result<T, StateError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let mut backoff = FIRST_BACKOFF;
    for n in 1.. {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(cause) if n >= ATTEMPTS => {
                return Err(StateError::Store {
                    action,
                    location: location.to_owned(),
                    cause,
                });
            }
            Err(cause) => {
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
