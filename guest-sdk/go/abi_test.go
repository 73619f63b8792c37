package cairn

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// testMemory is a wasm32 memory in a byte slice: an address is an offset into it. It never
// moves (what alloc returned stays where it is), and address 0 is never handed out.
type testMemory struct{ b []byte }

func newTestMemory() *testMemory { return &testMemory{make([]byte, 1, 1<<16)} }

func (m *testMemory) alloc(size, align uint32) (uint32, []byte) {
	at := alignTo(uint32(len(m.b)), align)
	if int(at+size) > cap(m.b) {
		panic("testMemory is full")
	}
	m.b = m.b[:at+size]
	return at, m.b[at : at+size : at+size]
}

// abiType is a type's size and alignment under the canonical ABI, computed here from the
// rules of the component model, independently of abi.go's constants.
type abiType struct{ size, align uint32 }

func alignTo(n, align uint32) uint32 { return (n + align - 1) / align * align }

var (
	u8, u32, u64 = abiType{1, 1}, abiType{4, 4}, abiType{8, 8}
	str, list    = abiType{8, 4}, abiType{8, 4}
)

// record lays out fields in order: the record's type and each field's offset.
func record(fields ...abiType) (abiType, []uint32) {
	var size, align uint32 = 0, 1
	offsets := make([]uint32, len(fields))
	for i, f := range fields {
		size = alignTo(size, f.align)
		offsets[i] = size
		size += f.size
		align = max(align, f.align)
	}
	return abiType{alignTo(size, align), align}, offsets
}

// variant is a u8 discriminant (up to 256 cases) and a payload: the type, and the payload's
// offset.
func variant(payload abiType) (abiType, uint32) {
	align := max(1, payload.align)
	at := alignTo(1, align)
	return abiType{alignTo(at+payload.size, align), align}, at
}

// option is an option's type: a variant of none and some(payload).
func option(payload abiType) abiType {
	ty, _ := variant(payload)
	return ty
}

func TestLayoutsFollowTheCanonicalABI(t *testing.T) {
	input, _ := record(str, u8, option(str))
	strategy, _ := record(u64, option(u64))
	kind, _ := variant(str)
	node, _ := record(str, kind, list, option(u32), list, option(strategy))
	if input != (abiType{sizeInput, alignInput}) || node != (abiType{sizeNode, alignNode}) {
		t.Fatalf("input %+v, node %+v", input, node)
	}
	if pair, _ := record(str, str); pair.size != sizePair {
		t.Fatalf("tuple<string, string> %+v", pair)
	}
}

// reader reads lowered values back from a testMemory.
type reader struct {
	t *testing.T
	m *testMemory
}

func (r reader) u32(b []byte, at uint32) uint32 { return binary.LittleEndian.Uint32(b[at:]) }

func (r reader) string(b []byte, at uint32) string {
	addr, n := r.u32(b, at), r.u32(b, at+4)
	return string(r.m.b[addr : addr+n])
}

// list returns the bytes of each element of the list at b[at:], checking its alignment.
func (r reader) list(b []byte, at uint32, ty abiType) [][]byte {
	addr, n := r.u32(b, at), r.u32(b, at+4)
	if n != 0 && addr%ty.align != 0 {
		r.t.Fatalf("a list of %d-aligned elements at address %d", ty.align, addr)
	}
	elements := make([][]byte, n)
	for i := range elements {
		start := addr + uint32(i)*ty.size
		elements[i] = r.m.b[start : start+ty.size]
	}
	return elements
}

func (r reader) pairs(b []byte, at uint32) [][2]string {
	pair, offsets := record(str, str)
	var kv [][2]string
	for _, e := range r.list(b, at, pair) {
		kv = append(kv, [2]string{r.string(e, offsets[0]), r.string(e, offsets[1])})
	}
	return kv
}

// some returns whether the option at b[at:] is some, and its payload's bytes.
func (r reader) some(b []byte, at uint32, payload abiType) (bool, []byte) {
	ty, payloadAt := variant(payload)
	switch b[at] {
	case 0:
		return false, nil
	case 1:
		return true, b[at+payloadAt : at+ty.size]
	default:
		r.t.Fatalf("option discriminant %d", b[at])
		return false, nil
	}
}

// readGraph reads a lowered job-graph back into a Graph, by the canonical ABI's offsets.
func readGraph(t *testing.T, m *testMemory, b []byte) *Graph {
	r := reader{t, m}
	strategy, strategyAt := record(u64, option(u64))
	kind, kindAt := variant(str)
	inputType, inputAt := record(str, u8, option(str))
	nodeType, nodeAt := record(str, kind, list, option(u32), list, option(strategy))
	_, graphAt := record(str, list, list)

	g := &Graph{name: r.string(b, graphAt[0]), config: r.pairs(b, graphAt[2])}
	for _, e := range r.list(b, graphAt[1], nodeType) {
		n := &Node{graph: g, uid: r.string(e, nodeAt[0]), kind: nodeKind(e[nodeAt[1]])}
		n.name = r.string(e, nodeAt[1]+kindAt)
		for _, in := range r.list(e, nodeAt[2], inputType) {
			i := input{upstream: r.string(in, inputAt[0]), partitioning: Partitioning(in[inputAt[1]])}
			if some, name := r.some(in, inputAt[2], str); some {
				i.sideOutput = r.string(name, 0)
			}
			n.inputs = append(n.inputs, i)
		}
		if some, p := r.some(e, nodeAt[3], u32); some {
			n.parallelism = r.u32(p, 0)
		}
		n.options = r.pairs(e, nodeAt[4])
		if some, w := r.some(e, nodeAt[5], strategy); some {
			n.watermarks = &WatermarkStrategy{MaxOutOfOrdernessMs: binary.LittleEndian.Uint64(w[strategyAt[0]:])}
			if idle, ms := r.some(w, strategyAt[1], u64); idle {
				n.watermarks = ptr(n.watermarks.WithIdleness(binary.LittleEndian.Uint64(ms)))
			}
		}
		g.nodes = append(g.nodes, n)
	}
	return g
}

func ptr[T any](v T) *T { return &v }

func TestGraphLowersAndReadsBack(t *testing.T) {
	g := NewGraph("windowed").Config("pipeline.auto-watermark-interval", "50")
	stamp := g.FileSource("lines", "in.txt").Parallelism(1).
		Operator("stamp", "stamp", Rebalance).
		Watermarks(BoundedOutOfOrderness(500).WithIdleness(2000))
	count := stamp.Operator("count", "count", ByKey).Option("window", "1000").Watermarks(BoundedOutOfOrderness(0))
	count.FileSink("out", "out/", Forward)
	count.SideOutput("late").Operator("late-words", "late-words", Forward).
		Input(stamp, Broadcast).InputFrom(count.SideOutput("more"), ByKey).
		StdoutSink("late-out", Forward)

	m := newTestMemory()
	lowered := lowered{m}.graph(g)
	got := readGraph(t, m, lowered[:])
	for _, n := range g.nodes {
		n.graph = nil
	}
	for _, n := range got.nodes {
		n.graph = nil
	}
	if !reflect.DeepEqual(got, g) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, g)
	}
	if got.nodes[4].inputs[0].sideOutput != "late" || got.nodes[4].inputs[2].sideOutput != "more" ||
		*got.nodes[1].watermarks != (WatermarkStrategy{500, 2000, true}) ||
		*got.nodes[2].watermarks != (WatermarkStrategy{0, 0, false}) || got.nodes[0].watermarks != nil {
		t.Fatalf("nodes %+v", got.nodes)
	}
}
