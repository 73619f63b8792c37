//go:build wasip1

package cairn

// adapterArena is the memory of the WASI preview 1 adapter (its stack and state): the
// adapter allocates them on its first call, which comes from the Go runtime's
// initialisation, before Go code can run; and Go's allocator assumes that it alone grows
// linear memory, so memory the adapter took with memory.grow it would hand out again. So
// the component build (`cairn-wit-tools componentize-go`) finds this array by the marker
// that ends it and gives the core module a `cabi_realloc`, for the adapter alone, that
// hands out the bytes before the marker. Go never touches them.
var adapterArena = [adapterArenaSize + len(arenaMarker)]byte{
	adapterArenaSize: 'c', 'a', 'i', 'r', 'n', '-', 'g', 'o', '-', 'a', 'd', 'a', 'p', 't', 'e', 'r',
	'-', 'a', 'r', 'e', 'n', 'a', '!', '!',
}

const (
	adapterArenaSize = 3 << 16
	arenaMarker      = "cairn-go-adapter-arena!!"
)

// The marker is intact unless the adapter overran the arena.
func init() {
	if string(adapterArena[adapterArenaSize:]) != arenaMarker {
		panic("the WASI adapter overran its memory")
	}
}
