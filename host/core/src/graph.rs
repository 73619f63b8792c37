//! The logical job graph: what `describe` returned, validated, with parallelism resolved
//! and nodes in topological order.

use std::collections::{HashMap, VecDeque};

use cairn_wire::{JobGraph, NodeKind, Partitioning, WatermarkStrategy};

use crate::connectors::{
    Configured, ConnectorError, SINKS, SOURCES, SinkConnector, SourceConnector, sink_kind,
    source_kind,
};
use crate::operator::{MAX_NAME, OperatorError, OperatorFactory, is_side_output_name};

/// Why a job graph cannot run.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("the job graph has no nodes")]
    Empty,
    #[error("the job graph has two nodes with uid '{0}'")]
    DuplicateUid(String),
    #[error("the job graph has a node with an empty uid")]
    EmptyUid,
    #[error("node '{node}' reads from '{upstream}', which is not a node of the graph")]
    UnknownInput { node: String, upstream: String },
    #[error("node '{node}' reads from sink '{upstream}'; sinks have no output")]
    InputIsSink { node: String, upstream: String },
    #[error("the job graph has a cycle through: {}", .0.join(", "))]
    Cycle(Vec<String>),
    #[error("source '{0}' has inputs; sources read only from their connector")]
    SourceWithInputs(String),
    #[error("node '{0}' has no inputs")]
    NoInputs(String),
    #[error(
        "node '{node}' reads side output '{name}' of source '{upstream}'; only operators \
         emit to side outputs"
    )]
    SideOutputOfSource {
        node: String,
        upstream: String,
        name: String,
    },
    #[error(
        "node '{node}' reads a side output named '{name}': names are 1 to {MAX_NAME} characters"
    )]
    SideOutputName { node: String, name: String },
    #[error("sink '{0}' has a watermark strategy; sinks emit nothing (give it to the node before)")]
    WatermarksOnSink(String),
    #[error("node '{node}' uses unknown {role} connector '{connector}' (known: {})", .known.join(", "))]
    UnknownConnector {
        node: String,
        role: &'static str,
        connector: String,
        known: Vec<&'static str>,
    },
    #[error("node '{node}': {cause}")]
    Connector { node: String, cause: ConnectorError },
    #[error("node '{node}' cannot open operator '{operator}': {cause}")]
    CannotOpen {
        node: String,
        operator: String,
        cause: OperatorError,
    },
    #[error("node '{node}' has parallelism {parallelism}; it must be between 1 and {max}")]
    Parallelism {
        node: String,
        parallelism: u32,
        max: u32,
    },
    #[error(
        "forward edge '{upstream}' → '{node}' joins different parallelisms ({up} and {down}); \
         use rebalance or give both the same parallelism"
    )]
    ForwardMismatch {
        node: String,
        upstream: String,
        up: u32,
        down: u32,
    },
}

/// What a node does, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Source(Configured<dyn SourceConnector>),
    Operator {
        name: String,
        options: Vec<(String, String)>,
    },
    Sink(Configured<dyn SinkConnector>),
}

/// An input edge, by index of the upstream node in [`Graph::nodes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub upstream: usize,
    pub partitioning: Partitioning,
    /// `Some(name)`: the edge carries the upstream operator's side output `name` only.
    pub side_output: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    pub uid: String,
    pub role: Role,
    pub inputs: Vec<Edge>,
    pub parallelism: u32,
    /// Watermarks made from the timestamps it emits (sources and operators only).
    pub watermarks: Option<WatermarkStrategy>,
}

/// A validated job graph; every node comes after all its upstream nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    pub name: String,
    pub nodes: Vec<GraphNode>,
    /// Number of key groups (`pipeline.max-parallelism`).
    pub max_parallelism: u32,
}

impl Graph {
    /// Validates `graph`. Nodes without a parallelism of their own get `default_parallelism`
    /// (capped by what their connector supports).
    pub fn new(
        graph: &JobGraph,
        default_parallelism: u32,
        max_parallelism: u32,
    ) -> Result<Self, GraphError> {
        if graph.nodes.is_empty() {
            return Err(GraphError::Empty);
        }
        let mut index = HashMap::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            if node.uid.is_empty() {
                return Err(GraphError::EmptyUid);
            }
            if index.insert(node.uid.as_str(), i).is_some() {
                return Err(GraphError::DuplicateUid(node.uid.clone()));
            }
        }

        // Check every node on its own: role, connector, inputs, parallelism.
        let mut nodes = Vec::with_capacity(graph.nodes.len());
        for node in &graph.nodes {
            let connector_error = |source| GraphError::Connector {
                node: node.uid.clone(),
                cause: source,
            };
            let unknown = |role, known| GraphError::UnknownConnector {
                node: node.uid.clone(),
                role,
                connector: match &node.kind {
                    NodeKind::Source(c) | NodeKind::Sink(c) | NodeKind::Operator(c) => c.clone(),
                },
                known,
            };
            let role = match &node.kind {
                NodeKind::Source(c) => match source_kind(c) {
                    Some(kind) => {
                        Role::Source(kind.configure(&node.options).map_err(connector_error)?)
                    }
                    None => {
                        return Err(unknown("source", SOURCES.iter().map(|k| k.name).collect()));
                    }
                },
                NodeKind::Sink(c) => match sink_kind(c) {
                    Some(kind) => {
                        Role::Sink(kind.configure(&node.options).map_err(connector_error)?)
                    }
                    None => return Err(unknown("sink", SINKS.iter().map(|k| k.name).collect())),
                },
                NodeKind::Operator(name) => Role::Operator {
                    name: name.clone(),
                    options: node.options.clone(),
                },
            };
            if matches!(role, Role::Sink(_)) && node.watermarks.is_some() {
                return Err(GraphError::WatermarksOnSink(node.uid.clone()));
            }
            match (&role, node.inputs.is_empty()) {
                (Role::Source(_), false) => {
                    return Err(GraphError::SourceWithInputs(node.uid.clone()));
                }
                (Role::Operator { .. } | Role::Sink(_), true) => {
                    return Err(GraphError::NoInputs(node.uid.clone()));
                }
                _ => {}
            }
            let mut inputs = Vec::with_capacity(node.inputs.len());
            for input in &node.inputs {
                let upstream = *index.get(input.upstream.as_str()).ok_or_else(|| {
                    GraphError::UnknownInput {
                        node: node.uid.clone(),
                        upstream: input.upstream.clone(),
                    }
                })?;
                if matches!(graph.nodes[upstream].kind, NodeKind::Sink(_)) {
                    return Err(GraphError::InputIsSink {
                        node: node.uid.clone(),
                        upstream: input.upstream.clone(),
                    });
                }
                if let Some(name) = &input.side_output {
                    if !is_side_output_name(name) {
                        return Err(GraphError::SideOutputName {
                            node: node.uid.clone(),
                            name: name.clone(),
                        });
                    }
                    if matches!(graph.nodes[upstream].kind, NodeKind::Source(_)) {
                        return Err(GraphError::SideOutputOfSource {
                            node: node.uid.clone(),
                            upstream: input.upstream.clone(),
                            name: name.clone(),
                        });
                    }
                }
                inputs.push(Edge {
                    upstream,
                    partitioning: input.partitioning,
                    side_output: input.side_output.clone(),
                });
            }
            let connector_max = match &role {
                Role::Source(source) => source.connector.max_parallelism(),
                _ => None,
            };
            let max = connector_max
                .unwrap_or(max_parallelism)
                .min(max_parallelism);
            let parallelism = node.parallelism.unwrap_or(default_parallelism.min(max));
            if parallelism == 0 || parallelism > max {
                return Err(GraphError::Parallelism {
                    node: node.uid.clone(),
                    parallelism,
                    max,
                });
            }
            nodes.push(GraphNode {
                uid: node.uid.clone(),
                role,
                inputs,
                parallelism,
                watermarks: node.watermarks,
            });
        }

        for node in &nodes {
            for edge in &node.inputs {
                let up = &nodes[edge.upstream];
                if edge.partitioning == Partitioning::Forward && up.parallelism != node.parallelism
                {
                    return Err(GraphError::ForwardMismatch {
                        node: node.uid.clone(),
                        upstream: up.uid.clone(),
                        up: up.parallelism,
                        down: node.parallelism,
                    });
                }
            }
        }

        Ok(Graph {
            name: graph.name.clone(),
            nodes: topological_order(nodes)?,
            max_parallelism,
        })
    }

    /// Every subtask of the job: the sum of its nodes' parallelism.
    pub fn subtasks(&self) -> u32 {
        self.nodes.iter().map(|n| n.parallelism).sum()
    }

    /// The edges reading from node `upstream`: each with the index of the node reading and
    /// which of its inputs the edge is.
    pub fn outputs(&self, upstream: usize) -> impl Iterator<Item = (usize, u32, &Edge)> + '_ {
        self.nodes.iter().enumerate().flat_map(move |(i, node)| {
            node.inputs
                .iter()
                .enumerate()
                .filter(move |(_, e)| e.upstream == upstream)
                .map(move |(input, e)| (i, input as u32, e))
        })
    }

    /// Opens every operator the graph names once, in a throwaway instance, so that a name
    /// the code does not implement (or options it refuses) stops the job before it starts.
    pub fn check_operators(
        &self,
        operators: &dyn OperatorFactory,
        job_id: &str,
    ) -> Result<(), GraphError> {
        for node in &self.nodes {
            if let Role::Operator { name, options } = &node.role {
                let ctx = cairn_wire::Context {
                    job_id: job_id.to_owned(),
                    operator_uid: node.uid.clone(),
                    subtask: 0,
                    parallelism: node.parallelism,
                    attempt: 0,
                    options: options.clone(),
                    max_parallelism: self.max_parallelism,
                    key_groups: cairn_wire::KeyGroupRange::of_subtask(
                        0,
                        self.max_parallelism,
                        node.parallelism,
                    ),
                };
                if let Err(cause) = operators.open(&ctx, name) {
                    return Err(GraphError::CannotOpen {
                        node: node.uid.clone(),
                        operator: name.clone(),
                        cause,
                    });
                }
            }
        }
        Ok(())
    }

    /// Why `new` cannot replace this graph's code in place, if it cannot: a swap keeps the
    /// running sources, sinks and channels, so the shape must stay — the same uids with the
    /// same kinds, connectors, inputs and parallelism. Operators may change name and options.
    pub fn shape_difference(&self, new: &Graph) -> Option<String> {
        fn uids(graph: &Graph) -> Vec<&str> {
            let mut uids: Vec<&str> = graph.nodes.iter().map(|n| n.uid.as_str()).collect();
            uids.sort_unstable();
            uids
        }
        if uids(self) != uids(new) {
            return Some(format!(
                "the nodes differ: running [{}], new [{}]",
                uids(self).join(", "),
                uids(new).join(", ")
            ));
        }
        let edges = |g: &Graph, node: &GraphNode| -> Vec<(String, Partitioning)> {
            node.inputs
                .iter()
                .map(|e| (g.nodes[e.upstream].uid.clone(), e.partitioning))
                .collect()
        };
        for old in &self.nodes {
            let now = new.nodes.iter().find(|n| n.uid == old.uid)?;
            let uid = &old.uid;
            let same_role = match (&old.role, &now.role) {
                (Role::Operator { .. }, Role::Operator { .. }) => true,
                (a, b) => a == b,
            };
            if !same_role {
                return Some(format!(
                    "node '{uid}' changes from {} to {}",
                    old.role.describe(),
                    now.role.describe()
                ));
            }
            if old.parallelism != now.parallelism {
                return Some(format!(
                    "node '{uid}' changes parallelism from {} to {}",
                    old.parallelism, now.parallelism
                ));
            }
            if edges(self, old) != edges(new, now) {
                return Some(format!("node '{uid}' changes its inputs"));
            }
        }
        None
    }
}

impl Role {
    /// For messages: `operator 'count'`, `source File { path: "in.txt" }`, …
    fn describe(&self) -> String {
        match self {
            Role::Source(source) => format!("source {source}"),
            Role::Operator { name, .. } => format!("operator '{name}'"),
            Role::Sink(sink) => format!("sink {sink}"),
        }
    }
}

/// Kahn's algorithm; whatever cannot be ordered lies on a cycle (or behind one).
fn topological_order(nodes: Vec<GraphNode>) -> Result<Vec<GraphNode>, GraphError> {
    let n = nodes.len();
    let mut pending: Vec<usize> = nodes.iter().map(|node| node.inputs.len()).collect();
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for (j, node) in nodes.iter().enumerate() {
            let edges = node.inputs.iter().filter(|e| e.upstream == i).count();
            if edges > 0 {
                pending[j] -= edges;
                if pending[j] == 0 {
                    ready.push_back(j);
                }
            }
        }
    }
    if order.len() < n {
        let stuck = (0..n)
            .filter(|i| !order.contains(i))
            .map(|i| nodes[i].uid.clone())
            .collect();
        return Err(GraphError::Cycle(stuck));
    }
    // Renumber edges to the new positions.
    let mut position = vec![0; n];
    for (new, &old) in order.iter().enumerate() {
        position[old] = new;
    }
    let mut slots: Vec<Option<GraphNode>> = nodes.into_iter().map(Some).collect();
    Ok(order
        .iter()
        .map(|&old| {
            let mut node = slots[old].take().expect("each node is ordered once");
            for edge in &mut node.inputs {
                edge.upstream = position[edge.upstream];
            }
            node
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use cairn_wire::{Input, Node, Sink, Source};

    use super::*;

    fn word_count(input: &str) -> JobGraph {
        let mut job = JobGraph::new("wc");
        job.source("lines", Source::file(input))
            .operator("split", "split", Partitioning::Rebalance)
            .operator("count", "count", Partitioning::ByKey)
            .sink("out", Sink::blackhole(), Partitioning::Forward);
        job
    }

    /// A file that exists: this one, from the crate's folder (where tests run).
    fn this_file() -> &'static str {
        concat!(env!("CARGO_MANIFEST_DIR"), "/src/graph.rs")
    }

    #[test]
    fn valid_graph_resolves_parallelism() {
        let graph = Graph::new(&word_count(this_file()), 4, 128).unwrap();
        let p: Vec<_> = graph
            .nodes
            .iter()
            .map(|n| (n.uid.as_str(), n.parallelism))
            .collect();
        // The file source cannot run in parallel, everything else takes the default.
        assert_eq!(p, [("lines", 1), ("split", 4), ("count", 4), ("out", 4)]);
        let outs: Vec<_> = graph.outputs(1).collect();
        let by_key = Edge {
            upstream: 1,
            partitioning: Partitioning::ByKey,
            side_output: None,
        };
        assert_eq!(outs, [(2, 0, &by_key)]);
    }

    #[test]
    fn nodes_are_sorted_topologically() {
        let mut job = word_count(this_file());
        job.nodes.reverse();
        let graph = Graph::new(&job, 1, 128).unwrap();
        let uids: Vec<_> = graph.nodes.iter().map(|n| n.uid.as_str()).collect();
        assert_eq!(uids, ["lines", "split", "count", "out"]);
        assert_eq!(graph.nodes[3].inputs[0].upstream, 2);
    }

    #[test]
    fn a_swap_keeps_the_shape_but_may_change_operators() {
        let graph = |job: &JobGraph| Graph::new(job, 2, 128).unwrap();
        let running = graph(&word_count(this_file()));
        // Other operator names and options, nodes listed in another order: same shape.
        let mut job = word_count(this_file());
        job.nodes[2].kind = NodeKind::Operator("count-v2".into());
        job.nodes[2].options = vec![("mode".into(), "fast".into())];
        job.nodes.reverse();
        assert_eq!(running.shape_difference(&graph(&job)), None);

        let mut job = word_count(this_file());
        job.nodes[3].uid = "sink".into();
        assert_eq!(
            running.shape_difference(&graph(&job)).unwrap(),
            "the nodes differ: running [count, lines, out, split], new [count, lines, sink, split]"
        );
        let mut job = word_count(this_file());
        job.nodes[1].parallelism = Some(3);
        assert_eq!(
            running.shape_difference(&graph(&job)).unwrap(),
            "node 'split' changes parallelism from 2 to 3"
        );
        let mut job = word_count(this_file());
        job.nodes[2].inputs[0].partitioning = Partitioning::Rebalance;
        assert_eq!(
            running.shape_difference(&graph(&job)).unwrap(),
            "node 'count' changes its inputs"
        );
        let mut job = word_count(this_file());
        job.nodes[3].kind = NodeKind::Sink("stdout".into());
        assert_eq!(
            running.shape_difference(&graph(&job)).unwrap(),
            "node 'out' changes from sink 'blackhole' to sink 'stdout'"
        );
    }

    fn error(job: &JobGraph) -> String {
        Graph::new(job, 2, 128).unwrap_err().to_string()
    }

    #[test]
    fn bad_graphs_are_refused_with_reasons() {
        let mut job = word_count(this_file());
        job.nodes[2].uid = "split".into();
        assert_eq!(error(&job), "the job graph has two nodes with uid 'split'");

        let mut job = word_count(this_file());
        job.nodes[2].inputs[0].upstream = "splt".into();
        assert_eq!(
            error(&job),
            "node 'count' reads from 'splt', which is not a node of the graph"
        );

        let mut job = word_count(this_file());
        job.nodes[1].inputs.push(Input {
            upstream: "count".into(),
            partitioning: Partitioning::Rebalance,
            side_output: None,
        });
        assert_eq!(
            error(&job),
            "the job graph has a cycle through: split, count, out"
        );

        let mut job = word_count(this_file());
        job.nodes[1].inputs[0].side_output = Some("late".into());
        assert_eq!(
            error(&job),
            "node 'split' reads side output 'late' of source 'lines'; only operators emit to \
             side outputs"
        );
        job.nodes[1].inputs[0].side_output = Some("x".repeat(65));
        assert!(error(&job).contains("names are 1 to 64 characters"));
        let mut job = word_count(this_file());
        job.nodes[3].inputs[0].side_output = Some("late".into());
        let graph = Graph::new(&job, 1, 128).unwrap();
        assert_eq!(
            graph.nodes[3].inputs[0].side_output.as_deref(),
            Some("late")
        );

        let mut job = word_count(this_file());
        job.nodes[3].kind = NodeKind::Sink("pulsar".into());
        assert_eq!(
            error(&job),
            "node 'out' uses unknown sink connector 'pulsar' (known: file, stdout, blackhole, kafka)"
        );

        let mut job = word_count("/no/such/input.txt");
        let err = error(&job);
        assert!(
            err.starts_with("node 'lines': cannot open input /no/such/input.txt:"),
            "{err}"
        );
        job.nodes[0].options = vec![("pth".into(), "x".into())];
        assert_eq!(
            error(&job),
            "node 'lines': file source has no option 'pth' (it takes: path, rate)"
        );

        let mut job = word_count(this_file());
        job.nodes[2].parallelism = Some(3);
        assert!(
            error(&job)
                .starts_with("forward edge 'count' → 'out' joins different parallelisms (3 and 2)")
        );

        let mut job = word_count(this_file());
        job.nodes[0].parallelism = Some(2);
        assert_eq!(
            error(&job),
            "node 'lines' has parallelism 2; it must be between 1 and 1"
        );

        let mut job = word_count(this_file());
        job.nodes.push(Node {
            uid: "orphan".into(),
            kind: NodeKind::Operator("x".into()),
            inputs: vec![],
            parallelism: None,
            options: vec![],
            watermarks: None,
        });
        assert_eq!(error(&job), "node 'orphan' has no inputs");

        let mut job = word_count(this_file());
        let sink = job.nodes.len() - 1;
        job.nodes[sink].watermarks = Some(cairn_wire::WatermarkStrategy::monotonous_timestamps());
        assert!(
            error(&job).contains("has a watermark strategy; sinks emit nothing"),
            "{}",
            error(&job)
        );
    }
}
