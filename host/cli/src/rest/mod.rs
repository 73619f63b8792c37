//! The REST API every running job serves (loopback by default). Where Flink's REST API has
//! the same endpoint, the path, method, request and response shapes are Flink's, so tools
//! written for Flink work unchanged. The shapes are `cairn_api`'s types; each route is
//! declared once, with its OpenAPI description (`#[utoipa::path]` on its handler), and
//! `docs/rest-api.yaml` is generated from those declarations (see [`openapi`]).
//!
//! Savepoints, stops, rescales, swaps and disposals are asynchronous as in Flink: a `POST`
//! (a `PATCH` for rescales) answers `202 {"request-id": …}` at once, and `GET …/<request-id>` reports `IN_PROGRESS` until the
//! operation is `COMPLETED` with its `operation` (a location, or a `failure-cause`).

mod checkpoints;
mod cluster;
mod dashboard;
mod jobs;
mod metrics;
mod openapi;
mod operations;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::control::{ControlError, JobControl, Snapshot};
use cairn_api::ErrorBody;
use cairn_core::clock::now_ms;

/// Serves the API on `listener` until the process ends.
pub async fn serve(control: Arc<JobControl>, listener: tokio::net::TcpListener) {
    let guard = control
        .config
        .rest
        .auth_token
        .as_deref()
        .map(|token| Arc::new(Guard::new(token, &control.id)));
    let app = router(control).layer(middleware::from_fn_with_state(guard, authorize));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!("the REST server stopped: {e}");
    }
}

/// Every route with its handler and its OpenAPI description, so that the served API and
/// the document cannot differ.
fn api() -> OpenApiRouter<Arc<JobControl>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(jobs::jobs))
        .routes(routes!(jobs::overview))
        .routes(routes!(jobs::details, jobs::terminate))
        .routes(routes!(jobs::job_config))
        .routes(routes!(checkpoints::statistics))
        .routes(routes!(checkpoints::config))
        .routes(routes!(checkpoints::details))
        .routes(routes!(checkpoints::subtasks))
        .routes(routes!(operations::trigger_savepoint))
        .routes(routes!(operations::savepoint_status))
        .routes(routes!(operations::stop))
        .routes(routes!(operations::rescale))
        .routes(routes!(operations::rescale_status))
        .routes(routes!(jobs::exceptions))
        .routes(routes!(metrics::job_metrics))
        .routes(routes!(metrics::vertex_metrics))
        .routes(routes!(metrics::vertex_watermarks))
        .routes(routes!(metrics::backpressure))
        .routes(routes!(operations::swap))
        .routes(routes!(operations::swap_status))
        .routes(routes!(operations::dispose))
        .routes(routes!(operations::disposal_status))
        .routes(routes!(metrics::prometheus))
        .routes(routes!(cluster::config))
        .routes(routes!(cluster::overview))
        .routes(routes!(cluster::jobmanager_config))
        .routes(routes!(cluster::taskmanagers))
        .routes(routes!(dashboard::page))
        .routes(routes!(dashboard::script))
        .routes(routes!(dashboard::styles))
        .routes(routes!(dashboard::chart_styles))
}

fn router(control: Arc<JobControl>) -> Router {
    let (router, _) = api().split_for_parts();
    // Flink's own clients (its CLI, `RestClusterClient`) put the REST API's version before
    // every path: the same routes answer there, marked as asked by such a client.
    let versioned = router.clone().layer(axum::Extension(FlinkClient));
    router
        .nest("/v1", versioned)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Not found.".into()) })
        .with_state(control)
}

/// Marks a request that came under `/v1/`, Flink's versioned prefix: its client reads a
/// failed operation's cause only from a Java-serialized throwable, which Cairn cannot
/// write, so such a request gets the failure as Flink's error body instead (see
/// `operations::status_of`).
#[derive(Debug, Clone, Copy)]
struct FlinkClient;

/// What lets a request in when `rest.auth-token` is set: the token, as `Authorization:
/// Bearer <token>` (the scheme in any case, as HTTP says), or the dashboard's session
/// cookie, which opening `/?token=<token>` sets once (a browser cannot send a header when
/// it navigates).
struct Guard {
    /// Hashes, so that comparing what a client presents takes the same time whatever it is.
    token: blake3::Hash,
    session: blake3::Hash,
    /// Per job: jobs on one host share cookies across their ports.
    cookie: String,
}

impl Guard {
    fn new(token: &str, job_id: &str) -> Self {
        Guard {
            token: blake3::hash(token.as_bytes()),
            // Derived, so the cookie never holds the token itself.
            session: blake3::derive_key("cairn dashboard session 1", token.as_bytes()).into(),
            cookie: format!("cairn-session-{job_id}"),
        }
    }

    fn is_token(&self, presented: &str) -> bool {
        blake3::hash(presented.as_bytes()) == self.token
    }

    fn admits(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .is_some_and(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("bearer") && self.is_token(token.trim())
            });
        bearer
            || headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .any(|(name, value)| {
                    name == self.cookie
                        && blake3::Hash::from_hex(value).is_ok_and(|v| v == self.session)
                })
    }

    /// `/?token=<token>`: the session cookie and a redirect to the dashboard without the
    /// token in its address (nor in the browser's history beyond this one entry).
    fn exchange(&self, presented: &str) -> Response {
        if !self.is_token(presented) {
            return login_page("The token in this address is not this job's rest.auth-token.");
        }
        let cookie = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            self.cookie,
            self.session.to_hex()
        );
        (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_owned()),
                (header::SET_COOKIE, cookie),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
        )
            .into_response()
    }
}

/// With `rest.auth-token` set, every request must present it (see [`Guard`]).
async fn authorize(
    State(guard): State<Option<Arc<Guard>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(guard) = guard else {
        return next.run(request).await;
    };
    let dashboard = request.uri().path() == "/";
    if dashboard
        && let Some(token) = request.uri().query().and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find_map(|(name, value)| (name == "token").then_some(value))
        })
    {
        return guard.exchange(&token);
    }
    if guard.admits(request.headers()) {
        next.run(request).await
    } else if dashboard {
        login_page("This job's REST API requires its token (rest.auth-token).")
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: this job requires `Authorization: Bearer <rest.auth-token>`".into(),
        )
        .into_response()
    }
}

/// The dashboard's answer to a browser without the session: how to get one.
fn login_page(problem: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Cairn</title></head>\
         <body><h1>401 Unauthorized</h1><p>{problem}</p><p>Open <code>/?token=&lt;token&gt;\
         </code> once: the dashboard then keeps a session cookie for this job.</p></body>\
         </html>"
    );
    (StatusCode::UNAUTHORIZED, Html(page)).into_response()
}

/// A refused request, answered with Flink's error body.
struct ApiError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            errors: vec![self.message],
        };
        (self.status, Json(body)).into_response()
    }
}

fn error(status: StatusCode, message: String) -> ApiError {
    ApiError { status, message }
}

/// A `200` answer of type `T`.
type Reply<T> = Result<Json<T>, ApiError>;

/// A `202` answer: the operation started.
struct Accepted<T>(T);

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        (StatusCode::ACCEPTED, Json(self.0)).into_response()
    }
}

/// The job, if `job` is its id (a Cairn process serves exactly one job).
fn job<'a>(control: &'a Arc<JobControl>, job: &str) -> Result<&'a Arc<JobControl>, ApiError> {
    if job == control.id {
        Ok(control)
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            format!("Job {job} not found: this server runs job {}", control.id),
        ))
    }
}

fn refused(e: ControlError) -> ApiError {
    let status = match e {
        ControlError::NotRunning { .. } | ControlError::SwapUnderWay { .. } => StatusCode::CONFLICT,
        ControlError::NoSavepointDir | ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

/// A JSON request body; an empty (or whitespace-only) one means `{}`.
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("Bad request body: {e}")))
}

/// Start, end (-1 while running) and duration in milliseconds, as Flink reports them.
fn times(control: &JobControl, snapshot: &Snapshot) -> (u64, i64, u64) {
    let end = snapshot
        .status
        .is_terminal()
        .then(|| snapshot.timestamps.get(&snapshot.status).copied())
        .flatten();
    let duration = end.unwrap_or_else(now_ms).saturating_sub(control.start_ms);
    (control.start_ms, end.map_or(-1, |e| e as i64), duration)
}

/// An id in Flink's format (32 lowercase hex) derived from `name`: a vertex's from its uid,
/// so stable across runs.
fn flink_id(name: &str) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(name.as_bytes()))
}
