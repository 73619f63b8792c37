package cairn

import "errors"

// Chunk is the keyed state of one key group, in the chunk encoding of
// cairn:job/types.keyed-chunk, as a restore receives it.
type Chunk struct {
	KeyGroup uint16
	Entries  []byte
}

// ForEach calls f with every entry of the chunk, in order: a value, or a tombstone (the key
// was deleted; value is nil). key and value alias the chunk.
func (c Chunk) ForEach(f func(key, value []byte, tombstone bool) error) error {
	r := chunkReader{data: c.Entries}
	for {
		key, value, tombstone, ok, err := r.next()
		if err != nil || !ok {
			return err
		}
		if err := f(key, value, tombstone); err != nil {
			return err
		}
	}
}

type chunkReader struct {
	data []byte
	pos  int
}

var errChunk = errors.New("keyed chunk: malformed entries")

// next reads the next entry: ok is false at the end of the chunk.
func (r *chunkReader) next() (key, value []byte, tombstone, ok bool, err error) {
	if r.pos == len(r.data) {
		return nil, nil, false, false, nil
	}
	keyLen, err := r.varint()
	if err != nil {
		return
	}
	if key, err = r.bytes(keyLen); err != nil {
		return
	}
	tag, err := r.varint()
	if err != nil {
		return
	}
	if tag == 0 {
		return key, nil, true, true, nil
	}
	value, err = r.bytes(tag - 1)
	return key, value, false, err == nil, err
}

func (r *chunkReader) varint() (uint32, error) {
	var n uint64
	for i := 0; i < 5; i++ {
		if r.pos == len(r.data) {
			return 0, errChunk
		}
		b := r.data[r.pos]
		r.pos++
		n |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if n > 0xffffffff {
				return 0, errChunk
			}
			return uint32(n), nil
		}
	}
	return 0, errChunk
}

func (r *chunkReader) bytes(n uint32) ([]byte, error) {
	if uint64(n) > uint64(len(r.data)-r.pos) {
		return nil, errChunk
	}
	b := r.data[r.pos : r.pos+int(n) : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

func appendVarint(dst []byte, n uint32) []byte {
	for n >= 0x80 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	return append(dst, byte(n))
}

// appendEntry appends the entry of a key and its encoded value.
func appendEntry(dst []byte, key string, value []byte) []byte {
	dst = appendVarint(dst, uint32(len(key)))
	dst = append(dst, key...)
	dst = appendVarint(dst, uint32(len(value))+1)
	return append(dst, value...)
}

// appendTombstone appends the entry of a deleted key.
func appendTombstone(dst, key []byte) []byte {
	dst = appendVarint(dst, uint32(len(key)))
	dst = append(dst, key...)
	return append(dst, 0)
}
