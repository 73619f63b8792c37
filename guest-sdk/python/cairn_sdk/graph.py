"""The job graph a job describes, and a small builder for it (as in the Rust SDK)::

job = JobGraph("word-count")
(job.source("lines", Source.file("in.txt"))
    .parallelism(1)
    .operator("split", "split", Partitioning.REBALANCE)
    .operator("count", "count", Partitioning.BY_KEY)
    .sink("out", Sink.file("out/"), Partitioning.FORWARD))

Event time: ``.watermarks(WatermarkStrategy.bounded_out_of_orderness(500))`` on a node makes
watermarks from the timestamps it emits; ``job.stream("count").side_output("late")`` chains a
node onto what ``count`` emits to its side output ``late``.
"""

import enum
from typing import List, Optional, Tuple

Options = List[Tuple[str, str]]


class Partitioning(enum.Enum):
    """How records travel from an upstream node's subtasks to a downstream node's."""

    #: Subtask i to subtask i; both sides need the same parallelism.
    FORWARD = "forward"
    #: Round-robin, batch by batch.
    REBALANCE = "rebalance"
    #: By hash of the record key.
    BY_KEY = "by-key"
    #: Every record to every downstream subtask.
    BROADCAST = "broadcast"


class Input:
    """One input edge of a node: the upstream node's uid, how records are partitioned, and
    ``side_output``: ``None`` for the upstream node's records, or the name of its side output
    whose records (only) this input receives (Flink's ``getSideOutput(OutputTag)``)."""

    __slots__ = ("upstream", "partitioning", "side_output")

    def __init__(
        self, upstream: str, partitioning: Partitioning, side_output: Optional[str] = None
    ) -> None:
        self.upstream = upstream
        self.partitioning = partitioning
        self.side_output = side_output

    def _fields(self) -> tuple:
        return (self.upstream, self.partitioning, self.side_output)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Input):
            return NotImplemented
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        side = "" if self.side_output is None else f", side_output={self.side_output!r}"
        return f"Input({self.upstream!r}, {self.partitioning}{side})"


class WatermarkStrategy:
    """How the host makes watermarks from the timestamps a node emits (Flink's
    ``WatermarkStrategy``): every ``pipeline.auto-watermark-interval`` the watermark is the
    highest timestamp emitted so far minus ``max_out_of_orderness_ms`` minus 1; a record
    further behind is late. With ``idle_timeout_ms``, a subtask that emitted nothing for that
    long is idle: downstream watermarks stop waiting for it until it emits again."""

    __slots__ = ("max_out_of_orderness_ms", "idle_timeout_ms")

    def __init__(self, max_out_of_orderness_ms: int, idle_timeout_ms: Optional[int] = None):
        for name, ms in (
            ("max_out_of_orderness_ms", max_out_of_orderness_ms),
            ("idle_timeout_ms", idle_timeout_ms),
        ):
            if ms is not None and (type(ms) is not int or not 0 <= ms < 2**64):
                raise ValueError(f"a watermark strategy's {name} must be ms (a u64), not {ms!r}")
        self.max_out_of_orderness_ms = max_out_of_orderness_ms
        self.idle_timeout_ms = idle_timeout_ms

    @staticmethod
    def bounded_out_of_orderness(ms: int) -> "WatermarkStrategy":
        """Flink's ``forBoundedOutOfOrderness``: records may come up to ``ms`` milliseconds
        behind the highest timestamp."""
        return WatermarkStrategy(ms)

    @staticmethod
    def monotonous_timestamps() -> "WatermarkStrategy":
        """Flink's ``forMonotonousTimestamps``: timestamps never go down."""
        return WatermarkStrategy(0)

    def with_idleness(self, ms: int) -> "WatermarkStrategy":
        """Flink's ``withIdleness``: idle after ``ms`` milliseconds without records."""
        return WatermarkStrategy(self.max_out_of_orderness_ms, ms)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WatermarkStrategy):
            return NotImplemented
        return (self.max_out_of_orderness_ms, self.idle_timeout_ms) == (
            other.max_out_of_orderness_ms,
            other.idle_timeout_ms,
        )

    def __repr__(self) -> str:
        return (
            f"WatermarkStrategy(max_out_of_orderness_ms={self.max_out_of_orderness_ms}, "
            f"idle_timeout_ms={self.idle_timeout_ms!r})"
        )


class Node:
    """A node of the job graph. ``kind`` is ``"source"``, ``"operator"`` or ``"sink"``;
    ``name`` is the connector's name (sources, sinks) or the operator's (as the job's
    :meth:`~cairn_sdk.Job.operator` knows it). ``watermarks`` (a :class:`WatermarkStrategy`,
    sources and operators only) makes watermarks from the timestamps the node emits; ``None``
    passes on those it receives."""

    KINDS = ("source", "operator", "sink")

    def __init__(
        self,
        uid: str,
        kind: str,
        name: str,
        inputs: Optional[List[Input]] = None,
        parallelism: Optional[int] = None,
        options: Optional[Options] = None,
        watermarks: Optional[WatermarkStrategy] = None,
    ) -> None:
        if kind not in Node.KINDS:
            raise ValueError(f"node kind {kind!r} is not one of {', '.join(Node.KINDS)}")
        self.uid = uid
        self.kind = kind
        self.name = name
        self.inputs: List[Input] = [] if inputs is None else inputs
        self.parallelism = parallelism
        self.options: Options = [] if options is None else options
        self.watermarks = watermarks

    def __repr__(self) -> str:
        return (
            f"Node({self.uid!r}, {self.kind}({self.name!r}), inputs={self.inputs!r}, "
            f"parallelism={self.parallelism!r}, options={self.options!r}, "
            f"watermarks={self.watermarks!r})"
        )


class Source:
    """A host connector reading records, with its options."""

    def __init__(self, connector: str) -> None:
        """Any host connector, by name."""
        self.connector = connector
        self.options: Options = []

    def option(self, key: str, value: object) -> "Source":
        """Sets a connector option (for example the file source's or generator's ``rate``)."""
        self.options.append((key, str(value)))
        return self

    @staticmethod
    def file(path: str) -> "Source":
        """Lines of a UTF-8 text file, one record per line (without the line break)."""
        return Source("file").option("path", path)

    @staticmethod
    def generator(count: int, keys: int) -> "Source":
        """Deterministic records ``key-<i mod keys>`` → ``i`` (8 bytes, little endian) for
        i = 0..count; ``count`` 0 means unbounded."""
        return Source("generator").option("count", count).option("keys", keys)

    @staticmethod
    def stdin() -> "Source":
        """Lines of the host's standard input (not replayable)."""
        return Source("stdin")

    @staticmethod
    def kafka(bootstrap_servers: str, topic: str) -> "Source":
        """The messages of Kafka topic ``topic`` (each one's key and value), with the option
        names of Flink's Kafka SQL connector: ``bootstrap_servers`` is
        ``properties.bootstrap.servers`` (``host:port``, comma-separated). Other options, set
        with :meth:`option`: ``scan.startup.mode`` (``earliest-offset`` (default),
        ``latest-offset``, ``group-offsets``, ``timestamp``, ``specific-offsets``),
        ``scan.bounded.mode`` (``unbounded`` (default), ``latest-offset``, ``group-offsets``,
        ``timestamp``, ``specific-offsets``), ``properties.group.id``, and any other Kafka
        consumer property as ``properties.*``."""
        return (
            Source("kafka")
            .option("properties.bootstrap.servers", bootstrap_servers)
            .option("topic", topic)
        )


class Sink:
    """A host connector writing records, with its options (the file and standard output
    sinks write each record's value as a line)."""

    def __init__(self, connector: str) -> None:
        """Any host connector, by name."""
        self.connector = connector
        self.options: Options = []

    def option(self, key: str, value: object) -> "Sink":
        """Sets a connector option (for example the Kafka sink's
        ``sink.delivery-guarantee``)."""
        self.options.append((key, str(value)))
        return self

    @staticmethod
    def file(path: str) -> "Sink":
        """Part files in directory ``path``, one series per sink subtask."""
        return Sink("file").option("path", path)

    @staticmethod
    def stdout() -> "Sink":
        """The host's standard output."""
        return Sink("stdout")

    @staticmethod
    def blackhole() -> "Sink":
        """Discards everything."""
        return Sink("blackhole")

    @staticmethod
    def kafka(bootstrap_servers: str, topic: str) -> "Sink":
        """Messages (each record's key and value) into Kafka topic ``topic``, with the option
        names of Flink's Kafka SQL connector: ``bootstrap_servers`` is
        ``properties.bootstrap.servers`` (``host:port``, comma-separated). Other options, set
        with :meth:`option`: ``sink.delivery-guarantee`` (``at-least-once`` (default, as
        Flink's), ``exactly-once``, ``none``), ``sink.transactional-id-prefix``, and any other
        Kafka producer property as ``properties.*``."""
        return (
            Sink("kafka")
            .option("properties.bootstrap.servers", bootstrap_servers)
            .option("topic", topic)
        )


class JobGraph:
    """The job graph: nodes, their edges, and the job's own configuration."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: List[Node] = []
        self.config_entries: Options = []

    def config(self, key: str, value: object) -> "JobGraph":
        """Sets a configuration key in code (Flink names, for example
        ``execution.checkpointing.interval``). Overrides the config file; ``-D`` overrides
        it."""
        self.config_entries.append((key, str(value)))
        return self

    def source(self, uid: str, source: Source) -> "Stream":
        """Adds a source node and returns its stream, to chain the next node onto."""
        return self.add(Node(uid, "source", source.connector, options=list(source.options)))

    def stream(self, uid: str) -> "Stream":
        """The stream of node ``uid``, added before, to chain more nodes onto it (a second
        branch, its side outputs). Raises :class:`KeyError` if there is no such node."""
        for node in self.nodes:
            if node.uid == uid:
                return Stream(self, node)
        raise KeyError(f"the graph has no node {uid!r}")

    def add(self, node: Node) -> "Stream":
        """Adds any node (for graphs that are not a straight pipeline, such as joins)."""
        self.nodes.append(node)
        return Stream(self, node)

    def __repr__(self) -> str:
        return f"JobGraph({self.name!r}, nodes={self.nodes!r}, config={self.config_entries!r})"


class Stream:
    """The output of a node (the one last added), to chain further nodes onto: its records,
    or with :meth:`side_output` what it emits to one of its side outputs."""

    def __init__(self, graph: JobGraph, node: Node, side_output: Optional[str] = None) -> None:
        self.graph = graph
        self.node = node
        #: The side output the next node chained on reads, instead of the node's records.
        self.side_output_name = side_output

    @property
    def uid(self) -> str:
        """The uid of this stream's node."""
        return self.node.uid

    def parallelism(self, parallelism: int) -> "Stream":
        """Sets this node's parallelism (default: the job's default parallelism)."""
        self.node.parallelism = parallelism
        return self

    def watermarks(self, strategy: WatermarkStrategy) -> "Stream":
        """Makes watermarks from the timestamps this node emits (a source's or an
        operator's: Flink's ``assignTimestampsAndWatermarks``)."""
        if not isinstance(strategy, WatermarkStrategy):
            raise TypeError(f"watermarks needs a WatermarkStrategy, got {strategy!r}")
        self.node.watermarks = strategy
        return self

    def side_output(self, name: str) -> "Stream":
        """This node's side output ``name`` (what its operator emits there with
        :func:`cairn_sdk.host.emit_to`): the next node chained on reads that instead of the
        node's records."""
        return Stream(self.graph, self.node, name)

    def option(self, key: str, value: object) -> "Stream":
        """Sets an option on this node (an operator reads it with ``ctx.option(key)``)."""
        self.node.options.append((key, str(value)))
        return self

    def operator(self, uid: str, name: str, partitioning: Partitioning) -> "Stream":
        """Adds operator ``name`` reading this stream through ``partitioning``."""
        return self._then(Node(uid, "operator", name), partitioning)

    def sink(self, uid: str, sink: Sink, partitioning: Partitioning) -> "Stream":
        """Adds a sink reading this stream through ``partitioning``."""
        return self._then(
            Node(uid, "sink", sink.connector, options=list(sink.options)), partitioning
        )

    def _then(self, node: Node, partitioning: Partitioning) -> "Stream":
        node.inputs.append(Input(self.node.uid, partitioning, self.side_output_name))
        return self.graph.add(node)
