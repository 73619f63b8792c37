//! Preparing new code for a running job (`cairn swap`): compile the component, describe it
//! with the job's own arguments, and check that its graph can take over the running one in
//! place. The switch itself happens at a barrier ([`CodeSwap`]).

use std::path::Path;
use std::sync::Arc;

use crate::{DescribeError, Engine, JobComponent, Limits, LoadError};
use cairn_core::graph::{Graph, GraphError};
use cairn_core::runtime::CodeSwap;
use cairn_wire::JobGraph;

/// Why new code cannot replace a running job's.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{label}: {cause}")]
    Describe { label: String, cause: DescribeError },
    #[error("{label}: invalid job graph: {cause}")]
    Graph {
        label: String,
        cause: Box<GraphError>,
    },
    #[error("{label} does not have the running job's shape: {difference}")]
    Shape { label: String, difference: String },
}

/// Everything needed to turn a component's bytes into a [`CodeSwap`] for one job.
pub struct Swapper {
    pub engine: Arc<Engine>,
    pub job_id: String,
    /// The arguments the job was started with: the new code describes itself with them.
    pub args: Vec<String>,
    pub limits: Limits,
    pub use_cache: bool,
    pub max_parallelism: u32,
}

impl Swapper {
    /// Compiles `bytes` (named `label` in messages) and checks it against `running`: the
    /// same shape (nodes without a parallelism of their own at `default_parallelism`), and
    /// every operator opens. Returns the swap and what the new code describes. CPU-heavy
    /// for large components.
    pub fn prepare(
        &self,
        label: &str,
        bytes: &[u8],
        running: &Graph,
        default_parallelism: u32,
    ) -> Result<(CodeSwap, JobGraph), SwapError> {
        let component = JobComponent::from_bytes(
            &self.engine,
            Path::new(label),
            bytes,
            self.use_cache,
            self.limits,
        )?;
        let described = component
            .describe(&self.args)
            .map_err(|cause| SwapError::Describe {
                label: label.to_owned(),
                cause,
            })?;
        let graph_error = |cause| SwapError::Graph {
            label: label.to_owned(),
            cause: Box::new(cause),
        };
        let graph = Graph::new(&described, default_parallelism, self.max_parallelism)
            .map_err(graph_error)?;
        if let Some(difference) = running.shape_difference(&graph) {
            return Err(SwapError::Shape {
                label: label.to_owned(),
                difference,
            });
        }
        graph
            .check_operators(&component, &self.job_id)
            .map_err(graph_error)?;
        let swap = CodeSwap {
            operators: Arc::new(component),
            graph,
        };
        Ok((swap, described))
    }
}
