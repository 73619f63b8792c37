//! The README's config table is rendered from the key declarations; this test keeps the
//! two equal (and rewrites the README's copy on request).

use super::keys::{ALL, KeySpec};

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
const HEADER: &str = "| key | default | meaning |";

/// The table's rows below its header and separator, one per key in declaration order.
fn rows() -> Vec<String> {
    ALL.iter().map(row).collect()
}

fn row(key: &KeySpec) -> String {
    let mut name = format!("`{}`", key.name);
    if !key.aliases.is_empty() {
        let aliases: Vec<String> = key.aliases.iter().map(|a| format!("`{a}`")).collect();
        name += &format!(" ({})", aliases.join(", "));
    }
    let default = key.readme_default.unwrap_or(key.default);
    format!("| {name} | {default} | {} |", key.meaning)
}

#[test]
fn readme_config_table_matches_the_declarations() {
    let text = std::fs::read_to_string(README).expect("README.md is readable");
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.trim() == HEADER)
        .expect("README.md has the config table's header row");
    // Rows start after the separator and end at the next blank line.
    let start = header + 2;
    let end = lines[start..]
        .iter()
        .position(|l| l.trim().is_empty())
        .map_or(lines.len(), |n| start + n);
    let written = &lines[start..end];
    let rendered = rows();
    if written == rendered.as_slice() {
        return;
    }
    if std::env::var_os("CAIRN_WRITE_README").is_some() {
        let mut out: Vec<&str> = lines[..start].to_vec();
        out.extend(rendered.iter().map(String::as_str));
        out.extend(&lines[end..]);
        let mut new = out.join("\n");
        if text.ends_with('\n') {
            new.push('\n');
        }
        std::fs::write(README, new).expect("README.md is writable");
        return;
    }
    let mut diff = String::new();
    for line in written.iter().filter(|l| !rendered.iter().any(|r| r == *l)) {
        diff += &format!("- {line}\n");
    }
    for line in rendered.iter().filter(|r| !written.contains(&r.as_str())) {
        diff += &format!("+ {line}\n");
    }
    if diff.is_empty() {
        diff = "(same rows, in another order)\n".to_owned();
    }
    panic!(
        "README.md's config table differs from the keys declared in \
         host/core/src/config/keys.rs (- README, + declarations):\n{diff}\
         Regenerate it with: CAIRN_WRITE_README=1 cargo test -p cairn-core config"
    );
}
