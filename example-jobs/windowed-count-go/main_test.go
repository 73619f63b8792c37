package main

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"cairn/sdk"
)

func openCount(t *testing.T, window, lateness string, options ...[2]string) *cairn.Harness {
	t.Helper()
	options = append(options, [2]string{"window", window}, [2]string{"allowed-lateness", lateness})
	h, err := cairn.OpenHarness("count", options...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func word(w string, timestamp int64) cairn.TestRecord {
	return cairn.TestRecord{Key: w, Timestamp: timestamp}
}

func fired(w string, value string, timestamp int64) cairn.TestRecord {
	return cairn.TestRecord{Key: w, Value: value, Timestamp: timestamp}
}

func check(t *testing.T, got []cairn.TestRecord, err error, want ...cairn.TestRecord) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("emitted %v, want %v", got, want)
	}
}

func TestTumblingWindowsFireAtTheirLastMillisecond(t *testing.T) {
	h := openCount(t, "1000", "0")
	out, err := h.Process(word("a", 5), word("b", 999), word("a", 1000), word("a", -1), word("a", 7))
	check(t, out, err)
	out, err = h.AdvanceWatermark(998)
	check(t, out, err, fired("a", "-1000\ta\t1", -1))
	out, err = h.AdvanceWatermark(999)
	check(t, out, err, fired("a", "0\ta\t2", 999), fired("b", "0\tb\t1", 999))
	out, err = h.Finish()
	check(t, out, err, fired("a", "1000\ta\t1", 1999))
	if h.Timers() != 0 {
		t.Fatalf("%d timers left", h.Timers())
	}
}

func TestAWindowReachingBelowTheSmallestTimestampStartsThere(t *testing.T) {
	h := openCount(t, "1000", "0")
	out, err := h.Process(word("a", math.MinInt64+1))
	check(t, out, err)
	out, err = h.AdvanceWatermark(math.MinInt64 + 999)
	check(t, out, err, fired("a", "-9223372036854775808\ta\t1", math.MinInt64+999))
	if _, err := h.Process(word("a", cairn.NoTimestamp)); err == nil {
		t.Fatal("a record without a timestamp accepted")
	}
}

func TestLateRecordsAreDroppedAndCounted(t *testing.T) {
	h := openCount(t, "1000", "0")
	out, err := h.AdvanceWatermark(1500)
	check(t, out, err)
	// The window [0, 1000) is past; [1000, 2000) is not, though 1200 is behind the watermark.
	out, err = h.Process(word("a", 999), word("a", 1200), word("b", -5))
	check(t, out, err)
	if got := h.Counter(lateRecordsDropped); got != 2 {
		t.Fatalf("%d late records", got)
	}
	out, err = h.AdvanceWatermark(1999)
	check(t, out, err, fired("a", "1000\ta\t1", 1999))
}

func TestLateRecordsGoToTheLateOutput(t *testing.T) {
	h := openCount(t, "1000", "0", [2]string{"late-output", late})
	h.AdvanceWatermark(5000)
	out, err := h.Process(cairn.TestRecord{Key: "a", Value: "", Timestamp: 10})
	check(t, out, err)
	if got := h.SideOutput(late); !slices.Equal(got, []cairn.TestRecord{word("a", 10)}) || h.Counter(lateRecordsDropped) != 0 {
		t.Fatalf("late %v, counted %d", got, h.Counter(lateRecordsDropped))
	}
}

func TestAllowedLatenessFiresAgainThenFreesTheState(t *testing.T) {
	h := openCount(t, "1000", "500")
	out, err := h.Process(word("a", 100), word("a", 1100))
	check(t, out, err)
	out, err = h.AdvanceWatermark(999)
	check(t, out, err, fired("a", "0\ta\t1", 999))
	// Within the allowed lateness: the window fires again at once, never by a timer again.
	out, err = h.Process(word("a", 200))
	check(t, out, err, fired("a", "0\ta\t2", 999))
	out, err = h.AdvanceWatermark(1499)
	check(t, out, err)
	out, err = h.Process(word("a", 300))
	check(t, out, err)
	if h.Counter(lateRecordsDropped) != 1 {
		t.Fatalf("%d late records", h.Counter(lateRecordsDropped))
	}
	// The word keeps the window [1000, 2000) alone, restored from a checkpoint.
	h, err = h.Restore()
	if err != nil {
		t.Fatal(err)
	}
	out, err = h.AdvanceWatermark(1999)
	check(t, out, err, fired("a", "1000\ta\t1", 1999))
	out, err = h.AdvanceWatermark(2499)
	check(t, out, err)
	if h.Timers() != 0 {
		t.Fatalf("%d timers left", h.Timers())
	}
	s, err := h.Restore()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := s.Finish(); err != nil || len(out) != 0 {
		t.Fatalf("state left: %v, %v", out, err)
	}
}

func TestAWindowPastTheWatermarkNeverGetsAFireTimer(t *testing.T) {
	h := openCount(t, "1000", "5000")
	h.AdvanceWatermark(2000)
	out, err := h.Process(word("a", 10))
	check(t, out, err, fired("a", "0\ta\t1", 999))
	if h.Timers() != 1 { // the cleanup at 5999 only
		t.Fatalf("%d timers", h.Timers())
	}
	out, err = h.Finish()
	check(t, out, err)
}

func TestPanesAreEncodedAsRustsWindowOperatorEncodesThem(t *testing.T) {
	panes := []pane{{window{-1000, 0}, 3}, {window{1000, 2000}, 300}}
	// postcard: len 2; zigzag(-1000) = 1999, zigzag(0) = 0, 3; 2000, 4000, 300.
	want := []byte{2, 0xcf, 0x0f, 0, 3, 0xd0, 0x0f, 0xa0, 0x1f, 0xac, 0x02}
	got := panesCodec.Append(nil, panes)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded %x, want %x", got, want)
	}
	decoded, err := panesCodec.Decode(got)
	if err != nil || !slices.Equal(decoded, panes) {
		t.Fatalf("decoded %v, %v", decoded, err)
	}
	for _, bad := range [][]byte{{}, {1}, {1, 0, 0}, {1, 0, 0, 0, 0}, {0xff}} {
		if _, err := panesCodec.Decode(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

func TestStampParsesLinesAndCountsMalformedOnes(t *testing.T) {
	h, err := cairn.OpenHarness("stamp")
	if err != nil {
		t.Fatal(err)
	}
	lines := []cairn.TestRecord{
		{Value: " 1500 \thello  wörld\u00a0x"},
		{Value: "-3\tneg"},
		{Value: "no tab"},
		{Value: "12x\tbad"},
		{Value: "7\t"},
	}
	out, err := h.Process(lines...)
	check(t, out, err, word("hello", 1500), word("wörld", 1500), word("x", 1500), word("neg", -3))
	if h.Counter(malformedLines) != 2 {
		t.Fatalf("%d malformed", h.Counter(malformedLines))
	}
	if _, err := h.Process(cairn.TestRecord{Value: "1\t\xff"}); err == nil {
		t.Fatal("a line not UTF-8 accepted")
	}
}

func TestLateWordsAreTimestampAndWord(t *testing.T) {
	h, err := cairn.OpenHarness("late-words")
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Process(word("a", 42), word("b", cairn.NoTimestamp))
	check(t, out, err, fired("a", "42\ta", cairn.NoTimestamp), fired("b", "0\tb", cairn.NoTimestamp))
}

func TestDescribe(t *testing.T) {
	if _, err := describe(cairn.Args{"--output", "-"}); err == nil || err.Error() != "missing required argument --input" {
		t.Fatalf("error %v", err)
	}
	for _, args := range [][]string{{"--window", "0"}, {"--window", "x"}, {"--max-delay", "-1"}, {"--idleness", "s"}} {
		if _, err := describe(append(cairn.Args{"--input", "in", "--output", "out"}, args...)); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := describe(cairn.Args{"--input", "in", "--output", "out", "--rate", "5", "--max-delay", "500",
		"--idleness", "300", "--late-output", "late/", "--also-stdin", "--allowed-lateness", "20"}); err != nil {
		t.Fatal(err)
	}
}
