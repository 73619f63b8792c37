//! Checks on names read from outside the process (`_metadata`, a sink's pending parts):
//! joined to a folder, they must stay inside it.

/// Checks that `name` is one plain file name: no folder separator, not `.` or `..`, no
/// control characters, so that joining it to a folder stays in that folder.
pub fn file_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    if plain {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a plain file name",
            name.escape_debug()
        ))
    }
}

/// Checks that `path` is relative and made of plain names (`uid/0.zst`): no leading `/`,
/// no `.`, `..` or empty parts, so that it names a file inside its checkpoint folder.
pub fn relative_path(path: &str) -> Result<(), String> {
    path.split('/')
        .try_for_each(file_name)
        .map_err(|e| format!("state path '{}': {e}", path.escape_debug()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_and_relative_paths() {
        for good in ["count/0.zst", "a.b/c-d_0.zst", "..hidden/x"] {
            assert_eq!(relative_path(good), Ok(()), "{good}");
        }
        // Paths that leave their folder: state::metadata's tests, through a whole `_metadata`.
        assert!(relative_path("../x").is_err());
        assert!(file_name("a\\b").is_err() && file_name("a\nb").is_err());
        assert!(file_name(".").is_err() && file_name("..").is_err());
    }
}
