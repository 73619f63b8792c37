package main

import (
	"errors"
	"math"
	"slices"
	"strconv"

	"cairn/sdk"
)

// Tumbling windows of event time counting each word, on keyed state and event-time timers,
// by the rules of Flink's WindowOperator with its EventTimeTrigger (as Rust's window
// operator, cairn_sdk::window):
//
//   - A record at ts is in the window [ts - ts mod size, + size) (Euclidean mod), whose
//     count per word is kept in keyed state; never the records.
//   - A window fires (its count is emitted, stamped with its last millisecond, max) when the
//     watermark reaches max, by an event-time timer of the word at max; one whose max the
//     watermark has passed already fires at once, never by a timer (it would fire twice).
//   - With allowed lateness, a window's state is kept until the watermark reaches max +
//     allowed lateness (a second timer, the cleanup), and each record arriving until then
//     fires it again with the updated count. Then its state is freed, and a word left with
//     no window loses its keyed state entirely.
//   - A record whose window is past that is late: dropped and counted in
//     numLateRecordsDropped, or sent to the side output of the late-output option.

// lateRecordsDropped is Flink's metric of records dropped for being late.
const lateRecordsDropped = "numLateRecordsDropped"

// countStateVersion is the version of the count's keyed state: per word, its open windows
// and their counts (panes, in postcard's encoding as Rust's window operator writes it).
const countStateVersion = 1

// window is a window of event time: start included, end excluded, in milliseconds.
type window struct{ start, end int64 }

// max is the window's last millisecond: when it fires, and its results' timestamp.
func (w window) max() int64 { return w.end - 1 }

// pane is a window of a word and its count.
type pane struct {
	window window
	count  uint64
}

// count counts words per tumbling window.
type count struct {
	size, allowedLateness int64
	lateOutput            string // "": late records are dropped and counted
	panes                 *cairn.KeyedState[[]pane]
	value                 []byte // the value being emitted, reused
}

func newCount(ctx *cairn.Context) (cairn.Operator, error) {
	size, err := msOption(ctx, "window")
	if err != nil {
		return nil, err
	}
	if size <= 0 {
		return nil, errors.New("option window: a window's size must be 1 ms or more, not " + strconv.FormatInt(size, 10))
	}
	lateness, err := msOption(ctx, "allowed-lateness")
	if err != nil {
		return nil, err
	}
	lateOutput, _ := ctx.Option("late-output")
	return &count{
		size:            size,
		allowedLateness: lateness,
		lateOutput:      lateOutput,
		panes:           cairn.NewKeyedState(ctx, panesCodec),
	}, nil
}

// msOption is node option name, a number of milliseconds (none: 0).
func msOption(ctx *cairn.Context, name string) (int64, error) {
	value, ok := ctx.Option(name)
	if !ok {
		return 0, nil
	}
	ms, err := strconv.ParseUint(value, 10, 64)
	if err != nil {
		return 0, errors.New("option " + name + ": " + strconv.Quote(value) + " is not a number of ms")
	}
	return int64(min(ms, math.MaxInt64)), nil
}

// assign is the window of a record at timestamp (one reaching below the smallest timestamp
// starts there).
func (c *count) assign(timestamp int64) window {
	start := saturatingSub(timestamp, euclideanMod(timestamp, c.size))
	return window{start, saturatingAdd(start, c.size)}
}

// cleanup is when the state of w is freed: its last millisecond plus the allowed lateness.
func (c *count) cleanup(w window) int64 { return saturatingAdd(w.max(), c.allowedLateness) }

func (c *count) Process(r *cairn.Record, out *cairn.Emitter) error {
	if r.Timestamp == cairn.NoTimestamp {
		return errors.New("a record without a timestamp reached an event-time window: give its source a " +
			"timestamp per record (and a watermark strategy)")
	}
	watermark := cairn.CurrentWatermark()
	w := c.assign(r.Timestamp)
	if c.cleanup(w) <= watermark {
		return c.late(r)
	}
	panes, err := c.panes.Entry(r)
	if err != nil {
		return err
	}
	i, found := findPane(*panes, w)
	if !found {
		*panes = slices.Insert(*panes, i, pane{window: w})
		if err := c.register(r.Key, w, watermark); err != nil {
			return err
		}
	}
	p := &(*panes)[i]
	p.count++
	if w.max() <= watermark {
		// Within the allowed lateness of a window that fired: fire it again.
		c.fire(r.Key, *p, out)
	}
	return nil
}

// register sets the timers of a new window of key at watermark: when it fires (unless the
// watermark is past that: it fires at once) and when its state goes.
func (c *count) register(key []byte, w window, watermark int64) error {
	fire, cleanup := w.max(), c.cleanup(w)
	if fire > watermark {
		if err := cairn.RegisterTimer(cairn.EventTime, key, fire); err != nil {
			return err
		}
	}
	if cleanup != fire {
		return cairn.RegisterTimer(cairn.EventTime, key, cleanup)
	}
	return nil
}

// late drops a record behind its window and counts it, or sends it to the late output.
func (c *count) late(r *cairn.Record) error {
	if c.lateOutput == "" {
		return cairn.CounterAdd(lateRecordsDropped, 1)
	}
	var records cairn.Emitter
	records.EmitAt(r.Key, r.Value, r.Timestamp)
	return cairn.EmitTo(c.lateOutput, &records)
}

// fire emits a pane's count: `<window-start><TAB><word><TAB><count>`, keyed by the word.
func (c *count) fire(word []byte, p pane, out *cairn.Emitter) {
	c.value = strconv.AppendInt(c.value[:0], p.window.start, 10)
	c.value = append(append(append(c.value, '\t'), word...), '\t')
	c.value = strconv.AppendUint(c.value, p.count, 10)
	out.EmitAt(word, c.value, p.window.max())
}

// OnTimer fires the word's windows that end at the timer, and frees those whose allowed
// lateness ends there.
func (c *count) OnTimer(t *cairn.Timer, out *cairn.Emitter) error {
	if t.Domain != cairn.EventTime {
		return nil
	}
	panes, found, err := c.panes.Get(&t.Record)
	if err != nil || !found {
		return err
	}
	kept := panes[:0]
	for _, p := range panes {
		if p.window.max() == t.Timestamp {
			c.fire(t.Key, p, out)
		}
		if c.cleanup(p.window) > t.Timestamp {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		return c.panes.Remove(&t.Record)
	}
	return c.panes.Set(&t.Record, kept)
}

// findPane is where window w is in panes (ordered by window), or would be.
func findPane(panes []pane, w window) (int, bool) {
	lo, hi := 0, len(panes)
	for lo < hi {
		mid := (lo + hi) / 2
		if less(panes[mid].window, w) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(panes) && panes[lo].window == w
}

func less(a, b window) bool { return a.start < b.start || a.start == b.start && a.end < b.end }

func euclideanMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// saturatingAdd is a + b for b >= 0, at most math.MaxInt64.
func saturatingAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// saturatingSub is a - b for b >= 0, at least math.MinInt64.
func saturatingSub(a, b int64) int64 {
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}
