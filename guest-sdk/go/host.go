package cairn

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// What an operator asks of the host during its calls (Process, OnTimer, Finish): timers per
// key (Flink's TimerService), the clocks, side outputs (Flink's OutputTag) and counters of
// its own. In a component these are the host's cairn:job@0.4.0 imports (abi_wasm.go);
// natively, the Host that InstallHost installed (host_native.go).

// TimeDomain is the clock a timer follows (Flink's TimeDomain).
type TimeDomain uint8

const (
	// EventTime is the operator's input watermark.
	EventTime TimeDomain = iota
	// ProcessingTime is the wall clock, in milliseconds since the Unix epoch.
	ProcessingTime
)

func (d TimeDomain) String() string {
	switch d {
	case EventTime:
		return "event time"
	case ProcessingTime:
		return "processing time"
	default:
		return "time domain " + strconv.Itoa(int(d))
	}
}

// RegisterTimer registers a timer for key at timestamp (ms) in domain: the operator's OnTimer
// gets it once the watermark (event time) or the clock (processing time) reaches it. Once
// per key, domain and timestamp, however often it is registered. key must be the key of a
// record this subtask got from a by-key input (or of a timer it fired).
func RegisterTimer(domain TimeDomain, key []byte, timestamp int64) error {
	return hostRegisterTimer(domain, key, timestamp)
}

// DeleteTimer deletes the timer of key at timestamp in domain, if there is one.
func DeleteTimer(domain TimeDomain, key []byte, timestamp int64) {
	hostDeleteTimer(domain, key, timestamp)
}

// CurrentWatermark is the operator's input watermark (ms): math.MinInt64 before the first
// (and outside Process, OnTimer and Finish), math.MaxInt64 once every input has ended. It
// moves only between calls.
func CurrentWatermark() int64 { return hostCurrentWatermark() }

// CurrentProcessingTime is the wall clock, in milliseconds since the Unix epoch.
func CurrentProcessingTime() int64 { return hostCurrentProcessingTime() }

// EmitTo emits the records of records to side output sideOutput (Flink's OutputTag; read
// in the graph with Node.SideOutput), and empties it. Names are 1 to 64 characters.
func EmitTo(sideOutput string, records *Emitter) error {
	batch := records.take()
	if len(batch.offsets) == 0 {
		return nil
	}
	if sideOutput == "" || utf8.RuneCountInString(sideOutput) > 64 {
		return errors.New("a side output's name has 1 to 64 characters, not " + strconv.Quote(sideOutput))
	}
	return hostEmit(sideOutput, batch)
}

// CounterAdd adds delta to this subtask's counter name (in /metrics and Flink's vertex
// metrics; for example "numLateRecordsDropped"). Names are 1 to 64 ASCII letters, digits or
// '_'.
func CounterAdd(name string, delta uint64) error {
	if !counterName(name) {
		return errors.New("a counter's name has 1 to 64 ASCII letters, digits or '_', not " + strconv.Quote(name))
	}
	return hostCounterAdd(name, delta)
}

func counterName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
