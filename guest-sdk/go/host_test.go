package cairn

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type timerKey struct {
	domain    TimeDomain
	key       string
	timestamp int64
}

// testHost keeps the timers, side outputs and counters of one subtask.
type testHost struct {
	watermark int64
	timers    map[timerKey]bool
	emitted   map[string][]string // side output: "key@timestamp" records
	counters  map[string]uint64
}

func installTestHost(t *testing.T) *testHost {
	h := &testHost{timers: map[timerKey]bool{}, emitted: map[string][]string{}, counters: map[string]uint64{}}
	before := InstallHost(h)
	t.Cleanup(func() { InstallHost(before) })
	return h
}

func (h *testHost) RegisterTimer(domain TimeDomain, key []byte, timestamp int64) error {
	if len(key) == 0 {
		return errors.New("no key")
	}
	h.timers[timerKey{domain, string(key), timestamp}] = true
	return nil
}

func (h *testHost) DeleteTimer(domain TimeDomain, key []byte, timestamp int64) {
	delete(h.timers, timerKey{domain, string(key), timestamp})
}

func (h *testHost) CurrentWatermark() int64 { return h.watermark }

func (h *testHost) CurrentProcessingTime() int64 { return 1_000_000 }

func (h *testHost) EmitTo(sideOutput string, records []Record) error {
	for _, r := range records {
		h.emitted[sideOutput] = append(h.emitted[sideOutput], string(r.Key)+"@"+strconv.FormatInt(r.Timestamp, 10))
	}
	return nil
}

func (h *testHost) CounterAdd(name string, delta uint64) error {
	h.counters[name] += delta
	return nil
}

// fire fires the due event-time timers as the host does: a batch of records (key, no value,
// the timer's timestamp) in firing order, with their key groups (a key's first byte).
func (h *testHost) fire(t *testing.T, inst *instance) packed {
	t.Helper()
	var due []timerKey
	for k := range h.timers {
		if k.domain == EventTime && k.timestamp <= h.watermark {
			due = append(due, k)
		}
	}
	slices.SortFunc(due, func(a, b timerKey) int {
		if a.timestamp != b.timestamp {
			return int(a.timestamp - b.timestamp)
		}
		return strings.Compare(a.key, b.key)
	})
	var timers Emitter
	var groups []uint16
	for _, k := range due {
		delete(h.timers, k)
		timers.EmitAt([]byte(k.key), nil, k.timestamp)
		groups = append(groups, uint16(k.key[0]))
	}
	out, err := inst.onTimer(EventTime, timers.take(), groups)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sessionCount counts a key's records until a gap of 10 ms in event time, then emits the
// count at the timer (keyed state, timers, late records to a side output, a counter).
type sessionCount struct{ counts *KeyedState[uint64] }

func (s *sessionCount) Process(r *Record, out *Emitter) error {
	if r.Timestamp <= CurrentWatermark() {
		var late Emitter
		late.EmitAt(r.Key, r.Value, r.Timestamp)
		if err := EmitTo("late", &late); err != nil {
			return err
		}
		return CounterAdd("numLateRecordsDropped", 1)
	}
	n, err := s.counts.Entry(r)
	if err != nil {
		return err
	}
	*n++
	return RegisterTimer(EventTime, r.Key, r.Timestamp+10)
}

func (s *sessionCount) OnTimer(t *Timer, out *Emitter) error {
	n, ok, err := s.counts.Get(&t.Record)
	if err != nil || !ok {
		return err
	}
	out.EmitAt(t.Key, strconv.AppendUint(nil, n, 10), t.Timestamp)
	return s.counts.Remove(&t.Record)
}

func openSessionCount(t *testing.T) *instance {
	t.Helper()
	Register(nil,
		Def{Name: "session", New: func(ctx *Context) (Operator, error) {
			return &sessionCount{counts: NewKeyedState(ctx, U64)}, nil
		}},
		Def{Name: "counter", New: func(ctx *Context) (Operator, error) {
			return &counter{counts: NewKeyedState(ctx, U64)}, nil
		}})
	inst, err := open(Context{MaxParallelism: 128, FirstKeyGroup: 'a', LastKeyGroup: 'z'}, "session")
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// feedAt processes keyed records at timestamps, on a by-key input.
func feedAt(t *testing.T, inst *instance, keys []string, timestamps ...int64) {
	t.Helper()
	var in Emitter
	var groups []uint16
	for i, key := range keys {
		in.EmitAt([]byte(key), nil, timestamps[i])
		groups = append(groups, uint16(key[0]))
	}
	if out, err := inst.process(0, in.take(), groups); err != nil || len(out.offsets) != 0 {
		t.Fatalf("emitted %+v, %v", out, err)
	}
}

func records(b packed) []string {
	var got []string
	for i := range len(b.offsets) / 2 {
		var r Record
		b.record(i, &r)
		got = append(got, string(r.Key)+"="+string(r.Value)+"@"+strconv.FormatInt(r.Timestamp, 10))
	}
	return got
}

func TestTimersFireOncePerKeyWithTheKeysState(t *testing.T) {
	h := installTestHost(t)
	inst := openSessionCount(t)
	h.watermark = 0
	feedAt(t, inst, []string{"apple", "banana", "apple", "apple"}, 5, 7, 5, 12)
	if got := len(h.timers); got != 3 { // apple@15, banana@17, apple@22
		t.Fatalf("%d timers: %v", got, h.timers)
	}
	h.watermark = 17
	if got := records(h.fire(t, inst)); !slices.Equal(got, []string{"apple=3@15", "banana=1@17"}) {
		t.Fatalf("fired %v", got)
	}
	if inst.op.(*sessionCount).counts.Len() != 0 {
		t.Fatal("state left after the timers")
	}
	// Late records go to the side output and are counted; apple's timer at 22 fires first
	// and takes the new record, the one at 40 finds no state.
	feedAt(t, inst, []string{"cherry", "apple"}, 16, 30)
	h.watermark = 40
	if got := records(h.fire(t, inst)); !slices.Equal(got, []string{"apple=1@22"}) {
		t.Fatalf("fired %v", got)
	}
	if got := h.emitted["late"]; !slices.Equal(got, []string{"cherry@16"}) || h.counters["numLateRecordsDropped"] != 1 {
		t.Fatalf("late %v, counters %v", got, h.counters)
	}
}

func TestTimersReachTheStateOfTheirKeyGroupOnly(t *testing.T) {
	installTestHost(t)
	inst := openSessionCount(t)
	var timers Emitter
	timers.EmitAt([]byte("Apple"), nil, 1) // key group 'A', not this subtask's
	_, err := inst.onTimer(EventTime, timers.take(), []uint16{'A'})
	if err == nil || !strings.Contains(err.Error(), "key group 65 is not this subtask's") {
		t.Fatalf("err %v", err)
	}
}

func TestTimerCallsRefuseWhatBreaksTheContract(t *testing.T) {
	installTestHost(t)
	inst := openSessionCount(t)
	var timers Emitter
	timers.EmitAt([]byte("apple"), nil, 1)
	if _, err := inst.onTimer(EventTime, timers.take(), nil); err == nil {
		t.Fatal("timers without key groups accepted")
	}
	timers.Emit([]byte("apple"), nil)
	if _, err := inst.onTimer(EventTime, timers.take(), []uint16{'a'}); err == nil {
		t.Fatal("a timer without a timestamp accepted")
	}
	counter, err := open(Context{MaxParallelism: 128, FirstKeyGroup: 'a', LastKeyGroup: 'z'}, "counter")
	if err != nil {
		t.Fatal(err)
	}
	timers.EmitAt([]byte("apple"), nil, 1)
	_, err = counter.onTimer(EventTime, timers.take(), []uint16{'a'})
	if err == nil || !strings.Contains(err.Error(), `operator "counter" does not implement OnTimer`) {
		t.Fatalf("err %v", err)
	}
}

func TestNamesOfSideOutputsAndCountersAreChecked(t *testing.T) {
	h := installTestHost(t)
	var e Emitter
	if err := EmitTo("nobody", &e); err != nil {
		t.Fatalf("an empty batch: %v", err)
	}
	for _, name := range []string{"", strings.Repeat("é", 65)} {
		e.Emit([]byte("k"), nil)
		if err := EmitTo(name, &e); err == nil {
			t.Errorf("side output %q accepted", name)
		}
	}
	e.Emit([]byte("k"), nil)
	if err := EmitTo(strings.Repeat("é", 64), &e); err != nil {
		t.Error(err)
	}
	for _, name := range []string{"", "late records", strings.Repeat("a", 65), "é"} {
		if err := CounterAdd(name, 1); err == nil {
			t.Errorf("counter %q accepted", name)
		}
	}
	if err := CounterAdd("numLate_Records.2", 2); err != nil {
		t.Error(err)
	}
	want := map[string]uint64{"numLate_Records.2": 2}
	if !maps.Equal(h.counters, want) {
		t.Errorf("counters %v", h.counters)
	}
}

func TestWithoutAHostTimersFail(t *testing.T) {
	before := InstallHost(nil)
	t.Cleanup(func() { InstallHost(before) })
	if err := RegisterTimer(EventTime, []byte("k"), 1); err == nil || !strings.Contains(err.Error(), "InstallHost") {
		t.Fatalf("err %v", err)
	}
	if CurrentWatermark() != NoTimestamp || CurrentProcessingTime() != 0 {
		t.Fatal("clocks without a host")
	}
}
