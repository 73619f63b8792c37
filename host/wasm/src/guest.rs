use std::sync::Arc;

use cairn_wire::{
    Context, JobGraph, KeyedChunk, OperatorStateMode, PackedBatch, Snapshot, ValueEncoding,
};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{
    Component, HasData, HasSelf, Linker, ResourceAny, ResourceTable, ResourceType,
};
use wasmtime::{ResourceLimiter, Store, Trap, WasmBacktrace};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::sync as wasi;
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::cairn::job::{keys, log, metrics, outputs, time, timers, types as wit};
use super::bindings::{CairnJob, CairnJobPre};
use super::bindings_v2::cairn::job::{log as log_v2, types as wit_v2};
use super::bindings_v2::{CairnJob as CairnJobV2, CairnJobPre as CairnJobPreV2};
use super::bindings_v3::cairn::job::{keys as keys_v3, log as log_v3, types as wit_v3};
use super::bindings_v3::{CairnJob as CairnJobV3, CairnJobPre as CairnJobPreV3};
use super::stdio::{GuestOutput, Stream};
use super::{Contract, Limits};
use cairn_core::operator::{CallContext, OperatorError, OperatorInstance};
use cairn_core::timer_service::TimerService;
use cairn_wire::KeyGroupRange;
use cairn_wire::timers::TimeDomain;

/// Errors of a guest call, as the runtime sees them.
pub type GuestError = OperatorError;

/// Per-instance host state: a WASI context with no capabilities (no files, network, env or
/// args; stdio goes to the log), the memory limiter, and the guest's stderr.
pub(crate) struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    stderr: GuestOutput,
    label: Arc<str>,
    /// The job's number of key groups, once an operator is open (`keys.key-group`).
    max_parallelism: Option<u32>,
    /// The subtask's timers, side outputs and counters, lent to the instance for the length
    /// of each operator call that may use them (see [`lend`]); `None` between them.
    call: Option<CallContext>,
}

/// A component linked for its contract version, ready to instantiate.
pub(crate) enum Pre {
    V0_4(CairnJobPre<GuestState>),
    V0_3(CairnJobPreV3<GuestState>),
    V0_2(CairnJobPreV2<GuestState>),
}

impl Pre {
    pub(crate) fn new(
        contract: Contract,
        instance_pre: wasmtime::component::InstancePre<GuestState>,
    ) -> wasmtime::Result<Self> {
        Ok(match contract {
            Contract::V0_4 => Pre::V0_4(CairnJobPre::new(instance_pre)?),
            Contract::V0_3 => Pre::V0_3(CairnJobPreV3::new(instance_pre)?),
            Contract::V0_2 => Pre::V0_2(CairnJobPreV2::new(instance_pre)?),
        })
    }

    fn engine(&self) -> &wasmtime::Engine {
        match self {
            Pre::V0_4(pre) => pre.engine(),
            Pre::V0_3(pre) => pre.engine(),
            Pre::V0_2(pre) => pre.engine(),
        }
    }
}

/// An instance's exports, by contract version.
enum Bindings {
    V0_4(CairnJob),
    V0_3(CairnJobV3),
    V0_2(CairnJobV2),
}

/// `$keyed` for a component of a contract with keyed state (0.4.0, 0.3.0), with `$b` its
/// bindings and `$wit` its types module (the same shapes in both); `$v2` for 0.2.0's.
macro_rules! by_contract {
    ($bindings:expr, |$b:ident, $wit:ident| $keyed:expr, |$b2:ident| $v2:expr $(,)?) => {
        match $bindings {
            Bindings::V0_4($b) => {
                // Calls passing no records or state leave it unused.
                #[allow(unused_imports)]
                use super::bindings::cairn::job::types as $wit;
                $keyed
            }
            Bindings::V0_3($b) => {
                #[allow(unused_imports)]
                use super::bindings_v3::cairn::job::types as $wit;
                $keyed
            }
            Bindings::V0_2($b2) => $v2,
        }
    };
}

/// The WASI interfaces [`GuestState::link`] provides, by name without version: guests built
/// against any 0.2.x of them link (wasmtime matches versions semver-compatibly).
const PROVIDED_WASI: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/exit",
    "wasi:cli/environment",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// The io interfaces' host side is the resource table alone.
struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

impl GuestState {
    /// Links what a job component may import: Cairn's `log`, and of WASI only what guest
    /// languages' runtimes need — clocks, randomness, stdio (output to the log, input
    /// empty), the (empty) environment, exit, and the io streams under them. Any other
    /// import `component` has (filesystem, sockets, http: toolchains add them whether or
    /// not the code uses them) is linked to a trap, so it instantiates, and a call fails.
    pub(crate) fn link(
        linker: &mut Linker<GuestState>,
        component: &Component,
        contract: Contract,
    ) -> wasmtime::Result<()> {
        match contract {
            Contract::V0_4 => CairnJob::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?,
            Contract::V0_3 => CairnJobV3::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?,
            Contract::V0_2 => CairnJobV2::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?,
        }
        let l = linker;
        wasi::io::error::add_to_linker::<_, HasTable>(l, |s| &mut s.table)?;
        wasi::io::poll::add_to_linker::<_, HasTable>(l, |s| &mut s.table)?;
        wasi::io::streams::add_to_linker::<_, HasTable>(l, |s| &mut s.table)?;
        wasi::clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, WasiClocksView::clocks)?;
        wasi::clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, WasiClocksView::clocks)?;
        wasi::random::random::add_to_linker::<_, WasiRandom>(l, WasiRandomView::random)?;
        wasi::random::insecure::add_to_linker::<_, WasiRandom>(l, WasiRandomView::random)?;
        wasi::random::insecure_seed::add_to_linker::<_, WasiRandom>(l, WasiRandomView::random)?;
        wasi::cli::exit::add_to_linker::<_, WasiCli>(l, WasiCliView::cli)?;
        wasi::cli::environment::add_to_linker::<_, WasiCli>(l, WasiCliView::cli)?;
        wasi::cli::stdin::add_to_linker::<_, WasiCli>(l, WasiCliView::cli)?;
        wasi::cli::stdout::add_to_linker::<_, WasiCli>(l, WasiCliView::cli)?;
        wasi::cli::stderr::add_to_linker::<_, WasiCli>(l, WasiCliView::cli)?;
        wasi::cli::terminal_input::add_to_linker::<_, WasiCli>(l, WasiCliView::cli)?;
        wasi::cli::terminal_output::add_to_linker::<_, WasiCli>(l, WasiCliView::cli)?;
        wasi::cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, WasiCliView::cli)?;
        wasi::cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, WasiCliView::cli)?;
        wasi::cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, WasiCliView::cli)?;
        link_traps(l, component)
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

impl wit_v3::Host for GuestState {}

impl wit_v2::Host for GuestState {}

impl time::Host for GuestState {}

impl GuestState {
    fn log(&self, level: tracing::Level, message: &str) {
        let task = &*self.label;
        match level {
            tracing::Level::TRACE => tracing::trace!(target: "guest", task, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(target: "guest", task, "{message}"),
            tracing::Level::INFO => tracing::info!(target: "guest", task, "{message}"),
            tracing::Level::WARN => tracing::warn!(target: "guest", task, "{message}"),
            tracing::Level::ERROR => tracing::error!(target: "guest", task, "{message}"),
        }
    }
}

/// `log.log` of each contract version (the same interface in all).
macro_rules! impl_log {
    ($($log:ident),*) => {$(
        impl $log::Host for GuestState {
            fn log(&mut self, level: $log::Level, message: String) {
                let level = match level {
                    $log::Level::Trace => tracing::Level::TRACE,
                    $log::Level::Debug => tracing::Level::DEBUG,
                    $log::Level::Info => tracing::Level::INFO,
                    $log::Level::Warn => tracing::Level::WARN,
                    $log::Level::Error => tracing::Level::ERROR,
                };
                GuestState::log(self, level, &message);
            }
        }
    )*};
}
impl_log!(log, log_v3, log_v2);

/// `keys.key-group` of each contract version that has it.
macro_rules! impl_keys {
    ($($keys:ident),*) => {$(
        impl $keys::Host for GuestState {
            fn key_group(&mut self, key: Vec<u8>) -> u16 {
                // Before an operator is open there are no key groups; `describe` has no use
                // for one.
                let max = self.max_parallelism.unwrap_or(1);
                // Below max-parallelism, which is at most 2^15.
                cairn_wire::key_groups::key_group(&key, max) as u16
            }
        }
    )*};
}
impl_keys!(keys, keys_v3);

fn domain_from_wit(domain: time::TimeDomain) -> TimeDomain {
    match domain {
        time::TimeDomain::EventTime => TimeDomain::EventTime,
        time::TimeDomain::ProcessingTime => TimeDomain::ProcessingTime,
    }
}

/// What a guest is told when it uses timers, side outputs or counters in another call.
const OUTSIDE_A_CALL: &str = "timers, side outputs and counters are for the operator's \
     process, on-timer and finish calls only";

impl GuestState {
    /// The subtask's call context, during the calls that have it.
    fn call(&mut self) -> Result<&mut CallContext, &'static str> {
        self.call.as_mut().ok_or(OUTSIDE_A_CALL)
    }
}

impl timers::Host for GuestState {
    fn register(
        &mut self,
        domain: time::TimeDomain,
        key: Vec<u8>,
        timestamp: i64,
    ) -> Result<(), String> {
        self.call()?
            .timers
            .register(domain_from_wit(domain), &key, timestamp)
            .map_err(|e| e.to_string())
    }

    fn delete(&mut self, domain: time::TimeDomain, key: Vec<u8>, timestamp: i64) {
        if let Ok(call) = self.call() {
            call.timers.delete(domain_from_wit(domain), &key, timestamp);
        }
    }

    fn current_watermark(&mut self) -> i64 {
        self.call()
            .map_or(i64::MIN, |call| call.timers.current_watermark())
    }

    fn current_processing_time(&mut self) -> i64 {
        cairn_core::timer_service::current_processing_time()
    }
}

impl outputs::Host for GuestState {
    fn emit(&mut self, name: String, batch: wit::PackedBatch) -> wasmtime::Result<()> {
        let call = self.call().map_err(wasmtime::Error::msg)?;
        Ok(call.emit_side(name, batch_from_wit!(batch))?)
    }
}

impl metrics::Host for GuestState {
    fn counter_add(&mut self, name: String, delta: u64) -> wasmtime::Result<()> {
        let call = self.call().map_err(wasmtime::Error::msg)?;
        Ok(call.count(name, delta)?)
    }
}

/// Lends the subtask's call context to the instance for `f` (a call into it), so that the
/// imports it calls (`timers`, `outputs`, `metrics`) reach it, and takes it back.
fn lend<R>(
    store: &mut Store<GuestState>,
    ctx: &mut CallContext,
    f: impl FnOnce(&mut Store<GuestState>) -> R,
) -> R {
    // The context moves in and back out by value; the placeholder left meanwhile is empty.
    let lent = std::mem::replace(ctx, CallContext::new(TimerService::new(NO_KEY_GROUPS, 1)));
    store.data_mut().call = Some(lent);
    let result = f(store);
    if let Some(lent) = store.data_mut().call.take() {
        *ctx = lent;
    }
    result
}

/// The key groups of the placeholder a subtask's context leaves behind while lent: none.
const NO_KEY_GROUPS: KeyGroupRange = KeyGroupRange { first: 1, last: 0 };

/// Links every function of every other interface `component` imports to a trap naming it.
/// (Not wasmtime's `define_unknown_imports_as_traps`: it matches names exactly, so it would
/// shadow the provided interfaces for a guest built against another 0.2.x.)
fn link_traps(linker: &mut Linker<GuestState>, component: &Component) -> wasmtime::Result<()> {
    let engine = linker.engine().clone();
    let ty = component.component_type();
    let is_provided =
        |interface: &str| interface.starts_with("cairn:") || PROVIDED_WASI.contains(&interface);
    // The provided resources other interfaces use (a file's streams), as the component
    // sees them, with the host type they are linked as.
    let mut shared = Vec::new();
    for (name, import) in ty.imports(&engine) {
        let interface = name.split('@').next().unwrap_or(name);
        if let (true, ComponentItem::ComponentInstance(instance)) =
            (is_provided(interface), &import.ty)
        {
            for (item, export) in instance.exports(&engine) {
                if let (ComponentItem::Resource(seen), Some(host)) =
                    (export.ty, io_resource(interface, item))
                {
                    shared.push((seen, host));
                }
            }
        }
    }
    for (name, import) in ty.imports(&engine) {
        let interface = name.split('@').next().unwrap_or(name);
        if is_provided(interface) {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            wasmtime::bail!("imports `{name}`, which is not an interface: jobs import interfaces");
        };
        let mut linker = linker.instance(name)?;
        for (item, export) in instance.exports(&engine) {
            match export.ty {
                ComponentItem::ComponentFunc(_) => {
                    let what = format!("{name}#{item}");
                    linker.func_new(item, move |_, _, _, _| {
                        wasmtime::bail!(
                            "the job called `{what}`: jobs have no filesystem, network or \
                             other capability beyond clocks, randomness and stdio"
                        )
                    })?;
                }
                ComponentItem::Resource(seen) => {
                    let host = shared
                        .iter()
                        .find(|(provided, _)| *provided == seen)
                        .map_or_else(ResourceType::host::<()>, |(_, host)| *host);
                    linker.resource(item, host, |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The host type wasmtime-wasi links an io resource as.
fn io_resource(interface: &str, name: &str) -> Option<ResourceType> {
    use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable};
    match (interface, name) {
        ("wasi:io/streams", "input-stream") => Some(ResourceType::host::<DynInputStream>()),
        ("wasi:io/streams", "output-stream") => Some(ResourceType::host::<DynOutputStream>()),
        ("wasi:io/poll", "pollable") => Some(ResourceType::host::<DynPollable>()),
        ("wasi:io/error", "error") => Some(ResourceType::host::<wasmtime::Error>()),
        _ => None,
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
    bindings: Bindings,
    limits: Limits,
}

impl Guest {
    pub(crate) fn instantiate(
        pre: &Pre,
        limits: Limits,
        label: String,
    ) -> Result<Self, GuestError> {
        let label: Arc<str> = label.into();
        let stderr = GuestOutput::new(Stream::Stderr, label.clone());
        let state = GuestState {
            wasi: WasiCtxBuilder::new()
                .stdout(GuestOutput::new(Stream::Stdout, label.clone()))
                .stderr(stderr.clone())
                .build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: limits.memory,
                exceeded: false,
            },
            stderr,
            label,
            max_parallelism: None,
            call: None,
        };
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(limits.deadline_ticks());
        // wasmtime caps what one call may copy out of a guest at 128 MiB by default; a
        // snapshot is as large as the state, which only the memory limit bounds.
        store.set_hostcall_fuel(usize::try_from(limits.memory).unwrap_or(usize::MAX));
        let bindings = match pre {
            Pre::V0_4(pre) => pre.instantiate(&mut store).map(Bindings::V0_4),
            Pre::V0_3(pre) => pre.instantiate(&mut store).map(Bindings::V0_3),
            Pre::V0_2(pre) => pre.instantiate(&mut store).map(Bindings::V0_2),
        }
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
        let limits = self.limits;
        let store = &mut self.store;
        match &self.bindings {
            Bindings::V0_4(b) => {
                let result = call(store, limits, |store| {
                    b.cairn_job_job().call_describe(store, args)
                })?;
                Ok(result.map(|graph| {
                    graph_from_wit!(
                        wit,
                        graph,
                        |node| node.watermarks.map(|w| {
                            cairn_wire::WatermarkStrategy {
                                max_out_of_orderness_ms: w.max_out_of_orderness_ms,
                                idle_timeout_ms: w.idle_timeout_ms,
                            }
                        }),
                        |input| input.side_output
                    )
                }))
            }
            Bindings::V0_3(b) => {
                let result = call(store, limits, |store| {
                    b.cairn_job_job().call_describe(store, args)
                })?;
                Ok(result.map(|graph| graph_from_wit!(wit_v3, graph, |_node| None, |_input| None)))
            }
            Bindings::V0_2(b) => {
                let result = call(store, limits, |store| {
                    b.cairn_job_job().call_describe(store, args)
                })?;
                Ok(result.map(|graph| graph_from_wit!(wit_v2, graph, |_node| None, |_input| None)))
            }
        }
    }

    /// Opens operator `name` for the subtask `ctx` describes, consuming the instance.
    pub fn open(mut self, ctx: &Context, name: &str) -> Result<GuestOperator, GuestError> {
        self.store.data_mut().max_parallelism = Some(ctx.max_parallelism);
        let limits = self.limits;
        let store = &mut self.store;
        let handle = by_contract!(
            &self.bindings,
            |b, wit| {
                let wit_ctx = wit::Context {
                    job_id: ctx.job_id.clone(),
                    operator_uid: ctx.operator_uid.clone(),
                    subtask: ctx.subtask,
                    parallelism: ctx.parallelism,
                    attempt: ctx.attempt,
                    options: ctx.options.clone(),
                    max_parallelism: ctx.max_parallelism,
                    key_groups: wit::KeyGroupRange {
                        first: ctx.key_groups.first,
                        last: ctx.key_groups.last,
                    },
                };
                call(store, limits, |store| {
                    b.cairn_job_job().call_open(store, &wit_ctx, name)
                })?
            },
            |b| {
                let wit_ctx = wit_v2::Context {
                    job_id: ctx.job_id.clone(),
                    operator_uid: ctx.operator_uid.clone(),
                    subtask: ctx.subtask,
                    parallelism: ctx.parallelism,
                    attempt: ctx.attempt,
                    options: ctx.options.clone(),
                };
                call(store, limits, |store| {
                    b.cairn_job_job().call_open(store, &wit_ctx, name)
                })?
            },
        )
        .map_err(GuestError::Failed)?;
        Ok(GuestOperator {
            guest: self,
            handle,
        })
    }
}

/// Runs one guest call under the call deadline and turns its failure into a [`GuestError`].
fn call<R>(
    store: &mut Store<GuestState>,
    limits: Limits,
    f: impl FnOnce(&mut Store<GuestState>) -> wasmtime::Result<R>,
) -> Result<R, GuestError> {
    store.set_epoch_deadline(limits.deadline_ticks());
    f(store).map_err(|e| classify(store, limits, e))
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
            let said: Vec<String> = state
                .stderr
                .recent_lines()
                .into_iter()
                .map(|line| line.trim().to_owned())
                .filter(|line| !line.starts_with("note: run with `RUST_BACKTRACE"))
                .collect();
            if said.is_empty() {
                GuestError::Trap(trap.to_string())
            } else {
                GuestError::Trap(format!("{trap}; the guest wrote: {}", said.join(" ")))
            }
        }
        // A host function failed the call (a capability jobs do not have): its message
        // names the call; the backtrace around it is the runtime's.
        None if error.downcast_ref::<WasmBacktrace>().is_some() => {
            GuestError::Trap(error.root_cause().to_string())
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
        "cairn_wire::",
        "<cairn_wire::",
        "<T as cairn_wire::",
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

/// Refuses what a `cairn:job@0.2.0` operator cannot take.
fn v0_2_cannot(what: &str) -> GuestError {
    GuestError::Failed(format!(
        "cannot restore state: {what}, which a cairn:job@0.2.0 component cannot take; \
         rebuild the job with an SDK for cairn:job@0.4.0"
    ))
}

impl GuestOperator {
    /// What a call needs: the operator's handle, its instance's store and exports, and the
    /// limits.
    fn parts(&mut self) -> (ResourceAny, &mut Store<GuestState>, &Bindings, Limits) {
        let Guest {
            store,
            bindings,
            limits,
        } = &mut self.guest;
        (self.handle, store, bindings, *limits)
    }
}

impl OperatorInstance for GuestOperator {
    fn process(
        &mut self,
        input: u32,
        batch: PackedBatch,
        key_groups: &[u16],
        ctx: &mut CallContext,
    ) -> Result<PackedBatch, GuestError> {
        let (handle, store, bindings, limits) = self.parts();
        let out = lend(store, ctx, |store| {
            by_contract!(
                bindings,
                |b, wit| {
                    let batch = batch_to_wit!(wit, batch);
                    call(store, limits, |store| {
                        b.cairn_job_job()
                            .operator()
                            .call_process(store, handle, input, &batch, key_groups)
                    })
                    .map(|out| out.map(|out| batch_from_wit!(out)))
                },
                |b| {
                    let batch = batch_to_wit!(wit_v2, batch);
                    call(store, limits, |store| {
                        b.cairn_job_job()
                            .operator()
                            .call_process(store, handle, input, &batch)
                    })
                    .map(|out| out.map(|out| batch_from_wit!(out)))
                },
            )
        })?;
        out.map_err(GuestError::Failed)
    }

    fn on_timers(
        &mut self,
        domain: TimeDomain,
        fired: PackedBatch,
        key_groups: &[u16],
        ctx: &mut CallContext,
    ) -> Result<PackedBatch, GuestError> {
        let (handle, store, bindings, limits) = self.parts();
        let Bindings::V0_4(b) = bindings else {
            return Err(GuestError::Host(
                "timers fired for an operator whose contract has none".into(),
            ));
        };
        let domain = match domain {
            TimeDomain::EventTime => time::TimeDomain::EventTime,
            TimeDomain::ProcessingTime => time::TimeDomain::ProcessingTime,
        };
        let fired = batch_to_wit!(wit, fired);
        let out = lend(store, ctx, |store| {
            call(store, limits, |store| {
                b.cairn_job_job()
                    .operator()
                    .call_on_timer(store, handle, domain, &fired, key_groups)
            })
        })?;
        out.map(|out| batch_from_wit!(out))
            .map_err(GuestError::Failed)
    }

    fn finish(&mut self, ctx: &mut CallContext) -> Result<PackedBatch, GuestError> {
        let (handle, store, bindings, limits) = self.parts();
        let out = lend(store, ctx, |store| {
            by_contract!(
                bindings,
                |b, _wit| call(store, limits, |store| {
                    b.cairn_job_job().operator().call_finish(store, handle)
                })
                .map(|out| out.map(|out| batch_from_wit!(out))),
                |b| call(store, limits, |store| {
                    b.cairn_job_job().operator().call_finish(store, handle)
                })
                .map(|out| out.map(|out| batch_from_wit!(out))),
            )
        })?;
        out.map_err(GuestError::Failed)
    }

    fn snapshot(&mut self, checkpoint: u64) -> Result<Snapshot, GuestError> {
        let (handle, store, bindings, limits) = self.parts();
        by_contract!(
            bindings,
            |b, wit| {
                let snapshot = call(store, limits, |store| {
                    b.cairn_job_job()
                        .operator()
                        .call_snapshot(store, handle, checkpoint)
                })?
                .map_err(GuestError::Failed)?;
                Ok(Snapshot {
                    version: snapshot.version,
                    operator_state: snapshot.operator_state,
                    mode: match snapshot.operator_state_mode {
                        wit::OperatorStateMode::Split => OperatorStateMode::Split,
                        wit::OperatorStateMode::Union => OperatorStateMode::Union,
                    },
                    keyed: snapshot
                        .keyed
                        .into_iter()
                        .map(|c| KeyedChunk {
                            key_group: c.key_group,
                            entries: c.entries,
                        })
                        .collect(),
                    value_encoding: match snapshot.value_encoding {
                        wit::ValueEncoding::Bytes => ValueEncoding::Bytes,
                        wit::ValueEncoding::Utf8 => ValueEncoding::Utf8,
                        wit::ValueEncoding::U64Le => ValueEncoding::U64Le,
                        wit::ValueEncoding::S64Le => ValueEncoding::S64Le,
                        wit::ValueEncoding::F64Le => ValueEncoding::F64Le,
                        wit::ValueEncoding::Json => ValueEncoding::Json,
                    },
                })
            },
            |b| {
                let state = call(store, limits, |store| {
                    b.cairn_job_job()
                        .operator()
                        .call_snapshot(store, handle, checkpoint)
                })?
                .map_err(GuestError::Failed)?;
                Ok(Snapshot {
                    version: state.version,
                    operator_state: if state.data.is_empty() {
                        Vec::new()
                    } else {
                        vec![state.data]
                    },
                    mode: OperatorStateMode::Whole,
                    keyed: Vec::new(),
                    value_encoding: ValueEncoding::Bytes,
                })
            },
        )
    }

    fn restore_keyed(&mut self, version: u32, chunks: Vec<KeyedChunk>) -> Result<(), GuestError> {
        let (handle, store, bindings, limits) = self.parts();
        by_contract!(
            bindings,
            |b, wit| {
                let chunks: Vec<wit::KeyedChunk> = chunks
                    .into_iter()
                    .map(|c| wit::KeyedChunk {
                        key_group: c.key_group,
                        entries: c.entries,
                    })
                    .collect();
                call(store, limits, |store| {
                    b.cairn_job_job()
                        .operator()
                        .call_restore_keyed(store, handle, version, &chunks)
                })?
                .map_err(|e| GuestError::Failed(format!("cannot restore state: {e}")))
            },
            |_b| Err(v0_2_cannot("it has keyed state")),
        )
    }

    fn restore(&mut self, version: u32, items: Vec<Vec<u8>>) -> Result<(), GuestError> {
        let (handle, store, bindings, limits) = self.parts();
        let result = by_contract!(
            bindings,
            |b, _wit| call(store, limits, |store| {
                b.cairn_job_job()
                    .operator()
                    .call_restore(store, handle, version, &items)
            })?,
            |b| {
                let data = match <[Vec<u8>; 1]>::try_from(items) {
                    Ok([data]) => data,
                    Err(items) if items.is_empty() => return Ok(()),
                    Err(items) => {
                        return Err(v0_2_cannot(&format!(
                            "it has {} operator-state items",
                            items.len()
                        )));
                    }
                };
                let state = wit_v2::State { version, data };
                call(store, limits, |store| {
                    b.cairn_job_job()
                        .operator()
                        .call_restore(store, handle, &state)
                })?
            },
        );
        result.map_err(|e| GuestError::Failed(format!("cannot restore state: {e}")))
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) -> Result<(), GuestError> {
        let (handle, store, bindings, limits) = self.parts();
        by_contract!(
            bindings,
            |b, _wit| call(store, limits, |store| {
                b.cairn_job_job()
                    .operator()
                    .call_checkpoint_complete(store, handle, checkpoint)
            }),
            |b| call(store, limits, |store| {
                b.cairn_job_job()
                    .operator()
                    .call_checkpoint_complete(store, handle, checkpoint)
            }),
        )
    }
}

/// A packed batch as any contract version's record (the same fields in all).
macro_rules! batch_to_wit {
    ($wit:ident, $batch:expr) => {{
        let batch = $batch;
        $wit::PackedBatch {
            data: batch.data,
            offsets: batch.offsets,
            timestamps: batch.timestamps,
        }
    }};
}
use batch_to_wit;

macro_rules! batch_from_wit {
    ($batch:expr) => {{
        let batch = $batch;
        PackedBatch {
            data: batch.data,
            offsets: batch.offsets,
            timestamps: batch.timestamps,
        }
    }};
}
use batch_from_wit;

/// A job graph from any contract version's record (the same shape in all, but for what
/// `$watermarks` takes from a node and `$side_output` from an input: only 0.4.0 has them).
macro_rules! graph_from_wit {
    ($wit:ident, $graph:expr, |$node:ident| $watermarks:expr, |$input:ident| $side_output:expr) => {{
        use cairn_wire::{Input, Node, NodeKind, Partitioning};
        let graph = $graph;
        JobGraph {
            name: graph.name,
            nodes: graph
                .nodes
                .into_iter()
                .map(|$node| Node {
                    watermarks: $watermarks,
                    uid: $node.uid,
                    kind: match $node.kind {
                        $wit::NodeKind::Source(c) => NodeKind::Source(c),
                        $wit::NodeKind::Operator(n) => NodeKind::Operator(n),
                        $wit::NodeKind::Sink(c) => NodeKind::Sink(c),
                    },
                    inputs: $node
                        .inputs
                        .into_iter()
                        .map(|$input| Input {
                            side_output: $side_output,
                            upstream: $input.upstream,
                            partitioning: match $input.partitioning {
                                $wit::Partitioning::Forward => Partitioning::Forward,
                                $wit::Partitioning::Rebalance => Partitioning::Rebalance,
                                $wit::Partitioning::ByKey => Partitioning::ByKey,
                                $wit::Partitioning::Broadcast => Partitioning::Broadcast,
                            },
                        })
                        .collect(),
                    parallelism: $node.parallelism,
                    options: $node.options,
                })
                .collect(),
            config: graph.config,
        }
    }};
}
use graph_from_wit;
