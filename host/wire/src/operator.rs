//! What the host and an operator instance exchange besides batches: where the instance runs,
//! and its state as it is checkpointed.

use crate::key_groups::KeyGroupRange;

/// Where an operator instance runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// 32 lowercase hex characters.
    pub job_id: String,
    pub operator_uid: String,
    /// 0-based index of this subtask among the node's subtasks.
    pub subtask: u32,
    pub parallelism: u32,
    /// 0 on the first run; counts up on every restart of the job.
    pub attempt: u32,
    /// The options of this operator's node, as the graph set them.
    pub options: Vec<(String, String)>,
    /// The number of key groups (`pipeline.max-parallelism`).
    pub max_parallelism: u32,
    /// The key groups this subtask owns.
    pub key_groups: KeyGroupRange,
}

impl Context {
    /// The value of option `name` of this operator's node (the last one set wins).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An operator subtask's state as it is checkpointed (`cairn:job/types.snapshot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Which encoding the state is in, as the operator's code numbers them (the SDKs call it
    /// the state version).
    pub version: u32,
    /// Operator-wide state, as items that [`mode`](Self::mode) shares out on rescaling.
    pub operator_state: Vec<Vec<u8>>,
    pub mode: OperatorStateMode,
    /// Keyed state: at most one chunk per key group, entries in the [`keyed`](crate::keyed)
    /// encoding.
    pub keyed: Vec<KeyedChunk>,
    pub value_encoding: ValueEncoding,
}

impl Snapshot {
    /// No state at all: nothing is stored, nothing restored.
    pub fn is_empty(&self) -> bool {
        self.operator_state.is_empty() && self.keyed.is_empty()
    }
}

/// The keyed state of one key group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedChunk {
    pub key_group: u16,
    pub entries: Vec<u8>,
}

/// How operator-wide state items are shared out when the parallelism changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OperatorStateMode {
    /// All old subtasks' items, in subtask order, split into contiguous runs.
    #[default]
    Split,
    /// Every new subtask gets every old subtask's items.
    Union,
    /// One opaque item per subtask that cannot be shared out: the state of a
    /// `cairn:job@0.2.0` component, restored only at the same parallelism. Not a mode a
    /// `cairn:job@0.3.0` operator can choose.
    Whole,
}

/// How keyed state values are encoded, for tools that show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ValueEncoding {
    #[default]
    Bytes,
    Utf8,
    U64Le,
    S64Le,
    F64Le,
    Json,
}

impl ValueEncoding {
    /// Its name in the WIT and in `_metadata`.
    pub fn name(self) -> &'static str {
        match self {
            ValueEncoding::Bytes => "bytes",
            ValueEncoding::Utf8 => "utf8",
            ValueEncoding::U64Le => "u64-le",
            ValueEncoding::S64Le => "s64-le",
            ValueEncoding::F64Le => "f64-le",
            ValueEncoding::Json => "json",
        }
    }
}
