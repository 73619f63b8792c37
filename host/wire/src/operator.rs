//! What the host and an operator instance exchange besides batches: where the instance runs,
//! and its state as it is checkpointed.

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

/// An operator's state as it is checkpointed: the bytes, and the version of their encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Which encoding `data` is in, as the operator's code numbers them
    /// (the SDKs call it the state version).
    pub version: u32,
    /// Empty: no state (nothing is stored, nothing restored).
    pub data: Vec<u8>,
}
