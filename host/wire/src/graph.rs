//! The job graph a job describes, and a small builder for it.

/// How records travel from an upstream node's subtasks to a downstream node's subtasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    /// Subtask i to subtask i; both sides need the same parallelism.
    Forward,
    /// Round-robin, batch by batch.
    Rebalance,
    /// By hash of the record key.
    ByKey,
    /// Every record to every downstream subtask.
    Broadcast,
}

/// One input edge of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub upstream: String,
    pub partitioning: Partitioning,
    /// `None`: the upstream node's records; `Some(name)`: only what it emits to its side
    /// output `name` (Flink's `OutputTag`).
    pub side_output: Option<String>,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Source(String),
    Operator(String),
    Sink(String),
}

/// A node of the job graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub uid: String,
    pub kind: NodeKind,
    pub inputs: Vec<Input>,
    pub parallelism: Option<u32>,
    pub options: Vec<(String, String)>,
    /// How the host makes watermarks from the timestamps of what this node (a source or an
    /// operator) emits; `None`: it passes on the watermarks it receives (a source: none
    /// until its input ends).
    pub watermarks: Option<WatermarkStrategy>,
}

/// How watermarks follow the timestamps of a node's records (Flink's `WatermarkStrategy`):
/// every `pipeline.auto-watermark-interval` the watermark is the highest timestamp emitted
/// so far minus `max_out_of_orderness_ms` minus 1 (Flink's
/// `BoundedOutOfOrdernessWatermarks`): a record later than that bound behind the highest
/// is late. With `idle_timeout_ms`, a node that emitted nothing for that long is idle
/// (`withIdleness`): downstream watermarks stop waiting for it until it emits again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatermarkStrategy {
    pub max_out_of_orderness_ms: u64,
    pub idle_timeout_ms: Option<u64>,
}

impl WatermarkStrategy {
    /// Flink's `forBoundedOutOfOrderness`: records may come up to `ms` milliseconds behind
    /// the highest timestamp.
    pub fn bounded_out_of_orderness(ms: u64) -> Self {
        WatermarkStrategy {
            max_out_of_orderness_ms: ms,
            idle_timeout_ms: None,
        }
    }

    /// Flink's `forMonotonousTimestamps`: timestamps never go down.
    pub fn monotonous_timestamps() -> Self {
        Self::bounded_out_of_orderness(0)
    }

    /// Flink's `withIdleness`: idle after `ms` milliseconds without records.
    pub fn with_idleness(self, ms: u64) -> Self {
        WatermarkStrategy {
            idle_timeout_ms: Some(ms),
            ..self
        }
    }
}

/// The job graph: nodes, their edges, and the job's own configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobGraph {
    pub name: String,
    pub nodes: Vec<Node>,
    pub config: Vec<(String, String)>,
}

/// A host connector reading records, with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    connector: &'static str,
    options: Vec<(String, String)>,
}

impl Source {
    /// Lines of a UTF-8 text file, one record per line (without the line break).
    pub fn file(path: impl Into<String>) -> Self {
        Source::new("file").option("path", path)
    }

    /// Deterministic records `key-<i mod keys>` → `i` (8 bytes, little endian) for
    /// i = 0..count; `count` 0 means unbounded.
    pub fn generator(count: u64, keys: u64) -> Self {
        Source::new("generator")
            .option("count", count.to_string())
            .option("keys", keys.to_string())
    }

    /// Lines of the host's standard input (not replayable).
    pub fn stdin() -> Self {
        Source::new("stdin")
    }

    /// The messages of Kafka topic `topic` (each one's key and value), with the option names of
    /// Flink's Kafka SQL connector: `bootstrap_servers` is `properties.bootstrap.servers`
    /// (`host:port`, comma-separated). Other options, set with [`option`](Self::option):
    ///
    /// - `scan.startup.mode`: where reading starts — `earliest-offset` (default),
    ///   `latest-offset`, `group-offsets`, `timestamp` or `specific-offsets`.
    /// - `scan.bounded.mode`: where it ends — `unbounded` (default), `latest-offset` (the
    ///   end of each partition when the job first starts), `group-offsets`, `timestamp` or
    ///   `specific-offsets`.
    /// - `properties.group.id`: the consumer group.
    /// - `properties.*`: any other Kafka consumer property.
    pub fn kafka(bootstrap_servers: impl Into<String>, topic: impl Into<String>) -> Self {
        Source::new("kafka")
            .option("properties.bootstrap.servers", bootstrap_servers)
            .option("topic", topic)
    }

    /// Any host connector by name.
    pub fn new(connector: &'static str) -> Self {
        Source {
            connector,
            options: Vec::new(),
        }
    }

    /// Sets a connector option, for example the generator's `rate` in records per second.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }
}

/// A host connector writing records, with its options (the file and standard output sinks
/// write each record's value as a line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sink {
    connector: &'static str,
    options: Vec<(String, String)>,
}

impl Sink {
    /// Part files in directory `path`, one series per sink subtask.
    pub fn file(path: impl Into<String>) -> Self {
        Sink::new("file").option("path", path)
    }

    /// The host's standard output.
    pub fn stdout() -> Self {
        Sink::new("stdout")
    }

    /// Discards everything.
    pub fn blackhole() -> Self {
        Sink::new("blackhole")
    }

    /// Messages (each record's key and value) into Kafka topic `topic`, with the option names of Flink's
    /// Kafka SQL connector: `bootstrap_servers` is `properties.bootstrap.servers`
    /// (`host:port`, comma-separated). Other options, set with [`option`](Self::option):
    ///
    /// - `sink.delivery-guarantee`: `at-least-once` (default, as Flink's), `exactly-once`
    ///   (Kafka transactions committed with each checkpoint) or `none`.
    /// - `sink.transactional-id-prefix`: the prefix of the transactional ids `exactly-once`
    ///   uses.
    /// - `properties.*`: any other Kafka producer property.
    pub fn kafka(bootstrap_servers: impl Into<String>, topic: impl Into<String>) -> Self {
        Sink::new("kafka")
            .option("properties.bootstrap.servers", bootstrap_servers)
            .option("topic", topic)
    }

    /// Any host connector by name.
    pub fn new(connector: &'static str) -> Self {
        Sink {
            connector,
            options: Vec::new(),
        }
    }

    /// Sets a connector option, for example the Kafka sink's `sink.delivery-guarantee`.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }
}

/// A `kafka://HOST:PORT/TOPIC[?OPTION=VALUE&...]` address, as the example jobs take for
/// `--input` and `--output`: the bootstrap servers, the topic, and connector options (which
/// override the job's defaults), for example
/// `kafka://127.0.0.1:9092/words?scan.bounded.mode=unbounded&properties.group.id=wc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaUrl {
    pub servers: String,
    pub topic: String,
    pub options: Vec<(String, String)>,
}

impl KafkaUrl {
    /// `value` as a Kafka address: `None` when it is not a `kafka://` one, an error saying
    /// what one looks like when it is malformed.
    pub fn parse(value: &str) -> Result<Option<Self>, String> {
        let Some(address) = value.strip_prefix("kafka://") else {
            return Ok(None);
        };
        let malformed = || "expected kafka://HOST:PORT/TOPIC[?OPTION=VALUE&...]".to_owned();
        let (address, query) = address.split_once('?').unwrap_or((address, ""));
        let (servers, topic) = address
            .split_once('/')
            .filter(|(servers, topic)| {
                !servers.is_empty() && !topic.is_empty() && !topic.contains('/')
            })
            .ok_or_else(malformed)?;
        let options = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                pair.split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(malformed)?;
        Ok(Some(KafkaUrl {
            servers: servers.to_owned(),
            topic: topic.to_owned(),
            options,
        }))
    }

    /// The source reading the topic: `defaults`, then the address's own options.
    pub fn source(&self, defaults: &[(&str, &str)]) -> Source {
        self.with_options(
            Source::kafka(&self.servers, &self.topic),
            defaults,
            Source::option,
        )
    }

    /// The sink writing the topic: `defaults`, then the address's own options.
    pub fn sink(&self, defaults: &[(&str, &str)]) -> Sink {
        self.with_options(
            Sink::kafka(&self.servers, &self.topic),
            defaults,
            Sink::option,
        )
    }

    fn with_options<T>(
        &self,
        node: T,
        defaults: &[(&str, &str)],
        option: fn(T, String, String) -> T,
    ) -> T {
        let defaults = defaults.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        defaults
            .chain(self.options.iter().cloned())
            .fold(node, |node, (k, v)| option(node, k, v))
    }
}

impl JobGraph {
    pub fn new(name: impl Into<String>) -> Self {
        JobGraph {
            name: name.into(),
            nodes: Vec::new(),
            config: Vec::new(),
        }
    }

    /// Sets a configuration key in code (Flink names, for example
    /// `execution.checkpointing.interval`). Overrides the config file; `-D` overrides it.
    pub fn config(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.config.push((key.into(), value.into()));
        self
    }

    /// Adds a source node and returns its stream, to chain the next node onto.
    pub fn source(&mut self, uid: impl Into<String>, source: Source) -> Stream<'_> {
        self.add(Node {
            uid: uid.into(),
            kind: NodeKind::Source(source.connector.to_owned()),
            inputs: Vec::new(),
            parallelism: None,
            options: source.options,
            watermarks: None,
        })
    }

    /// The stream of the node `uid` added before, to chain more nodes onto it (its side
    /// outputs, a second branch); `None` if there is no such node.
    pub fn stream(&mut self, uid: &str) -> Option<Stream<'_>> {
        let index = self.nodes.iter().position(|node| node.uid == uid)?;
        Some(Stream {
            graph: self,
            index,
            side_output: None,
        })
    }

    /// Adds any node (for graphs that are not a straight pipeline, such as joins).
    pub fn add(&mut self, node: Node) -> Stream<'_> {
        self.nodes.push(node);
        let index = self.nodes.len() - 1;
        Stream {
            graph: self,
            index,
            side_output: None,
        }
    }
}

/// The output of the node last added, to chain further nodes onto.
pub struct Stream<'g> {
    graph: &'g mut JobGraph,
    index: usize,
    /// The side output the next node reads, instead of the node's records.
    side_output: Option<String>,
}

impl<'g> Stream<'g> {
    /// The uid of this stream's node.
    pub fn uid(&self) -> &str {
        &self.graph.nodes[self.index].uid
    }

    /// Sets this node's parallelism (default: the job's default parallelism).
    pub fn parallelism(self, parallelism: u32) -> Self {
        self.graph.nodes[self.index].parallelism = Some(parallelism);
        self
    }

    /// Makes watermarks from the timestamps this node emits (a source's or an operator's:
    /// Flink's `assignTimestampsAndWatermarks`).
    pub fn watermarks(self, strategy: WatermarkStrategy) -> Self {
        self.graph.nodes[self.index].watermarks = Some(strategy);
        self
    }

    /// This node's side output `name` (what its operator emits there, Flink's
    /// `getSideOutput(OutputTag)`): the next node chained on reads that instead of the
    /// node's records.
    pub fn side_output(self, name: impl Into<String>) -> Self {
        Stream {
            side_output: Some(name.into()),
            ..self
        }
    }

    /// Sets an option on this node.
    pub fn option(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let node = &mut self.graph.nodes[self.index];
        node.options.push((key.into(), value.into()));
        self
    }

    /// Adds operator `name` (as the job's `Job::operator` knows it) reading this
    /// stream through `partitioning`.
    pub fn operator(
        self,
        uid: impl Into<String>,
        name: impl Into<String>,
        partitioning: Partitioning,
    ) -> Stream<'g> {
        self.then(
            uid.into(),
            NodeKind::Operator(name.into()),
            Vec::new(),
            partitioning,
        )
    }

    /// Adds a sink reading this stream through `partitioning`.
    pub fn sink(
        self,
        uid: impl Into<String>,
        sink: Sink,
        partitioning: Partitioning,
    ) -> Stream<'g> {
        self.then(
            uid.into(),
            NodeKind::Sink(sink.connector.to_owned()),
            sink.options,
            partitioning,
        )
    }

    fn then(
        self,
        uid: String,
        kind: NodeKind,
        options: Vec<(String, String)>,
        partitioning: Partitioning,
    ) -> Stream<'g> {
        let upstream = self.uid().to_owned();
        self.graph.add(Node {
            uid,
            kind,
            inputs: vec![Input {
                upstream,
                partitioning,
                side_output: self.side_output,
            }],
            parallelism: None,
            options,
            watermarks: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_builder_chains_inputs() {
        let mut job = JobGraph::new("wc");
        job.config("parallelism.default", "2");
        job.source("lines", Source::file("in.txt"))
            .parallelism(1)
            .operator("split", "split", Partitioning::Rebalance)
            .operator("count", "count", Partitioning::ByKey)
            .sink("out", Sink::file("out"), Partitioning::Forward);
        let uids: Vec<_> = job.nodes.iter().map(|n| n.uid.as_str()).collect();
        assert_eq!(uids, ["lines", "split", "count", "out"]);
        assert_eq!(job.nodes[0].parallelism, Some(1));
        assert_eq!(job.nodes[0].options, [("path".into(), "in.txt".into())]);
        assert_eq!(job.nodes[2].kind, NodeKind::Operator("count".into()));
        assert_eq!(
            job.nodes[2].inputs,
            [Input {
                upstream: "split".into(),
                partitioning: Partitioning::ByKey,
                side_output: None,
            }]
        );
        assert_eq!(job.nodes[3].kind, NodeKind::Sink("file".into()));
        assert_eq!(job.config, [("parallelism.default".into(), "2".into())]);
    }

    #[test]
    fn a_side_output_is_an_input_of_its_own() {
        let mut job = JobGraph::new("late");
        job.source("in", Source::file("in.txt"))
            .operator("count", "count", Partitioning::ByKey)
            .sink("out", Sink::file("out"), Partitioning::Forward);
        job.stream("count")
            .expect("count was added")
            .side_output("late")
            .sink("late-out", Sink::file("late"), Partitioning::Forward);
        assert!(job.stream("nothing").is_none());
        let inputs: Vec<_> = job.nodes[2..].iter().map(|n| &n.inputs[0]).collect();
        assert_eq!(
            inputs,
            [
                &Input {
                    upstream: "count".into(),
                    partitioning: Partitioning::Forward,
                    side_output: None,
                },
                &Input {
                    upstream: "count".into(),
                    partitioning: Partitioning::Forward,
                    side_output: Some("late".into()),
                },
            ]
        );
    }

    #[test]
    fn kafka_nodes_carry_flink_option_names() {
        let mut job = JobGraph::new("k");
        job.source(
            "in",
            Source::kafka("a:9092,b:9092", "lines").option("scan.bounded.mode", "latest-offset"),
        )
        .sink(
            "out",
            Sink::kafka("a:9092", "counts"),
            Partitioning::Forward,
        );
        let options = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|&(k, v)| (k.into(), v.into())).collect()
        };
        assert_eq!(job.nodes[0].kind, NodeKind::Source("kafka".into()));
        assert_eq!(
            job.nodes[0].options,
            options(&[
                ("properties.bootstrap.servers", "a:9092,b:9092"),
                ("topic", "lines"),
                ("scan.bounded.mode", "latest-offset"),
            ])
        );
        assert_eq!(job.nodes[1].kind, NodeKind::Sink("kafka".into()));
        assert_eq!(
            job.nodes[1].options,
            options(&[
                ("properties.bootstrap.servers", "a:9092"),
                ("topic", "counts"),
            ])
        );
    }
}
