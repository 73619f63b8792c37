//! A client of one running job's REST API: found by id in the local registry, or addressed
//! with `-m host:port`.

use std::time::Duration;

use crate::registry;
use anyhow::{Context as _, anyhow, bail};
use cairn_api::{AsynchronousOperationResult, ErrorBody, JobDetailsInfo};
use reqwest::Method;
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};

/// How often an asynchronous operation's status is asked for.
const POLL: Duration = Duration::from_millis(100);

/// The environment variable with the REST token for `-m` (registered jobs' tokens are
/// read from the registry).
pub const TOKEN_VAR: &str = "CAIRN_REST_TOKEN";

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    job: String,
}

impl Client {
    /// A client for job `job`: at `jobmanager` (`host:port`) if given, else wherever the
    /// registry says it runs on this machine.
    pub async fn connect(job: &str, jobmanager: Option<&str>) -> anyhow::Result<Self> {
        if job.len() != 32 || !job.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("invalid job id '{job}': expected 32 hex characters (`cairn list` shows them)");
        }
        let job = job.to_ascii_lowercase();
        let http = reqwest::Client::new();
        let client = match jobmanager {
            Some(address) => Client {
                http,
                base: format!(
                    "http://{}",
                    address.trim_start_matches("http://").trim_end_matches('/')
                ),
                token: std::env::var(TOKEN_VAR).ok(),
                job,
            },
            None => {
                let entry = tokio::task::spawn_blocking({
                    let job = job.clone();
                    move || registry::find(&job)
                })
                .await?
                .ok_or_else(|| {
                    anyhow!(
                        "no running job with id {job} on this machine (`cairn list` shows the \
                         running jobs; use -m host:port for a job elsewhere)"
                    )
                })?;
                Client {
                    http,
                    base: format!("http://{}", entry.address),
                    token: entry.token,
                    job,
                }
            }
        };
        // An explicit address may serve another job (or none): ask.
        if jobmanager.is_some() {
            client.get::<IgnoredAny>(&client.job_path("")).await?;
        }
        Ok(client)
    }

    pub fn job(&self) -> &str {
        &self.job
    }

    /// `/jobs/<id><rest>`.
    pub fn job_path(&self, rest: &str) -> String {
        format!("/jobs/{}{rest}", self.job)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.request(Method::GET, path, None).await
    }

    /// Sends a request with an optional body: JSON, or raw bytes (a component); reads the
    /// answer as a `T`.
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Some(Body::Json(json)) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(json),
            Some(Body::Bytes(bytes)) => request
                .header(reqwest::header::CONTENT_TYPE, "application/wasm")
                .body(bytes),
            None => request,
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the job's REST server at {}", self.base))?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .with_context(|| format!("{method} {path}: unexpected answer"));
        }
        let errors = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|e| e.message())
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
        if status == reqwest::StatusCode::NOT_FOUND && path.starts_with("/jobs/") {
            bail!("no job {} at {}: {errors}", self.job, self.base);
        }
        bail!("{method} {path}: {status}: {errors}")
    }

    /// Polls an asynchronous operation until it completes; returns its location, if any.
    pub async fn wait_for(&self, path: &str) -> anyhow::Result<Option<String>> {
        loop {
            let status: AsynchronousOperationResult = self.get(path).await?;
            match status.outcome() {
                Some(Ok(location)) => return Ok(location.map(str::to_owned)),
                Some(Err(cause)) => bail!("{cause}"),
                None => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Waits until the job has ended: its server reports a final state or is gone.
    pub async fn wait_until_ended(&self) {
        loop {
            match self.get::<JobDetailsInfo>(&self.job_path("")).await {
                Ok(details) if !details.state.is_terminal() => {}
                _ => return,
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

pub enum Body {
    Json(String),
    Bytes(Vec<u8>),
}

impl Body {
    pub fn json(value: &impl Serialize) -> anyhow::Result<Body> {
        Ok(Body::Json(serde_json::to_string(value)?))
    }
}
