//! The OpenAPI document's parts that belong to no route: its introduction, server, tags,
//! security scheme and shared error answers. The routes add theirs (see `super::api`), and
//! `docs/rest-api.yaml` is the whole, written by the test below.

use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use cairn_api::responses::{
    BadRequestBody, BadSavepointRequest, JobNotFound, NotFound, NotRunning, TriggerNotFound,
    Triggered, Unauthorized, VertexNotFound,
};
use cairn_api::{
    ErrorBody, SavepointTriggerRequestBody, StopWithSavepointRequestBody, TriggerResponse,
};

const INTRODUCTION: &str = r#"Every running Cairn job serves this API (implemented in `host/cli/src/rest/`, its types in `host/api/`; this document is generated from them). A Cairn process runs exactly one job, so `/jobs` lists one job and any other job id is `404`.

Where Apache Flink's REST API has the same endpoint, the path, method, request body and response shape are Flink's, so tools written for Flink work unchanged; the swap endpoints, `/metrics` (Prometheus) and the web dashboard (`/` and its assets) are Cairn's own. Fields Flink has but Cairn cannot fill are present with fixed values (documented per schema).

**Configuration** (`rest.*` keys):
- `rest.bind-address` (default `127.0.0.1`): the address to listen on. Anything but a loopback address is refused at startup unless `rest.auth-token` is set.
- `rest.port` (default `0`: any free port). The job prints the address at startup (`REST API at http://<address>/jobs/<jobid>`).
- `rest.auth-token` (default empty), or `rest.auth-token-file` (a file whose trimmed content is the token, so that it does not show in `ps`): when set, every request (including unknown paths) must carry `Authorization: Bearer <token>` (the scheme in any case) or the dashboard's session cookie, otherwise the answer is `401` with Flink's error body. A browser gets the cookie by opening `/?token=<token>` once (see `GET /`). When unset, no authentication is required.

**Asynchronous operations.** Savepoints, stops, swaps and savepoint disposals are asynchronous, as in Flink: the `POST` answers `202 {"request-id": ...}` at once, and `GET .../{triggerid}` answers `IN_PROGRESS` until the operation is `COMPLETED`, with `operation.location` (savepoints), an empty `operation` (swaps, disposals), or `operation.failure-cause` (any failure). Trigger ids are 32 lowercase hex characters and share one namespace, so a status route finds any operation by its id.

**Flink's clients.** Every path is also served under `/v1/` (Flink's REST API version, which Flink's CLI and `RestClusterClient` put before every path), with the same answers but one: there, an operation that failed is answered `500` with Flink's error body carrying its cause, because Flink's client reads `failure-cause` only as a Java-serialized throwable (which Cairn cannot write) and would retry the answer until it gives up.

**Lingering.** When the job ends, its server keeps answering until every operation has completed and its result was fetched, but at most 10 s, so that e.g. a client that stopped the job can still fetch the savepoint's location.

**Errors** use Flink's body `{"errors": ["..."]}`: `404` for an unknown path, job id, checkpoint id, vertex id or trigger id, `400` for a bad request body, `401` without the required token, `409` when an operation needs a RUNNING job or another swap or rescale is under way, `413` for a component over 256 MiB, `500` when `/metrics` cannot be encoded. (A known path with an unsupported method gets the HTTP server's plain `405`; a JSON request body over 2 MiB gets a plain-text `413`.)"#;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cairn job REST API",
        version = "1",
        description = INTRODUCTION,
    ),
    servers((
        url = "http://{address}:{port}",
        description = "The job's REST server (`rest.bind-address`, `rest.port`).",
        variables(
            ("address" = (default = "127.0.0.1", description = "`rest.bind-address`")),
            ("port" = (default = "8081", description = "`rest.port`; its default 0 picks a free port at startup, printed with the REST address (8081 is only an example)")),
        ),
    )),
    security((), ("bearerAuth" = [])),
    tags(
        (name = "jobs", description = "The job and its status (Flink-compatible)."),
        (name = "cluster", description = "The process as Flink's cluster of one job (Flink-compatible)."),
        (name = "checkpoints", description = "Checkpoint statistics and configuration (Flink-compatible)."),
        (name = "savepoints", description = "Savepoints, stop-with-savepoint and savepoint disposal (Flink-compatible)."),
        (name = "swap", description = "Replacing the running job's operator code in place (Cairn only)."),
        (name = "metrics", description = "Prometheus metrics (Cairn only), and Flink's job metrics, vertex metrics and vertex backpressure endpoints (Flink-compatible)."),
        (name = "dashboard", description = "The bundled web dashboard (Cairn only)."),
    ),
    components(
        schemas(
            ErrorBody, TriggerResponse, SavepointTriggerRequestBody, StopWithSavepointRequestBody,
        ),
        responses(
            Triggered, Unauthorized, JobNotFound, VertexNotFound, TriggerNotFound, NotFound,
            BadRequestBody, BadSavepointRequest, NotRunning,
        ),
    ),
    modifiers(&BearerAuth),
)]
pub(super) struct ApiDoc;

/// `rest.auth-token`'s scheme (the derive has no syntax for security schemes).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, document: &mut Document) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "Required only when `rest.auth-token` (or `rest.auth-token-file`) is set: every \
                 request must then carry `Authorization: Bearer <token>` (the scheme in any \
                 case) or the dashboard's session cookie (see `GET /`), otherwise the answer is \
                 `401` with `{\"errors\": [...]}`. Without a token the header is ignored.",
            ))
            .build();
        document
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearerAuth", SecurityScheme::Http(scheme));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    const DOCUMENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rest-api.yaml");
    const REGENERATE: &str = "CAIRN_WRITE_OPENAPI=1 cargo test -p cairn openapi";

    /// `docs/rest-api.yaml` is the document the routes and types declare, so that it cannot
    /// drift from the server (schemathesis then checks the server against it).
    #[test]
    fn docs_rest_api_yaml_is_the_generated_document() {
        let document = super::super::api().into_openapi();
        let json: Value = serde_json::from_str(&document.to_json().expect("serialises"))
            .expect("the document is JSON");
        let mut unresolved = Vec::new();
        unresolved_refs(&json, &json, &mut unresolved);
        assert!(
            unresolved.is_empty(),
            "references to nothing: {unresolved:?}"
        );

        let yaml = document.to_yaml().expect("the document serialises");
        let generated = format!(
            "# Generated from the REST routes (host/cli/src/rest/) and types (host/api/): do not\n\
             # edit. Regenerate: {REGENERATE}\n{yaml}"
        );
        let committed = std::fs::read_to_string(DOCUMENT).unwrap_or_default();
        if committed == generated {
            return;
        }
        if std::env::var_os("CAIRN_WRITE_OPENAPI").is_some() {
            std::fs::write(DOCUMENT, generated).expect("docs/rest-api.yaml is writable");
            return;
        }
        let (line, (old, new)) = committed
            .lines()
            .chain(std::iter::repeat(""))
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (old, new))| old != new)
            .unwrap_or((committed.lines().count(), ("", "(end of document)")));
        panic!(
            "docs/rest-api.yaml differs from the API the code declares, first at line {}:\n\
             - {old}\n+ {new}\nRegenerate it with: {REGENERATE}",
            line + 1
        );
    }

    /// Every `$ref` under `value` that names nothing in `document` (a route may refer to a
    /// schema by name, e.g. an optional request body).
    fn unresolved_refs(value: &Value, document: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    match item.as_str() {
                        Some(target) if key == "$ref" => {
                            let pointer = target.trim_start_matches('#');
                            if document.pointer(pointer).is_none() {
                                out.push(target.to_owned());
                            }
                        }
                        _ => unresolved_refs(item, document, out),
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    unresolved_refs(item, document, out);
                }
            }
            _ => {}
        }
    }
}
