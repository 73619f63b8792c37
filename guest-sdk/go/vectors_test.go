package cairn

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// item is one `vector` or `malformed` item of a golden-vector file (wit/vectors/README.md).
type item struct {
	kind, name string
	lines      [][]string // the item's lines, split into tokens
}

func readVectors(t *testing.T, file string) []item {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "wit", "vectors", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var items []item
	scanner := bufio.NewScanner(f)
	scanner.Buffer(nil, 1<<24)
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tokens := strings.Split(line, " ")
		switch tokens[0] {
		case "vector", "malformed":
			items = append(items, item{kind: tokens[0], name: tokens[1]})
		case "end":
		default:
			last := &items[len(items)-1]
			last.lines = append(last.lines, tokens)
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if len(items) == 0 {
		t.Fatalf("no vectors in %s", file)
	}
	return items
}

func hexBytes(t *testing.T, token string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimPrefix(token, "x"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func numbers[T uint32 | int64](t *testing.T, tokens []string) []T {
	t.Helper()
	var out []T
	for _, token := range tokens {
		n, err := strconv.ParseInt(token, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, T(n))
	}
	return out
}

// the encoding of an item: its data, offsets and timestamps lines.
func encoding(t *testing.T, it item) packed {
	var b packed
	for _, line := range it.lines {
		switch line[0] {
		case "data":
			b.data = hexBytes(t, line[1])
		case "offsets":
			b.offsets = numbers[uint32](t, line[1:])
		case "timestamps":
			b.timestamps = numbers[int64](t, line[1:])
		}
	}
	return b
}

func TestPackedBatchVectors(t *testing.T) {
	for _, it := range readVectors(t, "packed-batch.txt") {
		want := encoding(t, it)
		if it.kind == "malformed" {
			if want.check() == nil {
				t.Errorf("%s: accepted", it.name)
			}
			continue
		}
		// Encoding the records gives exactly the vector's bytes.
		var out Emitter
		var records []Record
		for _, line := range it.lines {
			if line[0] != "record" {
				continue
			}
			r := Record{Value: hexBytes(t, line[2]), Timestamp: NoTimestamp}
			if line[1] != "none" {
				r.Key = hexBytes(t, line[1])
			}
			if line[3] != "none" {
				r.Timestamp = numbers[int64](t, line[3:4])[0]
			}
			records = append(records, r)
			out.EmitAt(r.Key, r.Value, r.Timestamp)
		}
		got := out.take()
		if !bytes.Equal(got.data, want.data) || !slices.Equal(got.offsets, want.offsets) ||
			!slices.Equal(got.timestamps, want.timestamps) {
			t.Errorf("%s: encoded %+v, want %+v", it.name, got, want)
		}
		// Decoding the bytes gives the records back.
		if err := want.check(); err != nil {
			t.Fatalf("%s: %v", it.name, err)
		}
		if len(want.offsets)/2 != len(records) {
			t.Fatalf("%s: %d records decoded, want %d", it.name, len(want.offsets)/2, len(records))
		}
		for i, r := range records {
			var d Record
			want.record(i, &d)
			if !bytes.Equal(d.Key, r.Key) || !bytes.Equal(d.Value, r.Value) || d.Timestamp != r.Timestamp {
				t.Errorf("%s: record %d decoded as %+v, want %+v", it.name, i, d, r)
			}
		}
	}
}

func TestKeyedChunkVectors(t *testing.T) {
	for _, it := range readVectors(t, "keyed-chunk.txt") {
		var chunk []byte
		var entries []byte
		type entry struct {
			key, value string
			tombstone  bool
		}
		var want []entry
		for _, line := range it.lines {
			switch line[0] {
			case "chunk":
				chunk = hexBytes(t, line[1])
			case "entry":
				key := hexBytes(t, line[1])
				if line[2] == "tombstone" {
					entries = appendTombstone(entries, key)
					want = append(want, entry{string(key), "", true})
				} else {
					value := hexBytes(t, line[2])
					entries = appendEntry(entries, string(key), value)
					want = append(want, entry{string(key), string(value), false})
				}
			}
		}
		var got []entry
		err := Chunk{Entries: chunk}.ForEach(func(key, value []byte, tombstone bool) error {
			got = append(got, entry{string(key), string(value), tombstone})
			return nil
		})
		if it.kind == "malformed" {
			if err == nil {
				t.Errorf("%s: accepted", it.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", it.name, err)
		}
		if !bytes.Equal(entries, chunk) {
			t.Errorf("%s: encoded %x, want %x", it.name, entries, chunk)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: decoded %v, want %v", it.name, got, want)
		}
	}
}
