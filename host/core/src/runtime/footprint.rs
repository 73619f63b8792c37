//! What running a graph takes — a thread per subtask, a bounded channel per connected pair
//! of subtasks — checked against what one machine can hold before anything starts, so that
//! an absurd parallelism is a clear error rather than minutes of swapping.

use cairn_wire::Partitioning;

use super::CHANNEL_CAPACITY;
use crate::batch::MAX_BATCH_BYTES;
use crate::graph::Graph;

/// The most subtasks one process runs: each is a thread, and each operator subtask a
/// sandboxed instance whose memory reservation takes address space.
pub const MAX_SUBTASKS: u64 = 4096;

/// Why a graph is too large for this machine.
#[derive(Debug, thiserror::Error)]
#[error(
    "the job needs {subtasks} subtasks (a thread each) and {channels} channels, which can \
     buffer up to {} when full; this machine runs at most {MAX_SUBTASKS} subtasks and has {} \
     of memory: lower the parallelism (-p, parallelism.default or the nodes' own)",
    indicatif::HumanBytes(*.buffers),
    indicatif::HumanBytes(*.memory)
)]
pub struct TooLarge {
    pub subtasks: u64,
    pub channels: u64,
    pub buffers: u64,
    pub memory: u64,
}

/// Subtasks and channels of a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    pub subtasks: u64,
    pub channels: u64,
}

impl Footprint {
    /// Counts what [`Job::start`](super::Job::start) would create for `graph`.
    pub fn of(graph: &Graph) -> Self {
        let subtasks = graph.nodes.iter().map(|n| u64::from(n.parallelism)).sum();
        let channels = graph
            .nodes
            .iter()
            .flat_map(|node| node.inputs.iter().map(move |edge| (node, edge)))
            .map(|(node, edge)| {
                let up = u64::from(graph.nodes[edge.upstream].parallelism);
                match edge.partitioning {
                    Partitioning::Forward => up,
                    _ => up.saturating_mul(u64::from(node.parallelism)),
                }
            })
            .fold(0u64, u64::saturating_add);
        Footprint { subtasks, channels }
    }

    /// The memory every channel holds when full (backpressure everywhere).
    pub fn buffer_bytes(&self) -> u64 {
        self.channels
            .saturating_mul((CHANNEL_CAPACITY * MAX_BATCH_BYTES) as u64)
    }

    /// Whether a machine with `memory` bytes can run it.
    pub fn check(&self, memory: u64) -> Result<(), TooLarge> {
        if self.subtasks <= MAX_SUBTASKS && self.buffer_bytes() <= memory {
            return Ok(());
        }
        Err(TooLarge {
            subtasks: self.subtasks,
            channels: self.channels,
            buffers: self.buffer_bytes(),
            memory,
        })
    }
}

/// This machine's physical memory (`MemTotal`), if it can be read.
pub fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use cairn_wire::JobGraph;

    use super::*;

    fn word_count(parallelism: u32) -> Graph {
        let mut job = JobGraph::new("wc");
        job.source("gen", cairn_wire::Source::generator(0, 10))
            .operator("split", "split", Partitioning::Rebalance)
            .operator("count", "count", Partitioning::ByKey)
            .sink("out", cairn_wire::Sink::blackhole(), Partitioning::Forward);
        Graph::new(&job, parallelism, 1 << 15).expect("a valid graph")
    }

    #[test]
    fn counts_a_thread_per_subtask_and_a_channel_per_pair() {
        let footprint = Footprint::of(&word_count(4));
        assert_eq!(footprint.subtasks, 16);
        assert_eq!(footprint.channels, 16 + 16 + 4);
        assert_eq!(footprint.buffer_bytes(), 36 * 8 * 64 * 1024);
        assert!(footprint.check(24 << 30).is_ok());
    }

    #[test]
    fn refuses_what_the_machine_cannot_hold() {
        // The generator runs at most 128 subtasks, the other three nodes 30000 each.
        let huge = Footprint::of(&word_count(30_000));
        let err = huge.check(24 << 30).unwrap_err().to_string();
        assert!(err.contains("90128 subtasks"), "{err}");
        assert!(err.contains("lower the parallelism"), "{err}");
        // Few subtasks, but channels that could hold more than the memory there is.
        let wide = Footprint::of(&word_count(256));
        assert!(wide.subtasks <= MAX_SUBTASKS);
        assert!(wide.check(24 << 30).is_err());
        assert!(wide.check(128 << 30).is_ok());
    }
}
