package cairn

import (
	"encoding/binary"
	"errors"
	"iter"
	"math"
	"strconv"
	"unicode/utf8"
)

// ValueEncoding says how keyed state values are encoded, so that `cairn state` can show
// them without the job's code (cairn:job/types.value-encoding).
type ValueEncoding uint8

const (
	EncodingBytes ValueEncoding = iota
	EncodingUTF8
	EncodingU64LE
	EncodingS64LE
	EncodingF64LE
	EncodingJSON
)

// Codec encodes the values of keyed state.
type Codec[V any] struct {
	Encoding ValueEncoding
	// Append appends the encoding of v to dst.
	Append func(dst []byte, v V) []byte
	// Decode decodes a value; the bytes alias the restored chunk.
	Decode func(b []byte) (V, error)
}

// U64 encodes a uint64 in 8 bytes, little-endian.
var U64 = Codec[uint64]{EncodingU64LE, binary.LittleEndian.AppendUint64,
	func(b []byte) (uint64, error) {
		if len(b) != 8 {
			return 0, valueSize("u64", b)
		}
		return binary.LittleEndian.Uint64(b), nil
	}}

// S64 encodes an int64 in 8 bytes, little-endian.
var S64 = Codec[int64]{EncodingS64LE,
	func(dst []byte, v int64) []byte { return binary.LittleEndian.AppendUint64(dst, uint64(v)) },
	func(b []byte) (int64, error) {
		if len(b) != 8 {
			return 0, valueSize("s64", b)
		}
		return int64(binary.LittleEndian.Uint64(b)), nil
	}}

// F64 encodes a float64 in 8 bytes (IEEE 754), little-endian.
var F64 = Codec[float64]{EncodingF64LE,
	func(dst []byte, v float64) []byte {
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	},
	func(b []byte) (float64, error) {
		if len(b) != 8 {
			return 0, valueSize("f64", b)
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	}}

// UTF8 encodes a string as its UTF-8 bytes.
var UTF8 = Codec[string]{EncodingUTF8,
	func(dst []byte, v string) []byte { return append(dst, v...) },
	func(b []byte) (string, error) {
		if !utf8.Valid(b) {
			return "", errors.New("a utf8 state value is not UTF-8")
		}
		return string(b), nil
	}}

// Bytes keeps values as opaque bytes.
var Bytes = Codec[[]byte]{EncodingBytes,
	func(dst []byte, v []byte) []byte { return append(dst, v...) },
	func(b []byte) ([]byte, error) { return append([]byte(nil), b...), nil }}

func valueSize(what string, b []byte) error {
	return errors.New("a " + what + " state value has " + strconv.Itoa(len(b)) + " bytes, not 8")
}

// group is one key group's keys: an index into parallel key and value slices, so that an
// update finds its value with one map lookup and a snapshot is one pass over two slices.
type group[V any] struct {
	index map[string]int32
	keys  []string
	vals  []V
}

// KeyedState is an operator's keyed state (Flink's ValueState): one value per key, of the
// current record's key in Process, kept per key group so that the host can split and merge
// it when the parallelism changes. An operator has at most one, made by NewKeyedState.
type KeyedState[V any] struct {
	codec  Codec[V]
	first  uint32
	groups []group[V]
}

// NewKeyedState makes the keyed state of the operator being opened with ctx.
func NewKeyedState[V any](ctx *Context, codec Codec[V]) *KeyedState[V] {
	if ctx.keyed != nil {
		panic("an operator has one keyed state: NewKeyedState was called twice")
	}
	s := &KeyedState[V]{
		codec:  codec,
		first:  ctx.FirstKeyGroup,
		groups: make([]group[V], ctx.LastKeyGroup-ctx.FirstKeyGroup+1),
	}
	ctx.keyed = s
	return s
}

// groupOf is the group of key group g, which must be this subtask's.
func (s *KeyedState[V]) groupOf(g uint32) (*group[V], error) {
	i := g - s.first
	if g < s.first || int(i) >= len(s.groups) {
		return nil, errors.New("key group " + strconv.FormatUint(uint64(g), 10) +
			" is not this subtask's (it owns " + strconv.FormatUint(uint64(s.first), 10) + ".." +
			strconv.Itoa(int(s.first)+len(s.groups)) +
			"): keyed state can only hold keys routed here by key")
	}
	gr := &s.groups[i]
	if gr.index == nil {
		gr.index = make(map[string]int32)
	}
	return gr, nil
}

func (s *KeyedState[V]) recordGroup(r *Record) (*group[V], error) {
	g, ok := r.KeyGroup()
	if !ok {
		return nil, errors.New("keyed state needs records of a by-key input; this one arrived on input " +
			strconv.FormatUint(uint64(r.input), 10) + ", which is not partitioned by key")
	}
	return s.groupOf(uint32(g))
}

// Get returns the value of the record's key, if it has one.
func (s *KeyedState[V]) Get(r *Record) (v V, ok bool, err error) {
	gr, err := s.recordGroup(r)
	if err != nil {
		return v, false, err
	}
	if i, ok := gr.index[string(r.Key)]; ok {
		return gr.vals[i], true, nil
	}
	return v, false, nil
}

// Entry returns the value of the record's key, inserting the zero value if it has none:
// a pointer valid until the next insertion or removal (`n, err := counts.Entry(r); *n++`).
func (s *KeyedState[V]) Entry(r *Record) (*V, error) {
	gr, err := s.recordGroup(r)
	if err != nil {
		return nil, err
	}
	if i, ok := gr.index[string(r.Key)]; ok {
		return &gr.vals[i], nil
	}
	var zero V
	return &gr.vals[gr.insert(string(r.Key), zero)], nil
}

// Set sets the value of the record's key.
func (s *KeyedState[V]) Set(r *Record, v V) error {
	gr, err := s.recordGroup(r)
	if err == nil {
		gr.set(string(r.Key), v)
	}
	return err
}

// Remove removes the record's key and its value.
func (s *KeyedState[V]) Remove(r *Record) error {
	gr, err := s.recordGroup(r)
	if err == nil {
		gr.remove(string(r.Key))
	}
	return err
}

// SetKey sets the value of any key of this subtask's key groups (the host's key-group
// function says which): for migrating state of an older, operator-wide encoding.
func (s *KeyedState[V]) SetKey(key []byte, v V) error {
	gr, err := s.groupOf(uint32(hostKeyGroup(key)))
	if err == nil {
		gr.set(string(key), v)
	}
	return err
}

// Len is the number of keys.
func (s *KeyedState[V]) Len() int {
	n := 0
	for i := range s.groups {
		n += len(s.groups[i].keys)
	}
	return n
}

// All yields every key and its value, key group by key group.
func (s *KeyedState[V]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for g := range s.groups {
			gr := &s.groups[g]
			for i, key := range gr.keys {
				if !yield(key, gr.vals[i]) {
					return
				}
			}
		}
	}
}

// Restore adds a chunk of this state's own encoding.
func (s *KeyedState[V]) Restore(chunk Chunk) error {
	_, err := s.RestoreWith(chunk, s.codec.Decode)
	return err
}

// RestoreWith adds a chunk whose values decode reads (an older encoding, for a migration),
// and returns how many values it restored.
func (s *KeyedState[V]) RestoreWith(chunk Chunk, decode func([]byte) (V, error)) (int, error) {
	gr, err := s.groupOf(uint32(chunk.KeyGroup))
	if err != nil {
		return 0, err
	}
	n := 0
	err = chunk.ForEach(func(key, value []byte, tombstone bool) error {
		if tombstone {
			gr.remove(string(key))
			return nil
		}
		v, err := decode(value)
		if err == nil {
			gr.set(string(key), v)
			n++
		}
		return err
	})
	return n, err
}

func (gr *group[V]) insert(key string, v V) int32 {
	i := int32(len(gr.keys))
	gr.index[key] = i
	gr.keys = append(gr.keys, key)
	gr.vals = append(gr.vals, v)
	return i
}

func (gr *group[V]) set(key string, v V) {
	if i, ok := gr.index[key]; ok {
		gr.vals[i] = v
	} else {
		gr.insert(key, v)
	}
}

// remove moves the last entry into the removed one's place.
func (gr *group[V]) remove(key string) {
	i, ok := gr.index[key]
	if !ok {
		return
	}
	delete(gr.index, key)
	last := int32(len(gr.keys) - 1)
	if i != last {
		gr.keys[i], gr.vals[i] = gr.keys[last], gr.vals[last]
		gr.index[gr.keys[i]] = i
	}
	var zero V
	gr.keys[last], gr.vals[last] = "", zero
	gr.keys, gr.vals = gr.keys[:last], gr.vals[:last]
}

// keyedState is what the SDK needs of a KeyedState of any value type.
type keyedState interface {
	snapshot() []Chunk
	restore(chunk Chunk) error
	encoding() ValueEncoding
}

// snapshot writes one chunk per non-empty key group, each in one pass.
func (s *KeyedState[V]) snapshot() []Chunk {
	var chunks []Chunk
	for g := range s.groups {
		gr := &s.groups[g]
		if len(gr.keys) == 0 {
			continue
		}
		var entries []byte
		var value []byte
		for i, key := range gr.keys {
			value = s.codec.Append(value[:0], gr.vals[i])
			entries = appendEntry(entries, key, value)
		}
		chunks = append(chunks, Chunk{uint16(s.first + uint32(g)), entries})
	}
	return chunks
}

func (s *KeyedState[V]) restore(chunk Chunk) error { return s.Restore(chunk) }

func (s *KeyedState[V]) encoding() ValueEncoding { return s.codec.Encoding }
