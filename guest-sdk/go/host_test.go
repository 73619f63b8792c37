package cairn

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sessionCount counts a key's records until 10 ms of event time without one, then emits
// the count at the timer: keyed state, timers, late records to a side output, a counter.
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

// sessionJob registers sessionCount and the counter (which handles no timers), with the
// key groups of keys their first bytes.
func sessionJob(t *testing.T) {
	testJob(t)
	Register(nil,
		Def{Name: "session", StateVersion: 2, New: func(ctx *Context) (Operator, error) {
			return &sessionCount{counts: NewKeyedState(ctx, U64)}, nil
		}},
		Def{Name: "counter", New: func(ctx *Context) (Operator, error) {
			return &counter{counts: NewKeyedState(ctx, U64)}, nil
		}})
}

func openHarness(t *testing.T, name string) *Harness {
	t.Helper()
	h, err := OpenHarness(name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func at(key string, timestamp int64) TestRecord { return TestRecord{Key: key, Timestamp: timestamp} }

func check(t *testing.T, got []TestRecord, err error, want ...TestRecord) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("emitted %v, want %v", got, want)
	}
}

func TestTimersFireInOrderWithTheirKeysState(t *testing.T) {
	sessionJob(t)
	h := openHarness(t, "session")
	out, err := h.Process(at("banana", 7), at("apple", 5), at("apple", 5), at("apple", 12))
	check(t, out, err)
	if h.Timers() != 3 { // apple at 15 and 22, banana at 17
		t.Fatalf("%d timers", h.Timers())
	}
	out, err = h.AdvanceWatermark(16)
	check(t, out, err, TestRecord{"apple", "3", 15})
	// A restore brings back the state, the timers and the watermark.
	h, err = h.Restore()
	if err != nil {
		t.Fatal(err)
	}
	out, err = h.AdvanceWatermark(17)
	check(t, out, err, TestRecord{"banana", "1", 17})
	if n := h.inst.op.(*sessionCount).counts.Len(); n != 0 {
		t.Fatalf("%d keys left after the timers", n)
	}
	// A late record goes to the side output and is counted; apple's timer at 22 fires with
	// the record at 30, its own at 40 finds no state.
	out, err = h.Process(at("cherry", 16), at("apple", 30))
	check(t, out, err)
	out, err = h.Finish()
	check(t, out, err, TestRecord{"apple", "1", 22})
	if got := h.SideOutput("late"); !slices.Equal(got, []TestRecord{at("cherry", 16)}) {
		t.Fatalf("late %v", got)
	}
	if h.Counter("numLateRecordsDropped") != 1 || h.Timers() != 0 {
		t.Fatalf("counter %d, %d timers", h.Counter("numLateRecordsDropped"), h.Timers())
	}
}

func TestTimersReachTheStateOfTheirKeyGroupOnly(t *testing.T) {
	sessionJob(t)
	inst := openCounter(t, 'a', 'z')
	inst.op = &sessionCount{counts: inst.op.(*counter).counts}
	var timers Emitter
	timers.EmitAt([]byte("Apple"), nil, 1) // key group 'A', not this subtask's
	_, err := inst.onTimer(EventTime, timers.take(), []uint16{'A'})
	if err == nil || !strings.Contains(err.Error(), "key group 65 is not this subtask's") {
		t.Fatalf("err %v", err)
	}
}

func TestTimerCallsRefuseWhatBreaksTheContract(t *testing.T) {
	sessionJob(t)
	inst := openCounter(t, 'a', 'z')
	var timers Emitter
	timers.EmitAt([]byte("apple"), nil, 1)
	_, err := inst.onTimer(EventTime, timers.take(), []uint16{'a'})
	if err == nil || !strings.Contains(err.Error(), `operator "counter" does not implement OnTimer`) {
		t.Fatalf("err %v", err)
	}
	inst.op = &sessionCount{counts: inst.op.(*counter).counts}
	timers.EmitAt([]byte("apple"), nil, 1)
	if _, err := inst.onTimer(EventTime, timers.take(), nil); err == nil {
		t.Fatal("timers without key groups accepted")
	}
	timers.Emit([]byte("apple"), nil)
	if _, err := inst.onTimer(EventTime, timers.take(), []uint16{'a'}); err == nil {
		t.Fatal("a timer without a timestamp accepted")
	}
}

func TestNamesOfSideOutputsAndCountersAreChecked(t *testing.T) {
	sessionJob(t)
	h := openHarness(t, "session")
	err := h.call(func() error {
		var e Emitter
		if err := EmitTo("nobody", &e); err != nil {
			t.Errorf("an empty batch: %v", err)
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
		for _, name := range []string{"", "late records", "num.late", strings.Repeat("a", 65), "é"} {
			if err := CounterAdd(name, 1); err == nil {
				t.Errorf("counter %q accepted", name)
			}
		}
		return CounterAdd("numLate_Records2", 2)
	})
	if err != nil || h.Counter("numLate_Records2") != 2 || len(h.host.counters) != 1 {
		t.Fatalf("%v, counters %v", err, h.host.counters)
	}
	if got := h.SideOutput(strings.Repeat("é", 64)); len(got) != 1 {
		t.Fatalf("side output %v", got)
	}
}

func TestWithoutAHostTimersFail(t *testing.T) {
	if err := RegisterTimer(EventTime, []byte("k"), 1); err == nil || !strings.Contains(err.Error(), "InstallHost") {
		t.Fatalf("err %v", err)
	}
	if CurrentWatermark() != NoTimestamp || CurrentProcessingTime() != 0 {
		t.Fatal("clocks without a host")
	}
}
