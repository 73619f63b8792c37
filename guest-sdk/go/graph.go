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
	node := &Node{graph: n.graph, uid: uid, kind: kind, name: name, inputs: []input{{n.uid, p}}}
	n.graph.nodes = append(n.graph.nodes, node)
	return node
}

// Input adds another input to an operator or sink node.
func (n *Node) Input(upstream *Node, p Partitioning) *Node {
	n.inputs = append(n.inputs, input{upstream.uid, p})
	return n
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
