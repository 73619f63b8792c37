package main

import (
	"encoding/binary"
	"errors"

	"cairn/sdk"
)

// panesCodec encodes a word's panes as Rust's window operator does (serde's postcard of
// `Panes<u64>`: `Vec<(Window { start: i64, end: i64 }, u64)>`): the number of panes, then
// each one's start, end and count, as varints (unsigned LEB128; the signed ones zigzagged).
var panesCodec = cairn.Codec[[]pane]{
	Encoding: cairn.EncodingBytes,
	Append: func(dst []byte, panes []pane) []byte {
		dst = binary.AppendUvarint(dst, uint64(len(panes)))
		for _, p := range panes {
			dst = binary.AppendVarint(dst, p.window.start)
			dst = binary.AppendVarint(dst, p.window.end)
			dst = binary.AppendUvarint(dst, p.count)
		}
		return dst
	},
	Decode: decodePanes,
}

var errPanes = errors.New("cannot decode a word's windows")

func decodePanes(b []byte) ([]pane, error) {
	r := varints{b: b}
	n := r.uvarint()
	if n > uint64(len(b)) { // each pane takes 3 bytes at least
		return nil, errPanes
	}
	panes := make([]pane, n)
	for i := range panes {
		panes[i] = pane{window{r.varint(), r.varint()}, r.uvarint()}
	}
	if r.err || len(r.b) != 0 {
		return nil, errPanes
	}
	return panes, nil
}

// varints reads varints off b; err says one was malformed.
type varints struct {
	b   []byte
	err bool
}

func (r *varints) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *varints) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}
