"""The job graph a job describes, and a small builder for it (as in the Rust SDK)::

job = JobGraph("word-count")
(job.source("lines", Source.file("in.txt"))
    .parallelism(1)
    .operator("split", "split", Partitioning.REBALANCE)
    .operator("count", "count", Partitioning.BY_KEY)
    .sink("out", Sink.file("out/"), Partitioning.FORWARD))
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
    """One input edge of a node: the upstream node's uid and how records are partitioned."""

    __slots__ = ("upstream", "partitioning")

    def __init__(self, upstream: str, partitioning: Partitioning) -> None:
        self.upstream = upstream
        self.partitioning = partitioning

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Input):
            return NotImplemented
        return (self.upstream, self.partitioning) == (other.upstream, other.partitioning)

    def __repr__(self) -> str:
        return f"Input({self.upstream!r}, {self.partitioning})"


class Node:
    """A node of the job graph. ``kind`` is ``"source"``, ``"operator"`` or ``"sink"``;
    ``name`` is the connector's name (sources, sinks) or the operator's (as the job's
    :meth:`~cairn_sdk.Job.operator` knows it)."""

    KINDS = ("source", "operator", "sink")

    def __init__(
        self,
        uid: str,
        kind: str,
        name: str,
        inputs: Optional[List[Input]] = None,
        parallelism: Optional[int] = None,
        options: Optional[Options] = None,
    ) -> None:
        if kind not in Node.KINDS:
            raise ValueError(f"node kind {kind!r} is not one of {', '.join(Node.KINDS)}")
        self.uid = uid
        self.kind = kind
        self.name = name
        self.inputs: List[Input] = [] if inputs is None else inputs
        self.parallelism = parallelism
        self.options: Options = [] if options is None else options

    def __repr__(self) -> str:
        return (
            f"Node({self.uid!r}, {self.kind}({self.name!r}), inputs={self.inputs!r}, "
            f"parallelism={self.parallelism!r}, options={self.options!r})"
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

    def add(self, node: Node) -> "Stream":
        """Adds any node (for graphs that are not a straight pipeline, such as joins)."""
        self.nodes.append(node)
        return Stream(self, node)

    def __repr__(self) -> str:
        return f"JobGraph({self.name!r}, nodes={self.nodes!r}, config={self.config_entries!r})"


class Stream:
    """The output of the node last added, to chain further nodes onto."""

    def __init__(self, graph: JobGraph, node: Node) -> None:
        self.graph = graph
        self.node = node

    @property
    def uid(self) -> str:
        """The uid of this stream's node."""
        return self.node.uid

    def parallelism(self, parallelism: int) -> "Stream":
        """Sets this node's parallelism (default: the job's default parallelism)."""
        self.node.parallelism = parallelism
        return self

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
        node.inputs.append(Input(self.node.uid, partitioning))
        return self.graph.add(node)
