//go:build !wasip1

package cairn

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"strings"
)

// Harness drives an operator of the registered job natively, as the host would (Flink's
// operator test harnesses): records in by key, the watermark and the clock moved by hand,
// timers fired in order, side outputs and counters kept for the test to read. One subtask
// owns every key group; a key's key group is the host's key-group function's (in native
// tests a stand-in: every key in group 0).
//
//	h, err := cairn.OpenHarness("count", [2]string{"window", "1000"})
//	out, err := h.Process(cairn.TestRecord{Key: "a", Timestamp: 5})
//	out, err = h.AdvanceWatermark(999)
type Harness struct {
	inst *instance
	host *harnessHost
}

// TestRecord is a record as tests write and read them; Timestamp is NoTimestamp for none.
type TestRecord struct {
	Key, Value string
	Timestamp  int64
}

// harnessMaxParallelism is the number of key groups of a harness's job.
const harnessMaxParallelism = 128

// OpenHarness opens operator name of the registered job with node options; no watermark
// yet, the clock at 0.
func OpenHarness(name string, options ...[2]string) (*Harness, error) {
	h := &Harness{host: &harnessHost{
		timers:      map[harnessTimer]bool{},
		watermark:   math.MinInt64,
		sideOutputs: map[string][]TestRecord{},
		counters:    map[string]uint64{},
	}}
	ctx := Context{
		JobID:          strings.Repeat("0", 32),
		OperatorUID:    name,
		Parallelism:    1,
		Options:        options,
		MaxParallelism: harnessMaxParallelism,
		LastKeyGroup:   harnessMaxParallelism - 1,
	}
	err := h.call(func() (err error) {
		h.inst, err = open(ctx, name)
		return err
	})
	return h, err
}

// Process processes records of a by-key input (input 0); it returns what the operator
// emitted.
func (h *Harness) Process(records ...TestRecord) ([]TestRecord, error) {
	var in Emitter
	groups := make([]uint16, len(records))
	for i, r := range records {
		in.EmitAt([]byte(r.Key), []byte(r.Value), r.Timestamp)
		groups[i] = hostKeyGroup([]byte(r.Key))
	}
	return h.emitted(func() (packed, error) { return h.inst.process(0, in.take(), groups) })
}

// AdvanceWatermark moves the watermark to watermark (never back), firing the event-time
// timers it reaches, in order; it returns what they emitted.
func (h *Harness) AdvanceWatermark(watermark int64) ([]TestRecord, error) {
	h.host.watermark = max(h.host.watermark, watermark)
	return h.fire(EventTime, h.host.watermark)
}

// AdvanceProcessingTime moves the clock to now (never back), firing the processing-time
// timers it reaches.
func (h *Harness) AdvanceProcessingTime(now int64) ([]TestRecord, error) {
	h.host.now = max(h.host.now, now)
	return h.fire(ProcessingTime, h.host.now)
}

// Finish is the end of input: the watermark to the end of time, then Finish.
func (h *Harness) Finish() ([]TestRecord, error) {
	out, err := h.AdvanceWatermark(math.MaxInt64)
	if err != nil {
		return out, err
	}
	last, err := h.emitted(h.inst.finish)
	return append(out, last...), err
}

// SideOutput takes the records sent to side output name so far.
func (h *Harness) SideOutput(name string) []TestRecord {
	records := h.host.sideOutputs[name]
	delete(h.host.sideOutputs, name)
	return records
}

// Counter is counter name (0 if never counted).
func (h *Harness) Counter(name string) uint64 { return h.host.counters[name] }

// Timers is how many timers are registered, both domains.
func (h *Harness) Timers() int { return len(h.host.timers) }

// Restore is a new harness of the same operator, restored from this one's state (as a
// checkpoint takes it) and timers, with its watermark and clock.
func (h *Harness) Restore() (*Harness, error) {
	s, err := h.inst.snapshot()
	if err != nil {
		return nil, err
	}
	restored, err := OpenHarness(h.inst.def.Name, h.inst.ctx.Options...)
	if err != nil {
		return nil, err
	}
	restored.host.timers = maps.Clone(h.host.timers)
	restored.host.watermark, restored.host.now = h.host.watermark, h.host.now
	return restored, restored.call(func() error {
		if err := restored.inst.restoreKeyed(s.version, s.keyed); err != nil {
			return err
		}
		return restored.inst.restore(s.version, s.items)
	})
}

// fire fires the timers of domain due at until, round after round (a timer may register
// another one already due), each round in firing order: timestamp, then key.
func (h *Harness) fire(domain TimeDomain, until int64) ([]TestRecord, error) {
	var out []TestRecord
	for {
		var due []harnessTimer
		for t := range h.host.timers {
			if t.domain == domain && t.timestamp <= until {
				due = append(due, t)
			}
		}
		if len(due) == 0 {
			return out, nil
		}
		slices.SortFunc(due, func(a, b harnessTimer) int {
			return cmp.Or(cmp.Compare(a.timestamp, b.timestamp), strings.Compare(a.key, b.key))
		})
		var timers Emitter
		groups := make([]uint16, len(due))
		for i, t := range due {
			delete(h.host.timers, t)
			timers.EmitAt([]byte(t.key), nil, t.timestamp)
			groups[i] = hostKeyGroup([]byte(t.key))
		}
		emitted, err := h.emitted(func() (packed, error) { return h.inst.onTimer(domain, timers.take(), groups) })
		out = append(out, emitted...)
		if err != nil {
			return out, err
		}
	}
}

// emitted makes a call that returns a batch, and returns its records.
func (h *Harness) emitted(f func() (packed, error)) ([]TestRecord, error) {
	var batch packed
	err := h.call(func() (err error) {
		batch, err = f()
		return err
	})
	return testRecords(batch), err
}

// call makes a call with the harness's host installed, as the host lends its own during a
// call.
func (h *Harness) call(f func() error) error {
	before := InstallHost(h.host)
	defer InstallHost(before)
	return f()
}

func testRecords(b packed) []TestRecord {
	records := make([]TestRecord, len(b.offsets)/2)
	for i := range records {
		var r Record
		b.record(i, &r)
		records[i] = TestRecord{string(r.Key), string(r.Value), r.Timestamp}
	}
	return records
}

type harnessTimer struct {
	domain    TimeDomain
	key       string
	timestamp int64
}

// harnessHost is a harness's host: its timers, time, and what the operator sent aside.
type harnessHost struct {
	timers         map[harnessTimer]bool
	watermark, now int64
	sideOutputs    map[string][]TestRecord
	counters       map[string]uint64
}

func (h *harnessHost) RegisterTimer(domain TimeDomain, key []byte, timestamp int64) error {
	h.timers[harnessTimer{domain, string(key), timestamp}] = true
	return nil
}

func (h *harnessHost) DeleteTimer(domain TimeDomain, key []byte, timestamp int64) {
	delete(h.timers, harnessTimer{domain, string(key), timestamp})
}

func (h *harnessHost) CurrentWatermark() int64 { return h.watermark }

func (h *harnessHost) CurrentProcessingTime() int64 { return h.now }

func (h *harnessHost) EmitTo(sideOutput string, records []Record) error {
	for _, r := range records {
		h.sideOutputs[sideOutput] = append(h.sideOutputs[sideOutput], TestRecord{string(r.Key), string(r.Value), r.Timestamp})
	}
	return nil
}

func (h *harnessHost) CounterAdd(name string, delta uint64) error {
	h.counters[name] += delta
	return nil
}
