"""The component side: the ``cairn:job/job`` export over componentize-py's bindings. Used only
through :func:`cairn_sdk.export_job`, inside a component; not part of the public API.

Every call from the host is one batch (or one lifecycle step), never one record. Any
exception from job code becomes the call's ``err`` string (see :func:`error.describe`), so
a failure is reported, with its cause, instead of trapping the instance.
"""

from typing import Any, List, Optional, Type

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import job as wit_job
from wit_world.imports import keys as wit_keys
from wit_world.imports import metrics as wit_metrics
from wit_world.imports import outputs as wit_outputs
from wit_world.imports import time as wit_time
from wit_world.imports import timers as wit_timers
from wit_world.imports import types as wit

from . import host, log
from .args import Args
from .batch import PackedBatch
from .error import Error
from .error import describe as describe_error
from .graph import JobGraph, Partitioning, WatermarkStrategy
from .host import TimeDomain
from .keyed import KeyedChunk
from .operator import Context, Job, OperatorInstance

_PARTITIONING = {
    Partitioning.FORWARD: wit.Partitioning_Forward,
    Partitioning.REBALANCE: wit.Partitioning_Rebalance,
    Partitioning.BY_KEY: wit.Partitioning_ByKey,
    Partitioning.BROADCAST: wit.Partitioning_Broadcast,
}

_KINDS = {
    "source": wit.NodeKind_Source,
    "operator": wit.NodeKind_Operator,
    "sink": wit.NodeKind_Sink,
}


_DOMAINS = {
    TimeDomain.EVENT_TIME: wit_time.TimeDomain.EVENT_TIME,
    TimeDomain.PROCESSING_TIME: wit_time.TimeDomain.PROCESSING_TIME,
}
_FROM_WIT_DOMAINS = {theirs: ours for ours, theirs in _DOMAINS.items()}


class _WitHost(host.Host):
    """The host's ``timers``, ``outputs`` and ``metrics`` imports, as :mod:`cairn_sdk.host`
    calls them."""

    def register_timer(self, domain: TimeDomain, key: bytes, timestamp: int) -> None:
        try:
            wit_timers.register(_DOMAINS[domain], key, timestamp)
        except Err as e:
            raise Error(f"cannot register a timer at {timestamp}: {e.value}") from None

    def delete_timer(self, domain: TimeDomain, key: bytes, timestamp: int) -> None:
        wit_timers.delete(_DOMAINS[domain], key, timestamp)

    def current_watermark(self) -> int:
        return wit_timers.current_watermark()

    def current_processing_time(self) -> int:
        return wit_timers.current_processing_time()

    def emit_to(self, side_output: str, batch: PackedBatch) -> None:
        wit_outputs.emit(side_output, wit.PackedBatch(batch.data, batch.offsets, batch.timestamps))

    def counter_add(self, name: str, delta: int) -> None:
        wit_metrics.counter_add(name, delta)


host.install(_WitHost())


def _options(options: Any) -> list:
    return [(str(k), str(v)) for k, v in options]


def _watermarks(strategy: Optional[WatermarkStrategy]) -> Optional[wit.WatermarkStrategy]:
    if strategy is None:
        return None
    return wit.WatermarkStrategy(strategy.max_out_of_orderness_ms, strategy.idle_timeout_ms)


def graph_to_wit(graph: JobGraph) -> wit.JobGraph:
    if not isinstance(graph, JobGraph):
        raise TypeError(f"describe returned {type(graph).__name__}, not a cairn_sdk.JobGraph")
    nodes = []
    for node in graph.nodes:
        inputs = []
        for edge in node.inputs:
            partitioning = _PARTITIONING.get(edge.partitioning)
            if partitioning is None:
                raise TypeError(f"node {node.uid!r}: {edge.partitioning!r} is not a Partitioning")
            inputs.append(wit.Input(edge.upstream, partitioning(), edge.side_output))
        nodes.append(
            wit.Node(
                node.uid,
                _KINDS[node.kind](node.name),
                inputs,
                node.parallelism,
                _options(node.options),
                _watermarks(node.watermarks),
            )
        )
    return wit.JobGraph(graph.name, nodes, _options(graph.config_entries))


class _Operator(wit_job.Operator):
    """The ``operator`` resource: one subtask's :class:`OperatorInstance`."""

    __slots__ = ("_instance",)

    def __init__(self, instance: OperatorInstance) -> None:
        self._instance = instance

    def process(
        self, input: int, batch: wit.PackedBatch, key_groups: List[int]
    ) -> wit.PackedBatch:
        try:
            out = self._instance.process(input, batch, key_groups)
        except BaseException as e:
            raise Err(describe_error(e)) from None
        return wit.PackedBatch(out.data, out.offsets, out.timestamps)

    def on_timer(
        self, domain: wit_time.TimeDomain, timers: wit.PackedBatch, key_groups: List[int]
    ) -> wit.PackedBatch:
        try:
            out = self._instance.on_timer(_FROM_WIT_DOMAINS[domain], timers, key_groups)
        except BaseException as e:
            raise Err(describe_error(e)) from None
        return wit.PackedBatch(out.data, out.offsets, out.timestamps)

    def snapshot(self, checkpoint_id: int) -> wit.Snapshot:
        try:
            state = self._instance.snapshot()
            return wit.Snapshot(
                state.version,
                state.operator_state,
                # The SDK's enums name their members as the WIT bindings' do.
                wit.OperatorStateMode[state.mode.name],
                [wit.KeyedChunk(c.key_group, c.entries) for c in state.keyed],
                wit.ValueEncoding[state.value_encoding.name],
            )
        except BaseException as e:
            raise Err(describe_error(e)) from None

    def restore_keyed(self, version: int, chunks: List[wit.KeyedChunk]) -> None:
        try:
            self._instance.restore_keyed(
                version, [KeyedChunk(c.key_group, c.entries) for c in chunks]
            )
        except BaseException as e:
            raise Err(describe_error(e)) from None

    def restore(self, version: int, operator_state: List[bytes]) -> None:
        try:
            self._instance.restore(version, operator_state)
        except BaseException as e:
            raise Err(describe_error(e)) from None

    def checkpoint_complete(self, checkpoint_id: int) -> None:
        # No way to report an error here: the host only tells. Log it instead.
        try:
            self._instance.checkpoint_complete(checkpoint_id)
        except BaseException as e:
            log.error(f"checkpoint_complete({checkpoint_id}) failed: {describe_error(e)}")

    def finish(self) -> wit.PackedBatch:
        try:
            out = self._instance.finish()
        except BaseException as e:
            raise Err(describe_error(e)) from None
        return wit.PackedBatch(out.data, out.offsets, out.timestamps)


def export(job_class: Type[Job]) -> type:
    """The class componentize-py exports as ``cairn:job/job`` for ``job_class``."""
    if not (isinstance(job_class, type) and issubclass(job_class, Job)):
        raise TypeError(f"export_job needs a cairn_sdk.Job subclass, got {job_class!r}")
    job = job_class()

    class JobExport(exports.Job):
        def describe(self, args: list) -> wit.JobGraph:
            try:
                return graph_to_wit(job.describe(Args(args)))
            except BaseException as e:
                raise Err(describe_error(e)) from None

        def open(self, ctx: wit.Context, name: str) -> _Operator:
            try:
                context = Context(
                    ctx.job_id,
                    ctx.operator_uid,
                    ctx.subtask,
                    ctx.parallelism,
                    ctx.attempt,
                    ctx.options,
                    ctx.max_parallelism,
                    range(ctx.key_groups.first, ctx.key_groups.last + 1),
                    wit_keys.key_group,
                )
                return _Operator(OperatorInstance.open(job, context, name))
            except BaseException as e:
                raise Err(describe_error(e)) from None

    JobExport.__name__ = JobExport.__qualname__ = "Job"
    return JobExport
