package main

import (
	"encoding/binary"
	"testing"

	"cairn/sdk"
)

func newTestCount(t *testing.T) *count {
	t.Helper()
	op, err := newCount(&cairn.Context{MaxParallelism: 1, FirstKeyGroup: 0, LastKeyGroup: 0})
	if err != nil {
		t.Fatal(err)
	}
	return op.(*count)
}

func countsOf(c *count) map[string]uint64 {
	m := map[string]uint64{}
	for word, n := range c.counts.All() {
		m[word] = n
	}
	return m
}

func entry(chunk []byte, key, value string) []byte {
	chunk = append(chunk, byte(len(key)))
	chunk = append(chunk, key...)
	chunk = append(chunk, byte(len(value)+1))
	return append(chunk, value...)
}

func TestRestoresVersion3(t *testing.T) {
	var chunk []byte
	chunk = entry(chunk, "hello", string(binary.LittleEndian.AppendUint64(nil, 42)))
	c := newTestCount(t)
	if err := c.RestoreKeyed(cairn.Chunk{Entries: chunk}, 3); err != nil {
		t.Fatal(err)
	}
	if got := countsOf(c); got["hello"] != 42 || len(got) != 1 {
		t.Fatalf("%v", got)
	}
}

func TestMigratesVersion4(t *testing.T) {
	chunk := entry(entry(nil, "hello", "42"), "world", "7")
	c := newTestCount(t)
	if err := c.RestoreKeyed(cairn.Chunk{Entries: chunk}, 4); err != nil {
		t.Fatal(err)
	}
	if got := countsOf(c); got["hello"] != 42 || got["world"] != 7 || len(got) != 2 {
		t.Fatalf("%v", got)
	}
	if c.migrated != 2 || c.migratedFrom != 4 {
		t.Fatalf("migrated %d from %d", c.migrated, c.migratedFrom)
	}
	if err := c.RestoreKeyed(cairn.Chunk{Entries: entry(nil, "bad", "4x")}, 4); err == nil ||
		err.Error() != "version 4 state: a count is not a number" {
		t.Fatalf("error %v", err)
	}
}

func TestMigratesVersion2(t *testing.T) {
	c := newTestCount(t)
	if err := c.RestoreState([]byte("hello\t42\nnaïve\t3\n"), 2); err != nil {
		t.Fatal(err)
	}
	if got := countsOf(c); got["hello"] != 42 || got["naïve"] != 3 || len(got) != 2 {
		t.Fatalf("%v", got)
	}
	if c.migrated != 2 || c.migratedFrom != 2 {
		t.Fatalf("migrated %d from %d", c.migrated, c.migratedFrom)
	}
	if err := c.RestoreState([]byte("hello 42\n"), 2); err == nil ||
		err.Error() != "version 2 state: line 1 is not word<TAB>count" {
		t.Fatalf("error %v", err)
	}
}

func TestRefusesVersion1(t *testing.T) {
	c := newTestCount(t)
	want := "unknown state version 1: this count reads versions 2, 3 and 4"
	if err := c.RestoreState([]byte("x"), 1); err == nil || err.Error() != want {
		t.Fatalf("error %v", err)
	}
	if err := c.RestoreKeyed(cairn.Chunk{}, 1); err == nil || err.Error() != want {
		t.Fatalf("error %v", err)
	}
}

func TestDescribe(t *testing.T) {
	if _, err := describe(cairn.Args{"--output", "-"}); err == nil ||
		err.Error() != "missing required argument --input" {
		t.Fatalf("error %v", err)
	}
	if _, err := describe(cairn.Args{"--input", "-", "--output=out"}); err != nil {
		t.Fatal(err)
	}
	if _, err := describe(cairn.Args{"--input", "kafka://h:9092/lines", "--output=kafka://a:1,b:2/counts"}); err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{"kafka://host:9092", "kafka://host:9092/", "kafka:///t", "kafka://h:1/t/u"} {
		for _, arg := range [][2]string{{"--input", "--output"}, {"--output", "--input"}} {
			want := "invalid " + arg[0] + " " + url + ": expected kafka://HOST:PORT/TOPIC"
			if _, err := describe(cairn.Args{arg[0], url, arg[1], "-"}); err == nil || err.Error() != want {
				t.Errorf("%s %s: error %v", arg[0], url, err)
			}
		}
	}
	want := "--rate paces a file input; it does not apply to kafka://h:1/t"
	if _, err := describe(cairn.Args{"--input", "kafka://h:1/t", "--rate", "5", "--output", "-"}); err == nil ||
		err.Error() != want {
		t.Fatalf("error %v", err)
	}
}
