use cairn_sdk::{Context, JobGraph, PackedBatch, State};
use wasmtime::component::{HasSelf, Linker, ResourceAny, ResourceTable};
use wasmtime::{ResourceLimiter, Store, Trap, WasmBacktrace};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::Limits;
use super::bindings::cairn::job::{log, types as wit};
use super::bindings::{CairnJob, CairnJobPre};
use crate::operator::{OperatorError, OperatorInstance};

/// How much of a guest's stderr is kept: enough for a panic message.
const STDERR_CAPACITY: usize = 64 * 1024;

/// Errors of a guest call, as the runtime sees them.
pub type GuestError = OperatorError;

/// Per-instance host state: an empty WASI context (no files, network, env or args), the
/// memory limiter, and the guest's captured stderr.
pub(crate) struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    stderr: MemoryOutputPipe,
    label: String,
}

impl GuestState {
    pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
        CairnJob::add_to_linker::<_, HasSelf<_>>(linker, |state| state)
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::Host for GuestState {}

impl log::Host for GuestState {
    fn log(&mut self, level: log::Level, message: String) {
        let task = self.label.as_str();
        match level {
            log::Level::Trace => tracing::trace!(target: "guest", task, "{message}"),
            log::Level::Debug => tracing::debug!(target: "guest", task, "{message}"),
            log::Level::Info => tracing::info!(target: "guest", task, "{message}"),
            log::Level::Warn => tracing::warn!(target: "guest", task, "{message}"),
            log::Level::Error => tracing::error!(target: "guest", task, "{message}"),
        }
    }
}

/// Denies memory growth beyond the limit and remembers that it did, so the trap that
/// follows (the guest's allocator aborts) is reported as what it is.
struct MemoryLimiter {
    limit: u64,
    exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// One sandboxed instance of a job component: its own `Store`, memory and limits.
pub struct Guest {
    store: Store<GuestState>,
    bindings: CairnJob,
    limits: Limits,
}

impl Guest {
    pub(crate) fn instantiate(
        pre: &CairnJobPre<GuestState>,
        limits: Limits,
        label: String,
    ) -> Result<Self, GuestError> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let state = GuestState {
            wasi: WasiCtxBuilder::new().stderr(stderr.clone()).build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: limits.memory,
                exceeded: false,
            },
            stderr,
            label,
        };
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(limits.deadline_ticks());
        let bindings = pre
            .instantiate(&mut store)
            .map_err(|e| classify(&store, limits, e))?;
        Ok(Guest {
            store,
            bindings,
            limits,
        })
    }

    /// Calls the job's `describe`. The outer error is a failed call; the inner one the
    /// job's own refusal (its message).
    pub fn describe(&mut self, args: &[String]) -> Result<Result<JobGraph, String>, GuestError> {
        let result =
            self.call(|bindings, store| bindings.cairn_job_job().call_describe(store, args))?;
        Ok(result.map(graph_from_wit))
    }

    /// Opens operator `name` for the subtask `ctx` describes, consuming the instance.
    pub fn open(mut self, ctx: &Context, name: &str) -> Result<GuestOperator, GuestError> {
        let wit_ctx = wit::Context {
            job_id: ctx.job_id.clone(),
            operator_uid: ctx.operator_uid.clone(),
            subtask: ctx.subtask,
            parallelism: ctx.parallelism,
            attempt: ctx.attempt,
            options: ctx.options.clone(),
        };
        let handle = self
            .call(|bindings, store| bindings.cairn_job_job().call_open(store, &wit_ctx, name))?
            .map_err(GuestError::Failed)?;
        Ok(GuestOperator {
            guest: self,
            handle,
        })
    }

    /// Runs one guest call under the call deadline and turns its failure into a
    /// [`GuestError`].
    fn call<R>(
        &mut self,
        f: impl FnOnce(&CairnJob, &mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> Result<R, GuestError> {
        self.store.set_epoch_deadline(self.limits.deadline_ticks());
        f(&self.bindings, &mut self.store).map_err(|e| classify(&self.store, self.limits, e))
    }
}

fn classify(store: &Store<GuestState>, limits: Limits, error: wasmtime::Error) -> GuestError {
    let state = store.data();
    if state.limiter.exceeded {
        return GuestError::MemoryLimit(limits.memory);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => GuestError::Timeout(limits.call_timeout),
        Some(trap) => {
            // Where it happened: the innermost guest functions, names demangled.
            let frames: Vec<String> = error
                .downcast_ref::<WasmBacktrace>()
                .map(|bt| {
                    bt.frames()
                        .iter()
                        .filter_map(|f| f.func_name())
                        .map(|name| format!("{:#}", rustc_demangle::demangle(name)))
                        .filter(|name| !is_runtime_frame(name))
                        .take(3)
                        .collect()
                })
                .unwrap_or_default();
            let trap = if frames.is_empty() {
                trap.to_string()
            } else {
                format!("{trap} in {}", frames.join(" < "))
            };
            let stderr = String::from_utf8_lossy(&state.stderr.contents()).into_owned();
            let said: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
                .collect();
            if said.is_empty() {
                GuestError::Trap(trap.to_string())
            } else {
                GuestError::Trap(format!("{trap}; the guest wrote: {}", said.join(" ")))
            }
        }
        None => GuestError::Host(format!("{error:#}")),
    }
}

/// Frames of the language runtime (panicking, aborting), not of the job's own code.
fn is_runtime_frame(name: &str) -> bool {
    [
        "std::",
        "core::",
        "alloc::",
        "__rust",
        "rust_panic",
        "abort",
        "cairn_sdk::",
        "<cairn_sdk::",
        "<T as cairn_sdk::",
        "wit_bindgen::",
        "cairn:job/",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
        || name.contains("panic")
}

/// An operator resource inside its own guest instance.
pub struct GuestOperator {
    guest: Guest,
    handle: ResourceAny,
}

impl OperatorInstance for GuestOperator {
    fn process(&mut self, input: u32, batch: PackedBatch) -> Result<PackedBatch, GuestError> {
        let batch = wit::PackedBatch {
            data: batch.data,
            offsets: batch.offsets,
            timestamps: batch.timestamps,
        };
        let handle = self.handle;
        let out = self
            .guest
            .call(|b, store| {
                b.cairn_job_job()
                    .operator()
                    .call_process(store, handle, input, &batch)
            })?
            .map_err(GuestError::Failed)?;
        Ok(batch_from_wit(out))
    }

    fn finish(&mut self) -> Result<PackedBatch, GuestError> {
        let handle = self.handle;
        let out = self
            .guest
            .call(|b, store| b.cairn_job_job().operator().call_finish(store, handle))?
            .map_err(GuestError::Failed)?;
        Ok(batch_from_wit(out))
    }

    fn snapshot(&mut self, checkpoint: u64) -> Result<State, GuestError> {
        let handle = self.handle;
        let state = self
            .guest
            .call(|b, store| {
                b.cairn_job_job()
                    .operator()
                    .call_snapshot(store, handle, checkpoint)
            })?
            .map_err(GuestError::Failed)?;
        Ok(State {
            version: state.version,
            data: state.data,
        })
    }

    fn restore(&mut self, state: State) -> Result<(), GuestError> {
        let handle = self.handle;
        let state = wit::State {
            version: state.version,
            data: state.data,
        };
        self.guest
            .call(|b, store| {
                b.cairn_job_job()
                    .operator()
                    .call_restore(store, handle, &state)
            })?
            .map_err(|e| GuestError::Failed(format!("cannot restore state: {e}")))
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) -> Result<(), GuestError> {
        let handle = self.handle;
        self.guest.call(|b, store| {
            b.cairn_job_job()
                .operator()
                .call_checkpoint_complete(store, handle, checkpoint)
        })
    }
}

fn batch_from_wit(batch: wit::PackedBatch) -> PackedBatch {
    PackedBatch {
        data: batch.data,
        offsets: batch.offsets,
        timestamps: batch.timestamps,
    }
}

fn graph_from_wit(graph: wit::JobGraph) -> JobGraph {
    use cairn_sdk::{Input, Node, NodeKind, Partitioning};
    JobGraph {
        name: graph.name,
        nodes: graph
            .nodes
            .into_iter()
            .map(|node| Node {
                uid: node.uid,
                kind: match node.kind {
                    wit::NodeKind::Source(c) => NodeKind::Source(c),
                    wit::NodeKind::Operator(n) => NodeKind::Operator(n),
                    wit::NodeKind::Sink(c) => NodeKind::Sink(c),
                },
                inputs: node
                    .inputs
                    .into_iter()
                    .map(|input| Input {
                        upstream: input.upstream,
                        partitioning: match input.partitioning {
                            wit::Partitioning::Forward => Partitioning::Forward,
                            wit::Partitioning::Rebalance => Partitioning::Rebalance,
                            wit::Partitioning::ByKey => Partitioning::ByKey,
                            wit::Partitioning::Broadcast => Partitioning::Broadcast,
                        },
                    })
                    .collect(),
                parallelism: node.parallelism,
                options: node.options,
            })
            .collect(),
        config: graph.config,
    }
}
