package cairn

// Partitioning is how records travel from an upstream node's subtasks to a node's.
type Partitioning uint8

const (
	// Forward sends subtask i's records to subtask i (equal parallelism).
	Forward Partitioning = iota
	// Rebalance sends batches round-robin.
	Rebalance
	// ByKey sends each record to the subtask owning its key's key group.
	ByKey
	// Broadcast sends every record to every subtask.
	Broadcast
)

type nodeKind uint8

const (
	kindSource nodeKind = iota
	kindOperator
	kindSink
)

type input struct {
	upstream     string
	partitioning Partitioning
	sideOutput   string // "": the upstream node's records
}

// WatermarkStrategy is how the host makes watermarks from the timestamps of what a node
// emits (Flink's WatermarkStrategy): the highest timestamp so far minus the bound minus 1.
// A record further behind is late.
type WatermarkStrategy struct {
	// MaxOutOfOrdernessMs is the bound (0: Flink's forMonotonousTimestamps).
	MaxOutOfOrdernessMs uint64
	// IdleTimeoutMs, when Idle, marks a subtask that emitted nothing for that long idle
	// (Flink's withIdleness): downstream watermarks stop waiting for it until it emits.
	IdleTimeoutMs uint64
	Idle          bool
}

// BoundedOutOfOrderness is Flink's forBoundedOutOfOrderness: records may come up to
// maxDelayMs behind the highest timestamp so far.
func BoundedOutOfOrderness(maxDelayMs uint64) WatermarkStrategy {
	return WatermarkStrategy{MaxOutOfOrdernessMs: maxDelayMs}
}

// WithIdleness is the strategy with Flink's withIdleness(timeoutMs).
func (w WatermarkStrategy) WithIdleness(timeoutMs uint64) WatermarkStrategy {
	w.IdleTimeoutMs, w.Idle = timeoutMs, true
	return w
}

// Node is a node of the job graph: a source, an operator or a sink.
type Node struct {
	graph       *Graph
	uid         string
	kind        nodeKind
	name        string
	inputs      []input
	parallelism uint32 // 0: the job's default
	options     [][2]string
	watermarks  *WatermarkStrategy // nil: the node passes on the watermarks it receives
}

// Graph is the job's dataflow graph, as describe returns it.
type Graph struct {
	name   string
	nodes  []*Node
	config [][2]string
}

// NewGraph starts the graph of a job.
func NewGraph(name string) *Graph { return &Graph{name: name} }

// Config sets a configuration key of the job (Flink key names).
func (g *Graph) Config(key, value string) *Graph {
	g.config = append(g.config, [2]string{key, value})
	return g
}

// Source adds a source node of host connector `connector` (file, generator, stdin, kafka).
func (g *Graph) Source(uid, connector string) *Node {
	n := &Node{graph: g, uid: uid, kind: kindSource, name: connector}
	g.nodes = append(g.nodes, n)
	return n
}

// FileSource reads the lines of a file.
func (g *Graph) FileSource(uid, path string) *Node {
	return g.Source(uid, "file").Option("path", path)
}

// StdinSource reads the lines of standard input.
func (g *Graph) StdinSource(uid string) *Node { return g.Source(uid, "stdin") }

// KafkaSource reads the messages of Kafka topic `topic` (each one's key and value), with the
// option names of Flink's Kafka SQL connector: bootstrapServers is
// `properties.bootstrap.servers` (`host:port`, comma-separated). Other options, set with
// Option: `scan.startup.mode` (earliest-offset (default), latest-offset, group-offsets,
// timestamp, specific-offsets), `scan.bounded.mode` (unbounded (default), latest-offset,
// group-offsets, timestamp, specific-offsets), `properties.group.id`, and any other Kafka
// consumer property as `properties.*`.
func (g *Graph) KafkaSource(uid, bootstrapServers, topic string) *Node {
	return g.Source(uid, "kafka").kafka(bootstrapServers, topic)
}

// Operator adds a node running this job's operator `name`, reading this node.
func (n *Node) Operator(uid, name string, p Partitioning) *Node {
	return n.add(uid, kindOperator, name, p)
}

// Sink adds a sink node of host connector `connector` (file, stdout, blackhole, kafka).
func (n *Node) Sink(uid, connector string, p Partitioning) *Node {
	return n.add(uid, kindSink, connector, p)
}

// FileSink writes to files in a directory.
func (n *Node) FileSink(uid, dir string, p Partitioning) *Node {
	return n.Sink(uid, "file", p).Option("path", dir)
}

// StdoutSink writes to standard output.
func (n *Node) StdoutSink(uid string, p Partitioning) *Node { return n.Sink(uid, "stdout", p) }

// KafkaSink writes messages (each record's key and value) into Kafka topic `topic`, with the
// option names of Flink's Kafka SQL connector: bootstrapServers is
// `properties.bootstrap.servers` (`host:port`, comma-separated). Other options, set with
// Option: `sink.delivery-guarantee` (at-least-once (default, as Flink's), exactly-once, none),
// `sink.transactional-id-prefix`, and any other Kafka producer property as `properties.*`.
func (n *Node) KafkaSink(uid, bootstrapServers, topic string, p Partitioning) *Node {
	return n.Sink(uid, "kafka", p).kafka(bootstrapServers, topic)
}

// kafka sets the connection options the Kafka source and sink share.
func (n *Node) kafka(bootstrapServers, topic string) *Node {
	return n.Option("properties.bootstrap.servers", bootstrapServers).Option("topic", topic)
}

func (n *Node) add(uid string, kind nodeKind, name string, p Partitioning) *Node {
	return n.graph.add(uid, kind, name, input{n.uid, p, ""})
}

func (g *Graph) add(uid string, kind nodeKind, name string, in input) *Node {
	node := &Node{graph: g, uid: uid, kind: kind, name: name, inputs: []input{in}}
	g.nodes = append(g.nodes, node)
	return node
}

// Input adds another input to an operator or sink node.
func (n *Node) Input(upstream *Node, p Partitioning) *Node {
	n.inputs = append(n.inputs, input{upstream.uid, p, ""})
	return n
}

// InputFrom adds a side output of another node as an input of an operator or sink node.
func (n *Node) InputFrom(upstream SideOutput, p Partitioning) *Node {
	n.inputs = append(n.inputs, input{upstream.node.uid, p, upstream.name})
	return n
}

// Watermarks makes the node (a source or an operator) make watermarks from the timestamps of
// what it emits; without, it passes on those it receives.
func (n *Node) Watermarks(w WatermarkStrategy) *Node {
	n.watermarks = &w
	return n
}

// SideOutput is what node n's operator emits to its side output name (EmitTo, Flink's
// OutputTag), as the upstream of other nodes.
func (n *Node) SideOutput(name string) SideOutput { return SideOutput{n, name} }

// SideOutput is a node's side output, read by the nodes added on it.
type SideOutput struct {
	node *Node
	name string
}

// Operator adds a node running this job's operator `name`, reading the side output.
func (s SideOutput) Operator(uid, name string, p Partitioning) *Node {
	return s.node.graph.add(uid, kindOperator, name, input{s.node.uid, p, s.name})
}

// Sink adds a sink node of host connector `connector`, reading the side output.
func (s SideOutput) Sink(uid, connector string, p Partitioning) *Node {
	return s.node.graph.add(uid, kindSink, connector, input{s.node.uid, p, s.name})
}

// FileSink writes the side output to files in a directory.
func (s SideOutput) FileSink(uid, dir string, p Partitioning) *Node {
	return s.Sink(uid, "file", p).Option("path", dir)
}

// Option sets an option of the node (a connector's setting, or an operator's own).
func (n *Node) Option(key, value string) *Node {
	n.options = append(n.options, [2]string{key, value})
	return n
}

// Parallelism sets the node's number of subtasks.
func (n *Node) Parallelism(p uint32) *Node {
	n.parallelism = p
	return n
}
