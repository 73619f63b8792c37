// Whitespace in UTF-8 bytes, as Rust's `char::is_whitespace` (Unicode's White_Space
// property) sees it: what every language's word count splits words on.

/** First bytes of the UTF-8 encodings of Unicode's White_Space characters other than the space. */
const FIRST_BYTES = [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0xc2, 0xe1, 0xe2, 0xe3];

/**
 * `data` (UTF-8), or a copy of it, with every whitespace character (Rust's
 * `char::is_whitespace`) replaced by as many spaces as it has bytes: a batch's words are then
 * its values split on `" "`, every byte keeping its position. Typed arrays' `indexOf`
 * searches natively, so the JavaScript work is per whitespace character found, not per byte.
 */
export function spaceOutWhitespace(data) {
  let copy = null;
  for (let f = 0; f < FIRST_BYTES.length; f++) {
    const first = FIRST_BYTES[f];
    for (let p = data.indexOf(first); p >= 0; p = data.indexOf(first, p + 1)) {
      const length = whitespaceLength(data, p, first);
      if (length !== 0) {
        if (copy === null) copy = data.slice();
        copy.fill(0x20, p, p + length);
      }
    }
  }
  return copy ?? data;
}

/** The length of the whitespace character starting with byte `first` at `p`, or 0. */
function whitespaceLength(data, p, first) {
  if (first < 0x80) return 1;
  const second = data[p + 1];
  const third = data[p + 2];
  switch (first) {
    case 0xc2: // U+0085, U+00A0
      return second === 0x85 || second === 0xa0 ? 2 : 0;
    case 0xe1: // U+1680
      return second === 0x9a && third === 0x80 ? 3 : 0;
    case 0xe2: // U+2000-U+200A, U+2028, U+2029, U+202F; U+205F
      if (second === 0x80) return (third >= 0x80 && third <= 0x8a) || third === 0xa8 || third === 0xa9 || third === 0xaf ? 3 : 0;
      return second === 0x81 && third === 0x9f ? 3 : 0;
    default: // 0xe3: U+3000
      return second === 0x80 && third === 0x80 ? 3 : 0;
  }
}
