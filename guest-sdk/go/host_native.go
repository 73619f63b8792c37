//go:build !wasip1

package cairn

// Outside WebAssembly (the SDK's own tests), the host's log and key-group functions are
// stand-ins that tests set.
var (
	nativeLog      = func(Level, string) {}
	nativeKeyGroup = func([]byte) uint16 { return 0 }
)

func hostLog(level Level, message string) { nativeLog(level, message) }

func hostKeyGroup(key []byte) uint16 { return nativeKeyGroup(key) }
