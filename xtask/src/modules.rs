//! `cargo xtask lint`'s layering check: inside each host crate, the top-level modules must
//! depend on each other without a cycle (DESIGN.md §1), as the crates themselves do (cargo
//! refuses a cycle between crates; nothing refuses one between modules).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;

/// The host crates whose modules are checked.
pub(crate) const HOST_CRATES: &[&str] = &[
    "host/wire",
    "host/api",
    "host/core",
    "host/wasm",
    "host/cli",
];

/// Fails naming every cycle between the top-level modules of `crate_dir`'s `src/`.
pub(crate) fn check_acyclic(crate_dir: &Path) -> anyhow::Result<()> {
    let src = crate_dir.join("src");
    let mut sources = BTreeMap::<String, String>::new();
    collect(&src, &src, &mut sources)?;
    let graph = dependencies(&sources);
    let cycles = cycles(&graph);
    anyhow::ensure!(
        cycles.is_empty(),
        "{}: modules depend on each other in a cycle: {}",
        crate_dir.display(),
        cycles
            .iter()
            .map(|cycle| cycle.join(" -> "))
            .collect::<Vec<_>>()
            .join("; ")
    );
    Ok(())
}

/// Every `.rs` file under `dir`, keyed by its top-level module (`runtime` for
/// `src/runtime/task.rs`); the crate root (`lib.rs`, `main.rs`) wires modules and is left out.
fn collect(src: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(src, &path, out)?;
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src)?;
        let first = relative
            .components()
            .next()
            .context("empty path")?
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let mut text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        // In `src/x.rs` and `src/x/mod.rs`, `super::` is the crate root.
        let depth = relative.components().count();
        if depth == 1 || (depth == 2 && relative.ends_with("mod.rs")) {
            text = text.replace("super::", "crate::");
        }
        let entry = out.entry(module).or_default();
        entry.push_str(&text);
        entry.push('\n');
    }
    Ok(())
}

/// Module → the other modules of the crate it names as `crate::name` (also inside
/// `use crate::{a, b::c}`), comments aside.
fn dependencies(sources: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    sources
        .iter()
        .map(|(module, text)| {
            let mut names = BTreeSet::new();
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or_default();
                let mut rest = code;
                while let Some(at) = rest.find("crate::") {
                    rest = &rest[at + "crate::".len()..];
                    if let Some(group) = rest.strip_prefix('{') {
                        names.extend(top_level_names(group));
                    } else {
                        names.insert(identifier(rest).to_owned());
                    }
                }
            }
            let deps = names
                .into_iter()
                .filter(|name| name != module && sources.contains_key(name))
                .collect();
            (module.clone(), deps)
        })
        .collect()
}

/// The first path segment of every item of a `{a, b::{c, d}, e}` group (`a`, `b`, `e`); a
/// group that goes on past this line yields what this line shows.
fn top_level_names(group: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && (c.is_alphanumeric() || c == '_') => {
                names.push(identifier(&group[i..]).to_owned());
                item_start = false;
            }
            _ => {}
        }
    }
    names
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// Every cycle a depth-first search meets, each as `a -> b -> … -> a`.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            found.push(cycle);
            return;
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done, found);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(modules: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let sources = modules
            .iter()
            .map(|(m, text)| (m.to_string(), text.to_string()))
            .collect();
        dependencies(&sources)
    }

    #[test]
    fn reads_paths_groups_and_ignores_comments_and_unknown_names() {
        let deps = graph(&[
            (
                "a",
                "use crate::{b::X, c::{self, Y}};\n// crate::d\nlet _ = crate::std_like;",
            ),
            ("b", "fn f() { crate::c::g() }"),
            ("c", ""),
            ("d", ""),
        ]);
        assert_eq!(deps["a"], BTreeSet::from(["b".into(), "c".into()]));
        assert_eq!(deps["b"], BTreeSet::from(["c".into()]));
        assert!(cycles(&deps).is_empty());
    }

    #[test]
    fn names_a_cycle() {
        let deps = graph(&[
            ("a", "use crate::b;"),
            ("b", "use crate::c::Z;"),
            ("c", "use crate::{a};"),
        ]);
        assert_eq!(cycles(&deps), vec![vec!["a", "b", "c", "a"]]);
    }
}
