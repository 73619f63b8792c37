// Windowed word count in Go: the twin of Rust's `windowed-count`, the event-time oracle job
// — same arguments, graph and output.
//
//	cairn run windowed-count-go.wasm -p 4 -- --input events.txt --output out/ \
//	    --window 1000 --max-delay 500 [--rate LINES_PER_S] [--allowed-lateness MS] \
//	    [--late-output DIR] [--idleness MS] [--also-stdin]
//
// Input lines are `<epoch-ms><TAB><text>`; each word of the text (split on whitespace as
// word-count-go splits it) takes the line's timestamp as its event time; a malformed line is
// skipped and counted in `numMalformedLines`. Watermarks trail the highest timestamp by
// `--max-delay` (Flink's bounded out-of-orderness). Each tumbling window of `--window` ms
// (starting at `ts - ts mod window`) emits one record per word, keyed by it, value
// `<window-start><TAB><word><TAB><count>`, stamped with the window's last millisecond, once
// the watermark passes its end; the file sink writes them exactly-once. A record behind the
// watermark by more than `--allowed-lateness` (default 0) when it arrives is late: dropped
// and counted in `numLateRecordsDropped`, or with `--late-output DIR` written there as
// `<timestamp><TAB><word>`. `--input` and `--output` take what word-count-go's take (a file,
// `-`, `kafka://…`).
//
// `--idleness MS` marks a stamping subtask idle after MS without records (Flink's
// `withIdleness`), so that it stops holding event time back; `--also-stdin` adds standard
// input as a second source of lines (which stays idle while nothing is written to it).
//
// The windows are built on the SDK's keyed state and event-time timers (window.go).
package main

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"cairn/sdk"
	"cairn/word-count-go/wordcount"
)

// malformedLines counts the input lines that are not `<epoch-ms><TAB><text>`.
const malformedLines = "numMalformedLines"

// late is the window counts' side output of late records.
const late = "late"

func init() {
	cairn.Register(describe,
		cairn.Def{Name: "stamp", New: func(*cairn.Context) (cairn.Operator, error) { return stamp{}, nil }},
		cairn.Def{Name: "count", New: newCount, StateVersion: countStateVersion},
		cairn.Def{Name: "late-words", New: func(*cairn.Context) (cairn.Operator, error) { return lateWords{}, nil }},
	)
}

// A component has no main to run: the host calls the job's exports.
func main() {}

func describe(args cairn.Args) (*cairn.Graph, error) {
	window, err := msArg(args, "--window", 1000)
	if err != nil {
		return nil, err
	}
	if window == 0 {
		return nil, errors.New("--window: a window's size must be 1 ms or more, not 0")
	}
	maxDelay, err := msArg(args, "--max-delay", 0)
	if err != nil {
		return nil, err
	}
	strategy := cairn.BoundedOutOfOrderness(maxDelay)
	if _, idle := args.Value("--idleness"); idle {
		ms, err := msArg(args, "--idleness", 0)
		if err != nil {
			return nil, err
		}
		strategy = strategy.WithIdleness(ms)
	}
	lateness, err := msArg(args, "--allowed-lateness", 0)
	if err != nil {
		return nil, err
	}
	lateOutput, sendLate := args.Value("--late-output")
	alsoStdin := flag(args, "--also-stdin")

	g := cairn.NewGraph("windowed-count")
	lines, err := wordcount.Source(g, "lines", args)
	if err != nil {
		return nil, err
	}
	stamped := lines.Operator("stamp", "stamp", cairn.Rebalance).Watermarks(strategy)
	count := stamped.Operator("count", "count", cairn.ByKey).
		Option("window", strconv.FormatUint(window, 10)).
		Option("allowed-lateness", strconv.FormatUint(lateness, 10))
	if sendLate {
		count.Option("late-output", late)
	}
	if err := wordcount.Sink(count, "out", args); err != nil {
		return nil, err
	}
	if alsoStdin {
		more := g.StdinSource("more-lines").Parallelism(1).
			Operator("stamp-more", "stamp", cairn.Rebalance).Watermarks(strategy)
		count.Input(more, cairn.ByKey)
	}
	if sendLate {
		count.SideOutput(late).
			Operator("late-words", "late-words", cairn.Forward).
			FileSink("late-out", lateOutput, cairn.Forward)
	}
	return g, nil
}

// msArg is the value of argument name, a number of milliseconds, or byDefault.
func msArg(args cairn.Args, name string, byDefault uint64) (uint64, error) {
	value, ok := args.Value(name)
	if !ok {
		return byDefault, nil
	}
	ms, err := strconv.ParseUint(value, 10, 64)
	if err != nil {
		return 0, errors.New(name + " " + value + ": not a number of ms")
	}
	return ms, nil
}

// flag says whether argument name is given, without a value.
func flag(args cairn.Args, name string) bool {
	for _, arg := range args {
		if arg == name {
			return true
		}
	}
	return false
}

// stamp parses `<epoch-ms><TAB><text>` lines into their words, keyed by the word, each with
// the line's timestamp.
type stamp struct{}

func (stamp) Process(line *cairn.Record, out *cairn.Emitter) error {
	if !utf8.Valid(line.Value) {
		return errors.New("a line is not UTF-8")
	}
	ms, text, found := bytes.Cut(line.Value, []byte{'\t'})
	timestamp, err := strconv.ParseInt(strings.TrimFunc(string(ms), unicode.IsSpace), 10, 64)
	if !found || err != nil {
		return cairn.CounterAdd(malformedLines, 1)
	}
	for rest := text; ; {
		word, after, found := wordcount.NextWord(rest)
		if !found {
			return nil
		}
		out.EmitAt(word, nil, timestamp)
		rest = after
	}
}

// lateWords writes late words as `<timestamp><TAB><word>`, keyed by the word.
type lateWords struct{}

func (lateWords) Process(r *cairn.Record, out *cairn.Emitter) error {
	timestamp := r.Timestamp
	if timestamp == cairn.NoTimestamp {
		timestamp = 0
	}
	value := strconv.AppendInt(nil, timestamp, 10)
	value = append(append(value, '\t'), r.Key...)
	out.Emit(r.Key, value)
	return nil
}
