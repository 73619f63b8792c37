//go:build wasip1

package cairn

import (
	"runtime"
	"runtime/metrics"
	_ "unsafe" // for go:linkname
)

// The collector runs only between calls, never on its own: the host lowers an export's
// arguments through cabi_realloc, during which a component may not call an import, and a
// collection started by an allocation there would read the clock (a WASI import) and trap.
// So automatic collection is off, and after each call the SDK collects once the heap has
// grown by as much as was live after the last collection (as GOGC=100 would), at least
// minCollect.
const minCollect = 16 << 20

var gcSamples = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}

var allocatedAtLastGC uint64

// setGCPercent is runtime/debug.SetGCPercent's implementation in the runtime: the package
// runtime/debug itself imports os, whose initialisation asks WASI for preopened
// directories, which jobs do not have.
//
//go:linkname setGCPercent runtime/debug.setGCPercent
func setGCPercent(percent int32) int32

func init() { setGCPercent(-1) }

func collectIfDue() {
	metrics.Read(gcSamples)
	allocated, live := gcSamples[0].Value.Uint64(), gcSamples[1].Value.Uint64()
	if allocated-allocatedAtLastGC >= max(live, minCollect) {
		runtime.GC()
		metrics.Read(gcSamples)
		allocatedAtLastGC = gcSamples[0].Value.Uint64()
	}
}
