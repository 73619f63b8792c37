//go:build wasip1

// The canonical ABI of the cairn-job world, by hand: mainline Go's //go:wasmexport takes
// and returns only numbers and pointers, which the generated bindings of wit-bindgen-go
// (written for TinyGo) exceed. Every export takes flat i32/i64 parameters and returns the
// address of a return area, laid out as the component model lays out its result.

package cairn

import (
	"encoding/binary"
	"errors"
	"runtime"
	"unsafe"
)

//go:wasmimport cairn:job/log@0.4.0 log
func wasmLog(level, ptr, len uint32)

//go:wasmimport cairn:job/keys@0.4.0 key-group
func wasmKeyGroup(ptr, len uint32) uint32

//go:wasmimport [export]cairn:job/job@0.4.0 [resource-new]operator
func wasmResourceNew(rep uint32) uint32

//go:wasmimport cairn:job/timers@0.4.0 register
func wasmRegisterTimer(domain, keyPtr, keyLen uint32, timestamp int64, result uint32)

//go:wasmimport cairn:job/timers@0.4.0 delete
func wasmDeleteTimer(domain, keyPtr, keyLen uint32, timestamp int64)

//go:wasmimport cairn:job/timers@0.4.0 current-watermark
func wasmCurrentWatermark() int64

//go:wasmimport cairn:job/timers@0.4.0 current-processing-time
func wasmCurrentProcessingTime() int64

//go:wasmimport cairn:job/outputs@0.4.0 emit
func wasmEmit(namePtr, nameLen, data, dataLen, offsets, offsetsLen, timestamps, timestampsLen uint32)

//go:wasmimport cairn:job/metrics@0.4.0 counter-add
func wasmCounterAdd(namePtr, nameLen uint32, delta uint64)

func hostLog(level Level, message string) {
	wasmLog(uint32(level), addrOf(unsafe.StringData(message)), uint32(len(message)))
	runtime.KeepAlive(message)
}

func hostKeyGroup(key []byte) uint16 {
	g := wasmKeyGroup(addrOf(unsafe.SliceData(key)), uint32(len(key)))
	runtime.KeepAlive(key)
	return uint16(g)
}

// registerResult is the return area of timers.register: result<_, string>.
var registerResult [3]uint32

func hostRegisterTimer(domain TimeDomain, key []byte, timestamp int64) error {
	wasmRegisterTimer(uint32(domain), addrOf(unsafe.SliceData(key)), uint32(len(key)), timestamp,
		addrOf(&registerResult[0]))
	runtime.KeepAlive(key)
	if registerResult[0]&0xff == 0 {
		return nil
	}
	return errors.New(stringAt(registerResult[1], registerResult[2]))
}

func hostDeleteTimer(domain TimeDomain, key []byte, timestamp int64) {
	wasmDeleteTimer(uint32(domain), addrOf(unsafe.SliceData(key)), uint32(len(key)), timestamp)
	runtime.KeepAlive(key)
}

// watermark is the input watermark as the host gave it during this call (it moves only
// between calls), forgotten when the call ends.
var watermark struct {
	ms    int64
	known bool
}

func hostCurrentWatermark() int64 {
	if !watermark.known {
		watermark.ms, watermark.known = wasmCurrentWatermark(), true
	}
	return watermark.ms
}

func hostCurrentProcessingTime() int64 { return wasmCurrentProcessingTime() }

func hostEmit(sideOutput string, b packed) error {
	wasmEmit(addrOf(unsafe.StringData(sideOutput)), uint32(len(sideOutput)),
		addrOf(unsafe.SliceData(b.data)), uint32(len(b.data)),
		addrOf(unsafe.SliceData(b.offsets)), uint32(len(b.offsets)),
		addrOf(unsafe.SliceData(b.timestamps)), uint32(len(b.timestamps)))
	runtime.KeepAlive(sideOutput)
	runtime.KeepAlive(b)
	return nil
}

func hostCounterAdd(name string, delta uint64) error {
	wasmCounterAdd(addrOf(unsafe.StringData(name)), uint32(len(name)), delta)
	runtime.KeepAlive(name)
	return nil
}

func addrOf[T any](p *T) uint32 { return uint32(uintptr(unsafe.Pointer(p))) }

func at[T any](addr uint32) *T { return (*T)(unsafe.Pointer(uintptr(addr))) }

func sliceAt[T any](addr, n uint32) []T {
	if n == 0 {
		return nil
	}
	return unsafe.Slice(at[T](addr), n)
}

func stringAt(addr, n uint32) string { return string(sliceAt[byte](addr, n)) }

// allocations are the buffers the host wrote an export's arguments (or an import's results)
// into, kept alive until the export returns (the Go collector does not move objects).
var allocations [][]uint64

// cabiRealloc allocates the exports' arguments; it is `cabi_export_realloc` because the
// build gives the WASI adapter a `cabi_realloc` of its own (arena_wasm.go).
//
//go:wasmexport cabi_export_realloc
func cabiRealloc(old, oldSize, align, size uint32) uint32 {
	return realloc(old, oldSize, align, size)
}

// cabiImportRealloc allocates the imports' results (the error of timers.register).
//
//go:wasmexport cabi_import_realloc
func cabiImportRealloc(old, oldSize, align, size uint32) uint32 {
	return realloc(old, oldSize, align, size)
}

// buffer is size bytes 8-aligned, the largest alignment of the contract.
func buffer(size uint32) []uint64 { return make([]uint64, (size+7)/8) }

func realloc(old, oldSize, align, size uint32) uint32 {
	if size == 0 {
		return align
	}
	buf := buffer(size)
	if old != 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), size), sliceAt[byte](old, min(oldSize, size)))
	}
	allocations = append(allocations, buf)
	return addrOf(&buf[0])
}

// retArea is the return area of every export; retained keeps what it points to alive until
// the next call (the host copies it out before then).
var (
	retArea  [8]uint32
	retained []any
)

// begin starts an export: the previous one's results are no longer needed.
func begin() {
	clear(retained)
	retained = retained[:0]
}

// end finishes an export: its arguments are no longer needed.
func end() {
	clear(allocations)
	allocations = allocations[:0]
	watermark.known = false
	collectIfDue()
}

func keep(v any) { retained = append(retained, v) }

func str(s string) (uint32, uint32) {
	keep(s)
	return addrOf(unsafe.StringData(s)), uint32(len(s))
}

func list[T any](s []T) (uint32, uint32) {
	keep(s)
	return addrOf(unsafe.SliceData(s)), uint32(len(s))
}

// ret returns an ok result (its payload words from offset 4) or an err string.
func ret(err error, ok ...uint32) uint32 {
	retArea = [8]uint32{}
	if err != nil {
		retArea[0] = 1
		retArea[1], retArea[2] = str(err.Error())
	} else {
		copy(retArea[1:], ok)
	}
	return addrOf(&retArea[0])
}

// recovered turns a panic into the export's error.
func recovered(result *uint32) {
	if p := recover(); p != nil {
		*result = ret(panicError(p))
	}
	end()
}

func retBatch(b packed, err error) uint32 {
	data, dataLen := list(b.data)
	offsets, offsetsLen := list(b.offsets)
	timestamps, timestampsLen := list(b.timestamps)
	return ret(err, data, dataLen, offsets, offsetsLen, timestamps, timestampsLen)
}

// instances are the open operators; a resource's rep is its index + 1.
var (
	instances []*instance
	free      []uint32
)

func self(rep uint32) *instance { return instances[rep-1] }

//go:wasmexport cairn:job/job@0.4.0#describe
func exportDescribe(argsPtr, argsLen uint32) (result uint32) {
	begin()
	defer recovered(&result)
	words := sliceAt[[2]uint32](argsPtr, argsLen)
	args := make(Args, len(words))
	for i, w := range words {
		args[i] = stringAt(w[0], w[1])
	}
	if job.describe == nil {
		return ret(errNoJob)
	}
	g, err := job.describe(args)
	if err != nil {
		return ret(err)
	}
	graph := lowered{heap{}}.graph(g)
	var flat [6]uint32
	for i := range flat {
		flat[i] = binary.LittleEndian.Uint32(graph[4*i:])
	}
	return ret(nil, flat[:]...)
}

// heap lowers results into the Go heap, kept until the next call.
type heap struct{}

func (heap) alloc(size, align uint32) (uint32, []byte) {
	if size == 0 {
		return align, nil
	}
	buf := buffer(size)
	keep(buf)
	return addrOf(&buf[0]), unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), size)
}

//go:wasmexport cairn:job/job@0.4.0#open
func exportOpen(jobID, jobIDLen, uid, uidLen, subtask, parallelism, attempt, options, optionsLen,
	maxParallelism, first, last, name, nameLen uint32) (result uint32) {
	begin()
	defer recovered(&result)
	ctx := Context{
		JobID:          stringAt(jobID, jobIDLen),
		OperatorUID:    stringAt(uid, uidLen),
		Subtask:        subtask,
		Parallelism:    parallelism,
		Attempt:        attempt,
		MaxParallelism: maxParallelism,
		FirstKeyGroup:  first,
		LastKeyGroup:   last,
	}
	for _, w := range sliceAt[[4]uint32](options, optionsLen) {
		ctx.Options = append(ctx.Options, [2]string{stringAt(w[0], w[1]), stringAt(w[2], w[3])})
	}
	inst, err := open(ctx, stringAt(name, nameLen))
	if err != nil {
		return ret(err)
	}
	var rep uint32
	if n := len(free); n > 0 {
		rep, free = free[n-1], free[:n-1]
		instances[rep-1] = inst
	} else {
		instances = append(instances, inst)
		rep = uint32(len(instances))
	}
	return ret(nil, wasmResourceNew(rep))
}

//go:wasmexport cairn:job/job@0.4.0#[dtor]operator
func exportDrop(rep uint32) {
	instances[rep-1] = nil
	free = append(free, rep)
}

//go:wasmexport cairn:job/job@0.4.0#[method]operator.process
func exportProcess(rep, input, data, dataLen, offsets, offsetsLen, timestamps, timestampsLen,
	keyGroups, keyGroupsLen uint32) (result uint32) {
	begin()
	defer recovered(&result)
	batch := packed{sliceAt[byte](data, dataLen), sliceAt[uint32](offsets, offsetsLen),
		sliceAt[int64](timestamps, timestampsLen)}
	return retBatch(self(rep).process(input, batch, sliceAt[uint16](keyGroups, keyGroupsLen)))
}

//go:wasmexport cairn:job/job@0.4.0#[method]operator.on-timer
func exportOnTimer(rep, domain, data, dataLen, offsets, offsetsLen, timestamps, timestampsLen,
	keyGroups, keyGroupsLen uint32) (result uint32) {
	begin()
	defer recovered(&result)
	timers := packed{sliceAt[byte](data, dataLen), sliceAt[uint32](offsets, offsetsLen),
		sliceAt[int64](timestamps, timestampsLen)}
	return retBatch(self(rep).onTimer(TimeDomain(domain), timers, sliceAt[uint16](keyGroups, keyGroupsLen)))
}

//go:wasmexport cairn:job/job@0.4.0#[method]operator.finish
func exportFinish(rep uint32) (result uint32) {
	begin()
	defer recovered(&result)
	return retBatch(self(rep).finish())
}

//go:wasmexport cairn:job/job@0.4.0#[method]operator.snapshot
func exportSnapshot(rep uint32, checkpointID uint64) (result uint32) {
	begin()
	defer recovered(&result)
	s, err := self(rep).snapshot()
	if err != nil {
		return ret(err)
	}
	items := make([][2]uint32, len(s.items))
	for i, item := range s.items {
		items[i][0], items[i][1] = list(item)
	}
	chunks := make([][3]uint32, len(s.keyed))
	for i, c := range s.keyed {
		chunks[i][0] = uint32(c.KeyGroup)
		chunks[i][1], chunks[i][2] = list(c.Entries)
	}
	var mode uint32
	if s.union {
		mode = 1
	}
	itemsPtr, itemsLen := list(items)
	chunksPtr, chunksLen := list(chunks)
	return ret(nil, s.version, itemsPtr, itemsLen, mode, chunksPtr, chunksLen, uint32(s.encoding))
}

//go:wasmexport cairn:job/job@0.4.0#[method]operator.restore-keyed
func exportRestoreKeyed(rep, version, chunksPtr, chunksLen uint32) (result uint32) {
	begin()
	defer recovered(&result)
	words := sliceAt[[3]uint32](chunksPtr, chunksLen)
	chunks := make([]Chunk, len(words))
	for i, w := range words {
		chunks[i] = Chunk{uint16(w[0]), sliceAt[byte](w[1], w[2])}
	}
	return ret(self(rep).restoreKeyed(version, chunks))
}

//go:wasmexport cairn:job/job@0.4.0#[method]operator.restore
func exportRestore(rep, version, itemsPtr, itemsLen uint32) (result uint32) {
	begin()
	defer recovered(&result)
	words := sliceAt[[2]uint32](itemsPtr, itemsLen)
	items := make([][]byte, len(words))
	for i, w := range words {
		items[i] = sliceAt[byte](w[0], w[1])
	}
	return ret(self(rep).restore(version, items))
}

//go:wasmexport cairn:job/job@0.4.0#[method]operator.checkpoint-complete
func exportCheckpointComplete(rep uint32, checkpointID uint64) {
	self(rep).checkpointComplete(checkpointID)
}
