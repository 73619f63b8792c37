package cairn

import "encoding/binary"

// The canonical ABI layouts of the records `describe` returns, written byte by byte at the
// offsets the component model gives them (little-endian; a record is aligned to its most
// aligned field, an option or variant is its discriminant then its payload at the payload's
// alignment). abi_wasm.go lowers into the Go heap; the tests lower into a byte slice and
// read it back.

// memory is where results are lowered for the host to read.
type memory interface {
	// alloc returns the address of size zeroed bytes aligned to align, and the bytes.
	alloc(size, align uint32) (uint32, []byte)
}

// Sizes and alignments of the contract's records (cairn:job/types).
const (
	// string: ptr, len. list<T>: the same.
	sizeString = 8
	// tuple<string, string>
	sizePair = 2 * sizeString
	// input { upstream: string, partitioning (u8), side-output: option<string> }: the
	// option's discriminant at 12, its string at 16.
	sizeInput, alignInput = 24, 4
	// node { uid: string, kind: node-kind (u8, string at 12), inputs: list<input>,
	// parallelism: option<u32> (28, u32 at 32), options: list<tuple> (36),
	// watermarks: option<watermark-strategy> (48, the record at 56) }, where
	// watermark-strategy { max-out-of-orderness-ms: u64, idle-timeout-ms: option<u64> (8,
	// u64 at 16) } is 24 bytes aligned to 8.
	sizeNode, alignNode = 80, 8
)

// lowered lowers values into one memory.
type lowered struct{ m memory }

func (l lowered) u32(b []byte, at int, v uint32) { binary.LittleEndian.PutUint32(b[at:], v) }

func (l lowered) u64(b []byte, at int, v uint64) { binary.LittleEndian.PutUint64(b[at:], v) }

// string writes s's pointer and length at b[at:].
func (l lowered) string(b []byte, at int, s string) {
	addr, bytes := l.m.alloc(uint32(len(s)), 1)
	copy(bytes, s)
	l.u32(b, at, addr)
	l.u32(b, at+4, uint32(len(s)))
}

// list allocates n elements of size bytes aligned to align, writes the list's pointer and
// length at b[at:], and returns the elements' bytes.
func (l lowered) list(b []byte, at, n int, size, align uint32) []byte {
	addr, elements := l.m.alloc(uint32(n)*size, align)
	l.u32(b, at, addr)
	l.u32(b, at+4, uint32(n))
	return elements
}

func (l lowered) pairs(b []byte, at int, kv [][2]string) {
	elements := l.list(b, at, len(kv), sizePair, 4)
	for i, p := range kv {
		l.string(elements, i*sizePair, p[0])
		l.string(elements, i*sizePair+sizeString, p[1])
	}
}

// graph lowers g as a job-graph record { name: string, nodes: list<node>, config: list<tuple> }
// into its 24 bytes.
func (l lowered) graph(g *Graph) [24]byte {
	var b [24]byte
	l.string(b[:], 0, g.name)
	nodes := l.list(b[:], 8, len(g.nodes), sizeNode, alignNode)
	for i, n := range g.nodes {
		l.node(nodes[i*sizeNode:(i+1)*sizeNode], n)
	}
	l.pairs(b[:], 16, g.config)
	return b
}

func (l lowered) node(b []byte, n *Node) {
	l.string(b, 0, n.uid)
	b[8] = byte(n.kind)
	l.string(b, 12, n.name)
	inputs := l.list(b, 20, len(n.inputs), sizeInput, alignInput)
	for i, in := range n.inputs {
		e := inputs[i*sizeInput : (i+1)*sizeInput]
		l.string(e, 0, in.upstream)
		e[8] = byte(in.partitioning)
		if in.sideOutput != "" {
			e[12] = 1
			l.string(e, 16, in.sideOutput)
		}
	}
	if n.parallelism != 0 {
		b[28] = 1
		l.u32(b, 32, n.parallelism)
	}
	l.pairs(b, 36, n.options)
	if w := n.watermarks; w != nil {
		b[48] = 1
		l.u64(b, 56, w.MaxOutOfOrdernessMs)
		if w.Idle {
			b[64] = 1
			l.u64(b, 72, w.IdleTimeoutMs)
		}
	}
}
