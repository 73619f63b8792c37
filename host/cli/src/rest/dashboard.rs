//! The dashboard (`dashboard/`, built by `cargo xtask build` into `dashboard/dist`), served
//! from the binary so it works offline.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use cairn_api::responses::Unauthorized;

const HTML: &str = include_str!("../../../../dashboard/dist/index.html");
const JS: &str = include_str!("../../../../dashboard/dist/app.js");
const CSS: &str = include_str!("../../../../dashboard/dist/app.css");
const UPLOT_CSS: &str = include_str!("../../../../dashboard/dist/uplot.css");

const HTML_TYPE: &str = "text/html; charset=utf-8";
const JS_TYPE: &str = "text/javascript";
const CSS_TYPE: &str = "text/css";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The web dashboard (Cairn only)
///
/// The dashboard's page: a live view of the job (graph with per-operator rates, totals
/// and backpressure; checkpoint history; restarts and failures; effective
/// configuration), built from `dashboard/` into the binary so it works offline. It
/// loads `/app.js`, `/app.css` and `/uplot.css` and reads the job through this API.
///
/// With `rest.auth-token` set, a browser cannot send the token as a header when it
/// navigates: it opens `/?token=<token>` once, which sets a session cookie for this job
/// (`cairn-session-<jobid>`, HttpOnly, SameSite=Strict, a value derived from the token)
/// and redirects to `/`; the dashboard's requests then carry the cookie.
#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    operation_id = "dashboard",
    params(
        ("token" = Option<String>, Query,
            description = "The job's `rest.auth-token`, exchanged for the session cookie (only read when a token is set)."),
    ),
    responses(
        (status = 200, description = "The dashboard's HTML.", body = String, content_type = HTML_TYPE),
        (status = 303, description = "`?token=` was the job's token: the session cookie is set; go to `/`.",
            headers(
                ("Location" = String, description = "`/`"),
                ("Set-Cookie" = String, description = "`cairn-session-<jobid>=<value derived from the token>; Path=/; HttpOnly; SameSite=Strict`"),
            )),
        (status = 401, description = "No session (or a wrong `?token=`): a page saying how to open the dashboard.",
            body = String, content_type = HTML_TYPE),
    )
)]
pub(super) async fn page() -> Response {
    asset(HTML_TYPE, HTML)
}

/// The dashboard's script (Cairn only)
///
/// The dashboard's bundled JavaScript, embedded in the binary.
#[utoipa::path(
    get,
    path = "/app.js",
    tag = "dashboard",
    operation_id = "dashboardScript",
    responses(
        (status = 200, description = "The script.", body = String, content_type = JS_TYPE),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn script() -> Response {
    asset(JS_TYPE, JS)
}

/// The dashboard's style sheet (Cairn only)
///
/// The dashboard's CSS, embedded in the binary.
#[utoipa::path(
    get,
    path = "/app.css",
    tag = "dashboard",
    operation_id = "dashboardStyles",
    responses(
        (status = 200, description = "The style sheet.", body = String, content_type = CSS_TYPE),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn styles() -> Response {
    asset(CSS_TYPE, CSS)
}

/// The dashboard's chart style sheet (Cairn only)
///
/// uPlot's CSS (the dashboard's chart library), embedded in the binary.
#[utoipa::path(
    get,
    path = "/uplot.css",
    tag = "dashboard",
    operation_id = "dashboardChartStyles",
    responses(
        (status = 200, description = "The style sheet.", body = String, content_type = CSS_TYPE),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn chart_styles() -> Response {
    asset(CSS_TYPE, UPLOT_CSS)
}
