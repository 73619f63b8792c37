// Word count in Go: the same job as the Rust `word-count` — same arguments, graph and
// output (`word<TAB>n` for the n-th occurrence of each word) — and the same `count` state,
// so that Go, Rust and the other languages' word counts resume from each other's
// checkpoints and savepoints, at any parallelism.
//
//	cairn run word-count-go.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]
//
// (`-` as input reads standard input; `-` as output writes to standard output; `--rate`
// paces reading the file.) `kafka://HOST:PORT/TOPIC` as input reads the topic from its
// earliest offset to the end it had when the job first started, then ends, as a file does;
// as output it writes the topic exactly-once. Each output record is keyed by its word (a
// Kafka output topic is keyed by word; files hold the values).
//
// The `count` state is version 3 of word count's shared encodings: keyed state, key the
// word (UTF-8), value its count, u64 little-endian; no operator-wide state. It also reads
// version 2 (operator-wide UTF-8 `word<TAB>count<LF>` lines, what the word counts on
// cairn:job@0.2.0 wrote) and version 4 (keyed, the count in decimal digits, what Rust's
// `word-count-v2` writes), moving their counts into its keyed state; version 1 (Rust's
// postcard, only in very old savepoints) is refused.
package main

import (
	"bytes"
	"errors"
	"strconv"

	"cairn/sdk"
	"cairn/word-count-go/wordcount"
)

func init() {
	cairn.Register(describe,
		cairn.Def{Name: "split", New: func(*cairn.Context) (cairn.Operator, error) { return split{}, nil }},
		cairn.Def{Name: "count", New: newCount, StateVersion: 3},
	)
}

// A component has no main to run: the host calls the job's exports.
func main() {}

func describe(args cairn.Args) (*cairn.Graph, error) {
	g := cairn.NewGraph("word-count")
	lines, err := wordcount.Source(g, "lines", args)
	if err != nil {
		return nil, err
	}
	counts := lines.Operator("split", "split", cairn.Rebalance).Operator("count", "count", cairn.ByKey)
	return g, wordcount.Sink(counts, "out", args)
}

// split: lines to words, keyed by the word.
type split struct{}

func (split) Process(line *cairn.Record, out *cairn.Emitter) error {
	for rest := line.Value; ; {
		word, after, found := wordcount.NextWord(rest)
		if !found {
			return nil
		}
		out.Emit(word, nil)
		rest = after
	}
}

// count: a counter per word in keyed state, emitting the running count.
type count struct {
	counts *cairn.KeyedState[uint64]
	line   []byte
	// Counts migrated from an older encoding, and from which: logged once restored.
	migrated     int
	migratedFrom uint32
}

func newCount(ctx *cairn.Context) (cairn.Operator, error) {
	return &count{counts: cairn.NewKeyedState(ctx, cairn.U64)}, nil
}

func (c *count) Process(r *cairn.Record, out *cairn.Emitter) error {
	n, err := c.counts.Entry(r)
	if err != nil {
		return err
	}
	*n++
	c.line = strconv.AppendUint(append(append(c.line[:0], r.Key...), '\t'), *n, 10)
	out.Emit(r.Key, c.line)
	return nil
}

// RestoreKeyed: version 3 is this count's own; version 4's decimal counts move in one by one.
func (c *count) RestoreKeyed(chunk cairn.Chunk, version uint32) error {
	switch version {
	case 3:
		return c.counts.Restore(chunk)
	case 4:
		n, err := c.counts.RestoreWith(chunk, func(digits []byte) (uint64, error) {
			return parseCount(digits, 4)
		})
		c.migrate(n, 4)
		return err
	}
	return unknownVersion(version)
}

// RestoreState: version 2, operator-wide `word<TAB>count<LF>` lines, each word moved into
// keyed state.
func (c *count) RestoreState(data []byte, version uint32) error {
	if version != 2 {
		return unknownVersion(version)
	}
	for lineNo := 1; len(data) > 0; lineNo++ {
		line, rest, _ := bytes.Cut(data, []byte{'\n'})
		data = rest
		word, digits, ok := bytes.Cut(line, []byte{'\t'})
		if !ok {
			return errors.New("version 2 state: line " + strconv.Itoa(lineNo) + " is not word<TAB>count")
		}
		n, err := parseCount(digits, 2)
		if err != nil {
			return err
		}
		if err := c.counts.SetKey(word, n); err != nil {
			return err
		}
		c.migrate(1, 2)
	}
	return nil
}

func (c *count) migrate(n int, version uint32) {
	c.migrated += n
	c.migratedFrom = version
}

// Open runs after a restore: it reports a migration.
func (c *count) Open(*cairn.Context) error {
	if c.migrated != 0 {
		cairn.Info("migrated " + strconv.Itoa(c.migrated) + " word counts from state version " +
			strconv.FormatUint(uint64(c.migratedFrom), 10))
	}
	c.migrated = 0
	return nil
}

// parseCount reads a count in decimal digits, as versions 2 and 4 write it.
func parseCount(digits []byte, version uint32) (uint64, error) {
	n, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0, errors.New("version " + strconv.FormatUint(uint64(version), 10) + " state: a count is not a number")
	}
	return n, nil
}

func unknownVersion(version uint32) error {
	return errors.New("unknown state version " + strconv.FormatUint(uint64(version), 10) +
		": this count reads versions 2, 3 and 4")
}
