package cairn

import (
	"errors"
	"math"
	"strconv"
)

// NoTimestamp is the timestamp of a record that has none.
const NoTimestamp int64 = math.MinInt64

// Record is one record of a batch. Key and Value alias the batch: they are valid during the
// Process call that receives them (copy them to keep them).
type Record struct {
	// Key is empty for a record without a key.
	Key   []byte
	Value []byte
	// Timestamp in milliseconds since the Unix epoch, or NoTimestamp.
	Timestamp int64
	input     uint32
	keyGroup  int32 // -1: not on a by-key input
}

// Input is the index of the input the record arrived on.
func (r *Record) Input() uint32 { return r.input }

// KeyGroup is the record's key group, on a by-key input.
func (r *Record) KeyGroup() (uint16, bool) {
	return uint16(r.keyGroup), r.keyGroup >= 0
}

// packed is a batch in the packed encoding of cairn:job/types.packed-batch.
type packed struct {
	data       []byte
	offsets    []uint32
	timestamps []int64
}

// check refuses an encoding that breaks the contract's rules.
func (b *packed) check() error {
	if len(b.offsets)%2 != 0 {
		return errors.New("packed batch: an odd number of offsets (" + strconv.Itoa(len(b.offsets)) + ")")
	}
	var previous uint32
	for _, offset := range b.offsets {
		if offset < previous {
			return errors.New("packed batch: offsets decrease")
		}
		previous = offset
	}
	if int(previous) > len(b.data) {
		return errors.New("packed batch: an offset past the end of the data")
	}
	if n := len(b.offsets) / 2; len(b.timestamps) != 0 && len(b.timestamps) != n {
		return errors.New("packed batch: " + strconv.Itoa(len(b.timestamps)) + " timestamps for " + strconv.Itoa(n) + " records")
	}
	return nil
}

// record fills r with record i of a checked batch.
func (b *packed) record(i int, r *Record) {
	start := uint32(0)
	if i > 0 {
		start = b.offsets[2*i-1]
	}
	keyEnd, valueEnd := b.offsets[2*i], b.offsets[2*i+1]
	r.Key = b.data[start:keyEnd:keyEnd]
	r.Value = b.data[keyEnd:valueEnd:valueEnd]
	r.Timestamp = NoTimestamp
	if len(b.timestamps) != 0 {
		r.Timestamp = b.timestamps[i]
	}
}

// Emitter collects the records an operator emits into one packed batch.
type Emitter struct {
	data       []byte
	offsets    []uint32
	timestamps []int64 // nil until a record has a timestamp
}

// Emit emits a record without a timestamp (an empty key: no key). Both are copied.
func (e *Emitter) Emit(key, value []byte) {
	e.EmitAt(key, value, NoTimestamp)
}

// EmitAt emits a record with a timestamp (NoTimestamp: none).
func (e *Emitter) EmitAt(key, value []byte, timestamp int64) {
	e.data = append(e.data, key...)
	e.offsets = append(e.offsets, uint32(len(e.data)))
	e.data = append(e.data, value...)
	e.offsets = append(e.offsets, uint32(len(e.data)))
	if timestamp != NoTimestamp && e.timestamps == nil {
		e.timestamps = make([]int64, len(e.offsets)/2-1, cap(e.offsets)/2)
		for i := range e.timestamps {
			e.timestamps[i] = NoTimestamp
		}
	}
	if e.timestamps != nil {
		e.timestamps = append(e.timestamps, timestamp)
	}
}

// take returns the batch emitted so far and starts a new one.
func (e *Emitter) take() packed {
	batch := packed{e.data, e.offsets, e.timestamps}
	*e = Emitter{}
	return batch
}
