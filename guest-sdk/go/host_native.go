//go:build !wasip1

package cairn

import (
	"errors"
	"math"
)

// Outside WebAssembly (unit tests, of the SDK and of jobs) there is no host: the log and the
// key groups are stand-ins that the SDK's tests set, and the timers, clocks, side outputs
// and counters are those of the Host installed with InstallHost.
var (
	nativeLog      = func(Level, string) {}
	nativeKeyGroup = func([]byte) uint16 { return 0 }
	nativeHost     Host
)

func hostLog(level Level, message string) { nativeLog(level, message) }

func hostKeyGroup(key []byte) uint16 { return nativeKeyGroup(key) }

// Host is the host's side of RegisterTimer and the other calls, to drive operators compiled
// natively.
type Host interface {
	RegisterTimer(domain TimeDomain, key []byte, timestamp int64) error
	DeleteTimer(domain TimeDomain, key []byte, timestamp int64)
	CurrentWatermark() int64
	CurrentProcessingTime() int64
	// EmitTo receives the records emitted to a side output (the host may keep them).
	EmitTo(sideOutput string, records []Record) error
	CounterAdd(name string, delta uint64) error
}

// InstallHost makes host the host of operators run natively (nil: none), and returns the one
// before. Without one, the calls fail, and the clocks say that no time has passed.
func InstallHost(host Host) Host {
	before := nativeHost
	nativeHost = host
	return before
}

var errNoHost = errors.New("no host: timers, side outputs and counters need one (cairn runs the job as a " +
	"component; natively, cairn.InstallHost)")

func hostRegisterTimer(domain TimeDomain, key []byte, timestamp int64) error {
	if nativeHost == nil {
		return errNoHost
	}
	return nativeHost.RegisterTimer(domain, key, timestamp)
}

func hostDeleteTimer(domain TimeDomain, key []byte, timestamp int64) {
	if nativeHost != nil {
		nativeHost.DeleteTimer(domain, key, timestamp)
	}
}

func hostCurrentWatermark() int64 {
	if nativeHost == nil {
		return math.MinInt64
	}
	return nativeHost.CurrentWatermark()
}

func hostCurrentProcessingTime() int64 {
	if nativeHost == nil {
		return 0
	}
	return nativeHost.CurrentProcessingTime()
}

func hostEmit(sideOutput string, b packed) error {
	if nativeHost == nil {
		return errNoHost
	}
	records := make([]Record, len(b.offsets)/2)
	for i := range records {
		b.record(i, &records[i])
		records[i].keyGroup = -1
	}
	return nativeHost.EmitTo(sideOutput, records)
}

func hostCounterAdd(name string, delta uint64) error {
	if nativeHost == nil {
		return errNoHost
	}
	return nativeHost.CounterAdd(name, delta)
}
