//! The `BYTES` token of the golden vector files (`wit/vectors/README.md`): `x` followed by
//! lowercase hex. Shared by the packed-batch and keyed-chunk vector tests.

use std::fmt::Write as _;

/// `bytes` as a `BYTES` token.
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::from("x");
    for b in bytes {
        let _ = write!(text, "{b:02x}");
    }
    text
}

/// The bytes a `BYTES` token stands for.
pub fn bytes(token: &str) -> Vec<u8> {
    let digits = token
        .strip_prefix('x')
        .expect("bytes are x followed by hex");
    assert!(
        digits.len().is_multiple_of(2),
        "odd number of hex digits: {token}"
    );
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digits"))
        .collect()
}
