//! The config file: YAML, flat `key: value` lines or nested maps whose keys join with dots.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::ConfigError;

/// The file's `key → value` entries, keys joined (`execution: {checkpointing: {interval:
/// 10 s}}` is `execution.checkpointing.interval`).
pub(super) fn read(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        cause: source,
    })?;
    let docs = YamlLoader::load_from_str(&text).map_err(|e| ConfigError::Yaml {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let mut flat = Vec::new();
    if let Some(doc) = docs.first() {
        if !matches!(doc, Yaml::Hash(_) | Yaml::Null) {
            return Err(ConfigError::Shape {
                path: path.to_owned(),
                message: format!(
                    "expected keys with values (`parallelism.default: 4`), got {}",
                    yaml_kind(doc)
                ),
            });
        }
        flatten(doc, String::new(), &mut flat).map_err(|message| ConfigError::Shape {
            path: path.to_owned(),
            message,
        })?;
    }
    Ok(flat)
}

fn flatten(node: &Yaml, prefix: String, out: &mut Vec<(String, String)>) -> Result<(), String> {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match node {
        Yaml::Hash(map) => {
            for (k, v) in map {
                let key =
                    scalar(k).ok_or_else(|| format!("keys must be plain names, got {k:?}"))?;
                flatten(v, join(&key), out)?;
            }
            Ok(())
        }
        Yaml::Null if prefix.is_empty() => Ok(()),
        other => {
            let value = scalar(other).ok_or_else(|| {
                format!(
                    "the value of {prefix} must be a single value, not {}",
                    yaml_kind(other)
                )
            })?;
            out.push((prefix, value));
            Ok(())
        }
    }
}

/// What a YAML node is, for messages.
fn yaml_kind(node: &Yaml) -> &'static str {
    match node {
        Yaml::Array(_) => "a list",
        Yaml::Hash(_) => "a map",
        Yaml::Null => "nothing",
        _ => "a single value",
    }
}

fn scalar(node: &Yaml) -> Option<String> {
    match node {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}
