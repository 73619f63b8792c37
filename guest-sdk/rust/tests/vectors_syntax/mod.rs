//! What the packed-batch and keyed-chunk vector tests share: the file in `wit/vectors/`
//! (rewritten from the reference encoding on request) and its `BYTES` token, `x` followed
//! by lowercase hex (`wit/vectors/README.md`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

/// `wit/vectors/<name>`.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../wit/vectors")
        .join(name)
}

/// The vectors file `name`, after rewriting it with `render()` first when
/// `CAIRN_WRITE_VECTORS=1` — once, in `cell`, before any test reads it.
pub fn read(cell: &'static OnceLock<String>, name: &str, render: fn() -> String) -> &'static str {
    cell.get_or_init(|| {
        let path = path(name);
        if std::env::var_os("CAIRN_WRITE_VECTORS").is_some_and(|v| v == "1") {
            std::fs::write(&path, render()).expect("cannot write the vectors file");
        }
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    })
}

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
