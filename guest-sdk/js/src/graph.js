// The job graph a job describes, and a small builder for it (the Rust SDK's, in JavaScript).

/**
 * @internal Whether `name` can name a side output: a string of 1 to 64 characters (code
 * points, as the host counts them).
 * @param {unknown} name
 */
export function isSideOutputName(name) {
  if (typeof name !== "string" || name === "") return false;
  if (name.length <= 64) return true;
  let n = 0;
  for (const _ of name) if (++n > 64) return false;
  return true;
}

/**
 * How records travel from an upstream node's subtasks to a downstream node's subtasks.
 * @readonly
 * @enum {string}
 */
export const Partitioning = Object.freeze({
  /** Subtask i to subtask i; both sides need the same parallelism. */
  FORWARD: "forward",
  /** Round-robin, batch by batch. */
  REBALANCE: "rebalance",
  /** By hash of the record key. */
  BY_KEY: "by-key",
  /** Every record to every downstream subtask. */
  BROADCAST: "broadcast",
});

const PARTITIONINGS = new Set(Object.values(Partitioning));

/**
 * One input edge of a node.
 * @typedef {object} Input
 * @property {string} upstream The `uid` of the upstream node.
 * @property {Partitioning} partitioning
 * @property {string | null} [sideOutput] null: the upstream node's records; a name: only what
 *   it emits to that side output (`emitTo(name, records)`).
 */

/**
 * How the host makes watermarks from the timestamps a node (a source or an operator) emits
 * (Flink's `WatermarkStrategy`): every `pipeline.auto-watermark-interval` the watermark is
 * the highest timestamp emitted so far minus the bound minus 1; a record further behind is
 * late. With idleness, a subtask that emitted nothing for that long stops holding
 * downstream watermarks back until it emits again.
 */
export class WatermarkStrategy {
  /**
   * @param {number} maxOutOfOrdernessMs
   * @param {number | null} idleTimeoutMs
   */
  constructor(maxOutOfOrdernessMs, idleTimeoutMs) {
    /** @type {number} */
    this.maxOutOfOrdernessMs = checkMs(maxOutOfOrdernessMs, "a watermark strategy's bound");
    /** @type {number | null} */
    this.idleTimeoutMs = idleTimeoutMs === null ? null : checkMs(idleTimeoutMs, "an idle timeout");
  }

  /**
   * Flink's `forBoundedOutOfOrderness`: records may come up to `ms` milliseconds behind the
   * highest timestamp.
   * @param {number} ms
   */
  static boundedOutOfOrderness(ms) {
    return new WatermarkStrategy(ms, null);
  }

  /** Flink's `forMonotonousTimestamps`: timestamps never go down. */
  static monotonousTimestamps() {
    return new WatermarkStrategy(0, null);
  }

  /**
   * Flink's `withIdleness`: the same strategy, with the subtask idle after `ms` without
   * records.
   * @param {number} ms
   */
  withIdleness(ms) {
    return new WatermarkStrategy(this.maxOutOfOrdernessMs, ms);
  }
}

function checkMs(ms, what) {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new TypeError(`${what} is a non-negative integer (ms), not ${String(ms)}`);
  return ms;
}

/**
 * A node of the job graph.
 * @typedef {object} Node
 * @property {string} uid Stable identity of the node's state across runs and code versions.
 * @property {"source" | "operator" | "sink"} type
 * @property {string} name The connector's name (sources, sinks) or the operator's name (as
 *   the job's `operators` know it).
 * @property {Input[]} inputs In the order the operator sees them (`record.input`).
 * @property {number | null} parallelism `null`: the job's default parallelism.
 * @property {[string, string][]} options
 * @property {WatermarkStrategy | null} watermarks null: the node passes on the watermarks it
 *   receives (a source: none until its input ends). Sinks have none.
 */

/** A host connector reading records, with its options. */
export class Source {
  /**
   * Any host connector by name.
   * @param {string} connector
   */
  constructor(connector) {
    /** @type {string} */
    this.connector = connector;
    /** @type {[string, string][]} */
    this.options = [];
  }

  /**
   * Lines of a UTF-8 text file, one record per line (without the line break).
   * @param {string} path
   */
  static file(path) {
    return new Source("file").option("path", path);
  }

  /**
   * Deterministic records `key-<i mod keys>` → `i` (8 bytes, little endian) for
   * i = 0..count; `count` 0 means unbounded.
   * @param {number} count
   * @param {number} keys
   */
  static generator(count, keys) {
    return new Source("generator").option("count", String(count)).option("keys", String(keys));
  }

  /** Lines of the host's standard input (not replayable). */
  static stdin() {
    return new Source("stdin");
  }

  /**
   * The messages of Kafka topic `topic` (each one's key and value), with the option names of
   * Flink's Kafka SQL connector: `bootstrapServers` is `properties.bootstrap.servers`
   * (`host:port`, comma-separated). Other options, set with `option`: `scan.startup.mode`
   * (`earliest-offset` (default), `latest-offset`, `group-offsets`, `timestamp`,
   * `specific-offsets`), `scan.bounded.mode` (`unbounded` (default), `latest-offset`,
   * `group-offsets`, `timestamp`, `specific-offsets`), `properties.group.id`, and any other
   * Kafka consumer property as `properties.*`.
   * @param {string} bootstrapServers
   * @param {string} topic
   */
  static kafka(bootstrapServers, topic) {
    return new Source("kafka").option("properties.bootstrap.servers", bootstrapServers).option("topic", topic);
  }

  /**
   * Sets a connector option, for example the file source's `rate` in lines per second.
   * @param {string} key
   * @param {string | number} value
   * @returns {this}
   */
  option(key, value) {
    this.options.push([key, String(value)]);
    return this;
  }
}

/**
 * A host connector writing records, with its options (the file and standard output sinks
 * write each record's value as a line).
 */
export class Sink {
  /**
   * Any host connector by name.
   * @param {string} connector
   */
  constructor(connector) {
    /** @type {string} */
    this.connector = connector;
    /** @type {[string, string][]} */
    this.options = [];
  }

  /**
   * Part files in directory `path`, one series per sink subtask.
   * @param {string} path
   */
  static file(path) {
    return new Sink("file").option("path", path);
  }

  /** The host's standard output. */
  static stdout() {
    return new Sink("stdout");
  }

  /** Discards everything. */
  static blackhole() {
    return new Sink("blackhole");
  }

  /**
   * Messages (each record's key and value) into Kafka topic `topic`, with the option names of
   * Flink's Kafka SQL connector: `bootstrapServers` is `properties.bootstrap.servers`
   * (`host:port`, comma-separated). Other options, set with `option`:
   * `sink.delivery-guarantee` (`at-least-once` (default, as Flink's), `exactly-once`, `none`),
   * `sink.transactional-id-prefix`, and any other Kafka producer property as `properties.*`.
   * @param {string} bootstrapServers
   * @param {string} topic
   */
  static kafka(bootstrapServers, topic) {
    return new Sink("kafka").option("properties.bootstrap.servers", bootstrapServers).option("topic", topic);
  }

  /**
   * Sets a connector option, for example the Kafka sink's `sink.delivery-guarantee`.
   * @param {string} key
   * @param {string | number} value
   * @returns {this}
   */
  option(key, value) {
    this.options.push([key, String(value)]);
    return this;
  }
}

/** The job graph: nodes, their edges, and the job's own configuration. */
export class JobGraph {
  /** @param {string} name */
  constructor(name) {
    /** @type {string} */
    this.name = name;
    /** @type {Node[]} */
    this.nodes = [];
    /** @type {[string, string][]} */
    this.configuration = [];
  }

  /**
   * Sets a configuration key in code (Flink names, for example
   * `execution.checkpointing.interval`). Overrides the config file; `-D` overrides it.
   * @param {string} key
   * @param {string | number} value
   * @returns {this}
   */
  config(key, value) {
    this.configuration.push([key, String(value)]);
    return this;
  }

  /**
   * Adds a source node and returns its stream, to chain the next node onto.
   * @param {string} uid
   * @param {Source} source
   * @returns {Stream}
   */
  source(uid, source) {
    if (!(source instanceof Source)) throw new TypeError(`source ${uid}: expected a Source`);
    return this.add({
      uid,
      type: "source",
      name: source.connector,
      inputs: [],
      parallelism: null,
      options: [...source.options],
    });
  }

  /**
   * The stream of node `uid`, to chain more nodes onto (a second output of a node, or its
   * side output), or null if there is no such node.
   * @param {string} uid
   * @returns {Stream | null}
   */
  stream(uid) {
    const index = this.nodes.findIndex((node) => node.uid === uid);
    return index < 0 ? null : new Stream(this, index);
  }

  /**
   * Adds any node (for graphs that are not a straight pipeline, such as joins).
   * @param {Omit<Node, "parallelism" | "options" | "inputs" | "watermarks"> & Partial<Node>} node
   * @returns {Stream}
   */
  add(node) {
    this.nodes.push({
      uid: node.uid,
      type: node.type,
      name: node.name,
      inputs: node.inputs ?? [],
      parallelism: node.parallelism ?? null,
      options: node.options ?? [],
      watermarks: node.watermarks ?? null,
    });
    return new Stream(this, this.nodes.length - 1);
  }
}

/** The output of the node last added, to chain further nodes onto. */
export class Stream {
  /**
   * @param {JobGraph} graph
   * @param {number} index
   * @param {string | null} [sideOutput]
   */
  constructor(graph, index, sideOutput = null) {
    /** @type {JobGraph} */
    this.graph = graph;
    /** @internal */
    this._index = index;
    /** @internal The side output the next node reads instead of the node's records. */
    this._sideOutput = sideOutput;
  }

  /** The node this stream is the output of. */
  get node() {
    return this.graph.nodes[this._index];
  }

  /** The uid of this stream's node. */
  get uid() {
    return this.node.uid;
  }

  /**
   * Sets this node's parallelism (default: the job's default parallelism).
   * @param {number} parallelism
   * @returns {this}
   */
  parallelism(parallelism) {
    this.node.parallelism = parallelism;
    return this;
  }

  /**
   * Makes watermarks from the timestamps this node (a source or an operator) emits.
   * @param {WatermarkStrategy} strategy
   * @returns {this}
   */
  watermarks(strategy) {
    if (!(strategy instanceof WatermarkStrategy)) throw new TypeError(`node ${this.uid}: expected a WatermarkStrategy`);
    this.node.watermarks = strategy;
    return this;
  }

  /**
   * This node's side output `name` (what its operator emits there with `emitTo`, Flink's
   * `getSideOutput(OutputTag)`): the next node chained on reads that instead of the node's
   * records.
   * @param {string} name
   * @returns {Stream}
   */
  sideOutput(name) {
    return new Stream(this.graph, this._index, name);
  }

  /**
   * Sets an option on this node (an operator reads it with `ctx.option(key)`).
   * @param {string} key
   * @param {string | number} value
   * @returns {this}
   */
  option(key, value) {
    this.node.options.push([key, String(value)]);
    return this;
  }

  /**
   * Adds operator `name` (as the job's `operators` know it) reading this stream through
   * `partitioning`.
   * @param {string} uid
   * @param {string} name
   * @param {Partitioning} partitioning
   * @returns {Stream}
   */
  operator(uid, name, partitioning) {
    return this.graph.add({
      uid,
      type: "operator",
      name,
      inputs: [this._input(partitioning)],
    });
  }

  /**
   * Adds a sink reading this stream through `partitioning`.
   * @param {string} uid
   * @param {Sink} sink
   * @param {Partitioning} partitioning
   * @returns {Stream}
   */
  sink(uid, sink, partitioning) {
    if (!(sink instanceof Sink)) throw new TypeError(`sink ${uid}: expected a Sink`);
    return this.graph.add({
      uid,
      type: "sink",
      name: sink.connector,
      inputs: [this._input(partitioning)],
      options: [...sink.options],
    });
  }

  /** @internal The input edge of a node chained onto this stream. */
  _input(partitioning) {
    return { upstream: this.uid, partitioning, sideOutput: this._sideOutput };
  }
}

/**
 * @internal The graph as the WIT `job-graph` record, checked so that a mistake is reported
 * by name rather than as a failure to convert.
 * @param {JobGraph} graph
 */
export function graphToWit(graph) {
  if (!(graph instanceof JobGraph)) {
    throw new TypeError(`describe(args) must return a JobGraph, not ${typeof graph}`);
  }
  return {
    name: String(graph.name),
    nodes: graph.nodes.map((node) => {
      const where = `node ${JSON.stringify(node.uid)}`;
      if (typeof node.uid !== "string" || node.uid === "") throw new TypeError(`${where}: the uid must be a non-empty string`);
      if (!["source", "operator", "sink"].includes(node.type)) {
        throw new TypeError(`${where}: type must be "source", "operator" or "sink", not ${JSON.stringify(node.type)}`);
      }
      const p = node.parallelism;
      if (p !== null && !(Number.isInteger(p) && p >= 1 && p <= 0xffffffff)) {
        throw new TypeError(`${where}: parallelism must be a positive integer, not ${p}`);
      }
      return {
        uid: node.uid,
        kind: { tag: node.type, val: String(node.name) },
        inputs: node.inputs.map((input) => {
          if (!PARTITIONINGS.has(input.partitioning)) {
            throw new TypeError(`${where}: partitioning must be one of ${[...PARTITIONINGS].join(", ")}, not ${JSON.stringify(input.partitioning)}`);
          }
          const sideOutput = input.sideOutput ?? null;
          if (sideOutput !== null && !isSideOutputName(sideOutput)) {
            throw new TypeError(`${where}: a side output's name is 1 to 64 characters, not ${JSON.stringify(sideOutput)}`);
          }
          return { upstream: String(input.upstream), partitioning: { tag: input.partitioning }, sideOutput };
        }),
        parallelism: p,
        options: node.options.map(([k, v]) => [String(k), String(v)]),
        watermarks: watermarksToWit(node, where),
      };
    }),
    config: graph.configuration.map(([k, v]) => [String(k), String(v)]),
  };
}

/** A node's watermark strategy as the WIT `option<watermark-strategy>`. */
function watermarksToWit(node, where) {
  const strategy = node.watermarks ?? null;
  if (strategy === null) return null;
  if (!(strategy instanceof WatermarkStrategy)) throw new TypeError(`${where}: watermarks must be a WatermarkStrategy`);
  if (node.type === "sink") throw new TypeError(`${where}: a sink makes no watermarks`);
  return { maxOutOfOrdernessMs: strategy.maxOutOfOrdernessMs, idleTimeoutMs: strategy.idleTimeoutMs };
}
