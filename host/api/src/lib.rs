//! The requests and responses of the REST API every running Cairn job serves, as serde types
//! with their OpenAPI schemas: the server (`cairn`'s `rest` module) writes them, the CLI
//! client and the end-to-end tests read them, and `docs/rest-api.yaml` is generated from them
//! and from the server's routes.
//!
//! Where Flink's REST API has the same endpoint, the field names, types and presence are
//! Flink's (the types carry Flink's names, e.g. [`JobDetailsInfo`]), so tools written for
//! Flink read Cairn's answers unchanged. Fields Flink has but Cairn cannot fill are present
//! with fixed values: single-value enums or booleans whose schema admits only
//! the one value.
//!
//! - [`jobs`]: the job, its graph, status, configuration, failures and metrics.
//! - [`checkpoints`]: checkpoint statistics and configuration.
//! - [`cluster`]: the process as Flink's cluster (`/config`, `/overview`,
//!   `/jobmanager/config`).
//! - [`operations`]: asynchronous operations (savepoints, stops, swaps, disposals): their
//!   request bodies, trigger answers and status.
//! - [`params`]: the routes' path parameters.
//! - [`responses`]: the documented error answers.

pub mod checkpoints;
pub mod cluster;
pub mod jobs;
pub mod operations;
pub mod params;
pub mod responses;

pub use checkpoints::*;
pub use cluster::*;
pub use jobs::*;
pub use operations::*;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// Flink's error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub errors: Vec<String>,
}

impl ErrorBody {
    /// The errors as one line.
    pub fn message(&self) -> String {
        self.errors.join("; ")
    }
}

/// An empty JSON object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Empty {}

/// Declares a field's type that has exactly one value: a string Flink's clients expect
/// where Cairn has nothing else to say, e.g. `"className": "completed"`.
macro_rules! constant {
    ($(#[$doc:meta])* $name:ident = $value:tt) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        pub enum $name {
            #[default]
            #[serde(rename = $value)]
            Value,
        }
    };
}
pub(crate) use constant;

/// The schema of a boolean that is always `value` (Flink's fields Cairn cannot change).
fn always(value: bool) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([value]))
        .into()
}

fn always_true() -> RefOr<Schema> {
    always(true)
}

fn always_false() -> RefOr<Schema> {
    always(false)
}

/// The schema of an integer that is always 0 (Flink's counts of what Cairn does not have).
fn always_zero() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .enum_values(Some([0]))
        .into()
}
