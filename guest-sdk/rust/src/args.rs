use std::str::FromStr;

use crate::{Error, KafkaUrl, Result};

/// The job's arguments: everything after `--` on `cairn run`.
///
/// Options are `--name VALUE` or `--name=VALUE`; anything else is a positional argument.
#[derive(Debug, Clone, Default)]
pub struct Args {
    args: Vec<String>,
}

impl Args {
    pub fn new(args: Vec<String>) -> Self {
        Args { args }
    }

    /// All arguments, as given.
    pub fn as_slice(&self) -> &[String] {
        &self.args
    }

    /// The value of option `name` (for example `"--input"`), if given. The last one wins.
    pub fn value(&self, name: &str) -> Option<&str> {
        let mut found = None;
        let mut iter = self.args.iter();
        while let Some(arg) = iter.next() {
            if arg == name {
                found = iter.next().map(String::as_str);
            } else if let Some(value) = arg.strip_prefix(name).and_then(|v| v.strip_prefix('=')) {
                found = Some(value);
            }
        }
        found
    }

    /// Whether flag `name` (for example `"--verbose"`, an option without a value) is given.
    pub fn flag(&self, name: &str) -> bool {
        self.args.iter().any(|arg| arg == name)
    }

    /// Every value of an option given several times, in order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        let mut found = Vec::new();
        let mut iter = self.args.iter();
        while let Some(arg) = iter.next() {
            if arg == name {
                found.extend(iter.next().map(String::as_str));
            } else if let Some(value) = arg.strip_prefix(name).and_then(|v| v.strip_prefix('=')) {
                found.push(value);
            }
        }
        found
    }

    /// The value of a required option, or an error naming it.
    pub fn required(&self, name: &str) -> Result<&str> {
        self.value(name)
            .ok_or_else(|| Error::msg(format!("missing required argument {name}")))
    }

    /// The value of option `name` as a `kafka://HOST:PORT/TOPIC[?OPTION=VALUE&...]` address:
    /// `None` when the option is absent or not such an address, an error naming the option
    /// when it is a malformed one.
    pub fn kafka(&self, name: &str) -> Result<Option<KafkaUrl>> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        KafkaUrl::parse(value).map_err(|e| Error::msg(format!("invalid {name} {value}: {e}")))
    }

    /// The value of option `name` parsed as `T`, or `default` when it is absent.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.value(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| Error::msg(format!("invalid value {raw:?} for {name}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::new(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn reads_both_option_forms_and_last_wins() {
        let a = args(&["--input", "a.txt", "--output=out", "--input=b.txt"]);
        assert_eq!(a.value("--input"), Some("b.txt"));
        assert_eq!(a.value("--output"), Some("out"));
        assert_eq!(a.value("--missing"), None);
        assert_eq!(a.value("--in"), None);
        assert_eq!(a.values("--input"), ["a.txt", "b.txt"]);
        assert_eq!(a.as_slice().len(), 4);
        assert!(a.values("--missing").is_empty());
        let flags = args(&["--verbose", "--output", "out"]);
        assert!(flags.flag("--verbose"));
        assert!(!flags.flag("--quiet"));
        assert!(!flags.flag("--out"));
    }

    #[test]
    fn required_and_parsed_values_report_the_option() {
        let a = args(&["--records", "12x"]);
        assert_eq!(
            a.required("--input").unwrap_err().message(),
            "missing required argument --input"
        );
        let err = a.parse_or::<u64>("--records", 0).unwrap_err();
        assert!(
            err.message()
                .starts_with("invalid value \"12x\" for --records")
        );
        assert_eq!(a.parse_or::<u64>("--keys", 7), Ok(7));
    }
}
