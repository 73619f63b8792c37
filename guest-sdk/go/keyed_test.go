package cairn

import (
	"errors"
	"maps"
	"strconv"
	"strings"
	"testing"
)

// counter counts records per key in keyed state, and its records in operator-wide state.
type counter struct {
	counts *KeyedState[uint64]
	seen   uint64
}

func (c *counter) Process(r *Record, out *Emitter) error {
	n, err := c.counts.Entry(r)
	if err != nil {
		return err
	}
	*n++
	c.seen++
	out.Emit(r.Key, []byte(strconv.FormatUint(*n, 10)))
	return nil
}

func (c *counter) SnapshotState() ([]byte, error) {
	return []byte(strconv.FormatUint(c.seen, 10)), nil
}

func (c *counter) RestoreState(data []byte, version uint32) error {
	n, err := strconv.ParseUint(string(data), 10, 64)
	c.seen += n
	return err
}

// testJob registers the counter, whose key groups are a key's first byte.
func testJob(t *testing.T) {
	Register(nil, Def{Name: "counter", StateVersion: 7, New: func(ctx *Context) (Operator, error) {
		return &counter{counts: NewKeyedState(ctx, U64)}, nil
	}})
	nativeKeyGroup = func(key []byte) uint16 { return uint16(key[0]) }
	t.Cleanup(func() { nativeKeyGroup = func([]byte) uint16 { return 0 } })
}

func openCounter(t *testing.T, first, last uint32) *instance {
	t.Helper()
	inst, err := open(Context{MaxParallelism: 128, FirstKeyGroup: first, LastKeyGroup: last}, "counter")
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// feed processes keys on a by-key input (input 0), their key groups their first bytes.
func feed(t *testing.T, inst *instance, keys ...string) packed {
	t.Helper()
	var in Emitter
	var groups []uint16
	for _, key := range keys {
		in.Emit([]byte(key), nil)
		groups = append(groups, uint16(key[0]))
	}
	out, err := inst.process(0, in.take(), groups)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func counts(inst *instance) map[string]uint64 {
	m := map[string]uint64{}
	for key, n := range inst.op.(*counter).counts.All() {
		m[key] = n
	}
	return m
}

func TestKeyedStateSurvivesSnapshotAndRestore(t *testing.T) {
	testJob(t)
	inst := openCounter(t, 'a', 'c')
	out := feed(t, inst, "apple", "banana", "apple", "cherry", "apple", "cherry")
	if got := string(out.data); got != "apple1banana1apple2cherry1apple3cherry2" {
		t.Fatalf("emitted %q", got)
	}
	s, err := inst.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if s.version != 7 || s.encoding != EncodingU64LE || len(s.keyed) != 3 || len(s.items) != 1 {
		t.Fatalf("snapshot %+v", s)
	}

	restored := openCounter(t, 'a', 'c')
	if err := restored.restoreKeyed(7, s.keyed); err != nil {
		t.Fatal(err)
	}
	if err := restored.restore(7, s.items); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"apple": 3, "banana": 1, "cherry": 2}
	if got := counts(restored); !maps.Equal(got, want) {
		t.Fatalf("restored %v, want %v", got, want)
	}
	if c := restored.op.(*counter); c.seen != 6 || c.counts.Len() != 3 {
		t.Fatalf("seen %d, %d keys", c.seen, c.counts.Len())
	}
	if got := string(feed(t, restored, "banana").data); got != "banana2" {
		t.Fatalf("emitted %q after the restore", got)
	}
}

func TestChunksOfTwoSubtasksRestoreIntoOne(t *testing.T) {
	testJob(t)
	left, right := openCounter(t, 'a', 'b'), openCounter(t, 'c', 'd')
	feed(t, left, "ant", "bee", "ant")
	feed(t, right, "cat", "dog", "dog", "dog")
	var chunks []Chunk
	var items [][]byte
	for _, inst := range []*instance{left, right} {
		s, err := inst.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, s.keyed...)
		items = append(items, s.items...)
	}
	merged := openCounter(t, 'a', 'd')
	if err := merged.restoreKeyed(7, chunks); err != nil {
		t.Fatal(err)
	}
	if err := merged.restore(7, items); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"ant": 2, "bee": 1, "cat": 1, "dog": 3}
	if got := counts(merged); !maps.Equal(got, want) {
		t.Fatalf("merged %v, want %v", got, want)
	}
	if seen := merged.op.(*counter).seen; seen != 7 {
		t.Fatalf("seen %d, want 7", seen)
	}
}

func TestRemoveAndSetKey(t *testing.T) {
	testJob(t)
	inst := openCounter(t, 'a', 'z')
	feed(t, inst, "x", "y", "z")
	s := inst.op.(*counter).counts
	r := Record{Key: []byte("x"), keyGroup: 'x'}
	if err := s.Remove(&r); err != nil {
		t.Fatal(err)
	}
	if err := s.SetKey([]byte("q"), 9); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Get(&r); ok {
		t.Fatal("x is still there")
	}
	want := map[string]uint64{"y": 1, "z": 1, "q": 9}
	if got := counts(inst); !maps.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}

func TestKeyedStateErrors(t *testing.T) {
	testJob(t)
	inst := openCounter(t, 'a', 'b')
	var in Emitter
	in.Emit([]byte("apple"), nil)
	_, err := inst.process(2, in.take(), nil)
	wantError(t, err, "keyed state needs records of a by-key input; this one arrived on input 2, which is not partitioned by key")

	err = inst.op.(*counter).counts.SetKey([]byte("zebra"), 1)
	wantError(t, err, "key group 122 is not this subtask's (it owns 97..99)")

	err = inst.restoreKeyed(6, []Chunk{{KeyGroup: 'a'}})
	wantError(t, err, "the state is in encoding version 6, this operator reads version 7")

	err = inst.restoreKeyed(7, []Chunk{{KeyGroup: 'a', Entries: []byte{5, 'a'}}})
	wantError(t, err, "keyed chunk: malformed entries")

	_, err = open(Context{}, "nothing")
	wantError(t, err, `this job has no operator named "nothing"`)
}

func TestOpenErrorsAndPanicsAreErrors(t *testing.T) {
	Register(nil, Def{Name: "panics", New: func(*Context) (Operator, error) {
		return nil, errors.New("cannot open")
	}})
	_, err := open(Context{}, "panics")
	wantError(t, err, "cannot open")
	wantError(t, panicError("boom"), "panic: boom")
}

func wantError(t *testing.T, err error, prefix string) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("error %v, want %q", err, prefix)
	}
}
