// Conversions between text, bytes and binary strings.
//
// QuickJS, the engine a JavaScript job runs in, has no TextEncoder or TextDecoder, and a
// byte-by-byte loop in JavaScript costs ~100 ns per byte there. These conversions use only
// native built-ins instead (`toBase64`/`atob`, `btoa`/`fromBase64`, `escape` with
// `decodeURIComponent`, `encodeURIComponent` with `unescape`), so their cost is a few calls
// per string whatever its length.
//
// A *binary string* holds one byte per character (U+0000 to U+00FF), as `atob` returns. The
// UTF-8 encoding of a text as a binary string compares, sorts and hashes like the text's
// bytes: it is the cheapest form to use as a map key for data read from records, and it sorts
// by Unicode code point (as Rust's `str` and `BTreeMap<String, _>` do), which JavaScript's
// default sort of ordinary strings does not.

const NON_ASCII_TEXT = /[^\x00-\x7f]/;
const NON_ASCII_BINARY = /[\x80-\xff]/;

/**
 * The bytes of a binary string (one byte per character, U+0000 to U+00FF).
 * @param {string} binary
 * @returns {Uint8Array}
 */
export function binaryToBytes(binary) {
  return binary.length === 0 ? new Uint8Array(0) : Uint8Array.fromBase64(btoa(binary));
}

/**
 * A binary string holding `bytes`, one character per byte.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function bytesToBinary(bytes) {
  return bytes.length === 0 ? "" : atob(bytes.toBase64());
}

/**
 * The UTF-8 encoding of `text`, as a binary string.
 * @param {string} text
 * @returns {string}
 * @throws {TypeError} when `text` holds a lone surrogate (it is not valid Unicode)
 */
export function textToBinary(text) {
  if (!NON_ASCII_TEXT.test(text)) return text;
  try {
    return unescape(encodeURIComponent(text));
  } catch {
    throw new TypeError(`string is not valid Unicode (lone surrogate): ${JSON.stringify(text)}`);
  }
}

/**
 * The text a binary string holds in UTF-8.
 * @param {string} binary
 * @returns {string}
 * @throws {Error} when the bytes are not valid UTF-8
 */
export function binaryToText(binary) {
  if (!NON_ASCII_BINARY.test(binary)) return binary;
  try {
    return decodeURIComponent(escape(binary));
  } catch {
    throw new Error("bytes are not valid UTF-8");
  }
}

/**
 * The UTF-8 encoding of `text`.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function encodeText(text) {
  return binaryToBytes(textToBinary(text));
}

/**
 * The text `bytes` hold in UTF-8.
 * @param {Uint8Array} bytes
 * @returns {string}
 * @throws {Error} when the bytes are not valid UTF-8
 */
export function decodeText(bytes) {
  return binaryToText(bytesToBinary(bytes));
}

/** @internal Whether a binary string has a byte of 0x80 or more. */
export function hasNonAscii(binary) {
  return NON_ASCII_BINARY.test(binary);
}

/** @internal Whether a string has a character above U+007F. */
export function isAscii(text) {
  return !NON_ASCII_TEXT.test(text);
}
