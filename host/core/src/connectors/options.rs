//! A node's connector options, as its connector reads them.

use super::ConnectorError;

/// A node's options for one connector, unknown ones refused up front.
pub struct Options<'a> {
    connector: &'static str,
    role: &'static str,
    options: &'a [(String, String)],
}

impl<'a> Options<'a> {
    /// `options` of a `role` (source, sink) of `connector`, which takes the options `known`
    /// (a known option ending in `.*` stands for every option with that prefix, as Flink's
    /// Kafka connector passes `properties.*` to its client).
    pub(super) fn new(
        connector: &'static str,
        role: &'static str,
        options: &'a [(String, String)],
        known: &'static [&'static str],
    ) -> Result<Self, ConnectorError> {
        if let Some((option, _)) = options.iter().find(|(k, _)| !is_known(k, known)) {
            return Err(ConnectorError::UnknownOption {
                connector,
                role,
                option: option.clone(),
                known,
            });
        }
        Ok(Options {
            connector,
            role,
            options,
        })
    }

    /// The option's value; the last one when given twice.
    pub fn get(&self, option: &str) -> Option<&'a str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == option)
            .map(|(_, v)| v.as_str())
    }

    /// Every option starting with `prefix`, without it, in the order given.
    pub fn prefixed(&self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.options
            .iter()
            .filter_map(move |(k, v)| Some((k.strip_prefix(prefix)?, v.as_str())))
    }

    pub fn required(&self, option: &'static str) -> Result<&'a str, ConnectorError> {
        self.get(option).ok_or(ConnectorError::MissingOption {
            connector: self.connector,
            role: self.role,
            option,
        })
    }

    /// A whole number, `default` when the option is not given.
    pub fn number(&self, option: &'static str, default: u64) -> Result<u64, ConnectorError> {
        match self.get(option) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e: std::num::ParseIntError| self.invalid(option, raw, e.to_string())),
        }
    }

    /// The error for a value of `option` that the connector cannot use.
    pub fn invalid(&self, option: &'static str, value: &str, reason: String) -> ConnectorError {
        ConnectorError::InvalidOption {
            connector: self.connector,
            role: self.role,
            option,
            value: value.to_owned(),
            reason,
        }
    }
}

/// Whether `option` is one of `known`, or has the prefix of a `prefix.*` among them.
fn is_known(option: &str, known: &[&str]) -> bool {
    known.iter().any(|known| match known.strip_suffix('*') {
        Some(prefix) => option.starts_with(prefix) && option.len() > prefix.len(),
        None => *known == option,
    })
}
