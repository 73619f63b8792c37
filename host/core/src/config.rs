//! Configuration: Flink's key names, their defaults, and where each value came from.
//!
//! Values come in layers, lowest precedence first: the config file, the job's own graph
//! config (set in code), then `-D key=value` on the command line. Keys are checked against
//! the known ones (deprecated Flink 1.x names are accepted as aliases); a typo gets an error
//! naming the closest known key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use yaml_rust2::{Yaml, YamlLoader};

use crate::restart::RestartStrategy;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Job,
    /// `-D key=value`.
    CommandLine,
    /// A command-line option that sets a key, such as `-p`.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Job => f.write_str("job code"),
            Origin::CommandLine => f.write_str("-D"),
            Origin::Flag(flag) => f.write_str(flag),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {cause}", .path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("config file {path}: {message}")]
    Shape { path: PathBuf, message: String },
    #[error("cannot read rest.auth-token-file {} (from {origin}): {cause}", .path.display())]
    TokenFile {
        path: PathBuf,
        origin: Origin,
        cause: std::io::Error,
    },
    #[error("unknown config key '{key}' (from {origin}){}", suggestion(.closest))]
    UnknownKey {
        key: String,
        origin: Origin,
        closest: Option<&'static str>,
    },
    #[error("invalid value '{value}' for {key} (from {origin}): expected {expected}")]
    InvalidValue {
        key: &'static str,
        value: String,
        origin: Origin,
        expected: &'static str,
    },
    #[error("-D expects key=value, got '{0}'")]
    Definition(String),
}

/// Flink's upper bound of `pipeline.max-parallelism` (its `UPPER_BOUND_MAX_PARALLELISM`,
/// 2^15): the most key groups, and so the most subtasks, any node can have.
pub const UPPER_MAX_PARALLELISM: u32 = 1 << 15;
/// The smallest `wasm.memory-limit`: one WebAssembly page.
const WASM_PAGE: u64 = 64 << 10;

fn suggestion(closest: &Option<&'static str>) -> String {
    closest
        .map(|k| format!("; did you mean '{k}'?"))
        .unwrap_or_default()
}

/// A known configuration key.
struct KeySpec {
    name: &'static str,
    /// Older (Flink 1.x) names accepted for the same key.
    aliases: &'static [&'static str],
    default: &'static str,
}

const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "parallelism.default",
        aliases: &[],
        default: "1",
    },
    KeySpec {
        name: "pipeline.max-parallelism",
        aliases: &[],
        default: "128",
    },
    KeySpec {
        name: "wasm.memory-limit",
        aliases: &[],
        default: "512 mb",
    },
    KeySpec {
        name: "wasm.call-timeout",
        aliases: &[],
        default: "10 s",
    },
    KeySpec {
        name: "wasm.compilation-cache",
        aliases: &[],
        default: "true",
    },
    KeySpec {
        name: "execution.checkpointing.interval",
        aliases: &[],
        default: "",
    },
    KeySpec {
        name: "execution.checkpointing.mode",
        aliases: &[],
        default: "EXACTLY_ONCE",
    },
    KeySpec {
        name: "execution.checkpointing.min-pause",
        aliases: &[],
        default: "0 ms",
    },
    KeySpec {
        name: "execution.checkpointing.timeout",
        aliases: &[],
        default: "10 min",
    },
    KeySpec {
        name: "execution.checkpointing.max-concurrent-checkpoints",
        aliases: &[],
        default: "1",
    },
    KeySpec {
        name: "execution.checkpointing.tolerable-failed-checkpoints",
        aliases: &[],
        default: "0",
    },
    KeySpec {
        name: "execution.checkpointing.externalized-checkpoint-retention",
        aliases: &[],
        default: "NO_EXTERNALIZED_CHECKPOINTS",
    },
    KeySpec {
        name: "execution.checkpointing.num-retained",
        aliases: &["state.checkpoints.num-retained"],
        default: "1",
    },
    KeySpec {
        name: "execution.checkpointing.dir",
        aliases: &["state.checkpoints.dir"],
        default: "",
    },
    KeySpec {
        name: "execution.checkpointing.savepoint-dir",
        aliases: &["state.savepoints.dir"],
        default: "",
    },
    KeySpec {
        name: "web.checkpoints.history",
        aliases: &[],
        default: "10",
    },
    KeySpec {
        name: "web.exception-history-size",
        aliases: &[],
        default: "16",
    },
    KeySpec {
        name: "rest.port",
        aliases: &[],
        default: "0",
    },
    KeySpec {
        name: "rest.bind-address",
        aliases: &[],
        default: "127.0.0.1",
    },
    KeySpec {
        name: "rest.auth-token",
        aliases: &[],
        default: "",
    },
    KeySpec {
        name: "rest.auth-token-file",
        aliases: &[],
        default: "",
    },
    KeySpec {
        name: "restart-strategy.type",
        aliases: &["restart-strategy"],
        default: "",
    },
    KeySpec {
        name: "restart-strategy.fixed-delay.attempts",
        aliases: &[],
        default: "1",
    },
    KeySpec {
        name: "restart-strategy.fixed-delay.delay",
        aliases: &[],
        default: "1 s",
    },
    KeySpec {
        name: "restart-strategy.failure-rate.max-failures-per-interval",
        aliases: &[],
        default: "1",
    },
    KeySpec {
        name: "restart-strategy.failure-rate.failure-rate-interval",
        aliases: &[],
        default: "1 min",
    },
    KeySpec {
        name: "restart-strategy.failure-rate.delay",
        aliases: &[],
        default: "1 s",
    },
    KeySpec {
        name: "restart-strategy.exponential-delay.initial-backoff",
        aliases: &[],
        default: "1 s",
    },
    KeySpec {
        name: "restart-strategy.exponential-delay.max-backoff",
        aliases: &[],
        default: "1 min",
    },
    KeySpec {
        name: "restart-strategy.exponential-delay.backoff-multiplier",
        aliases: &[],
        default: "1.5",
    },
    KeySpec {
        name: "restart-strategy.exponential-delay.reset-backoff-threshold",
        aliases: &[],
        default: "1 h",
    },
    KeySpec {
        name: "restart-strategy.exponential-delay.jitter-factor",
        aliases: &[],
        default: "0.1",
    },
    KeySpec {
        name: "restart-strategy.exponential-delay.attempts-before-reset-backoff",
        aliases: &[],
        default: "2147483647",
    },
    KeySpec {
        name: "s3.endpoint",
        aliases: &[],
        default: "",
    },
    KeySpec {
        name: "s3.access-key",
        aliases: &[],
        default: "",
    },
    KeySpec {
        name: "s3.secret-key",
        aliases: &[],
        default: "",
    },
    KeySpec {
        name: "s3.region",
        aliases: &[],
        default: "",
    },
    KeySpec {
        name: "s3.path.style.access",
        aliases: &[],
        default: "false",
    },
    KeySpec {
        name: "s3.use-instance-credentials",
        aliases: &[],
        default: "false",
    },
];

/// Raw `key → (value, origin)` entries, layered.
#[derive(Debug, Clone, Default)]
pub struct ConfigLayers {
    entries: BTreeMap<&'static str, (String, Origin)>,
}

impl ConfigLayers {
    /// Adds a layer on top of those already added: its values win.
    pub fn layer<K, V>(
        &mut self,
        origin: Origin,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<&mut Self, ConfigError>
    where
        K: AsRef<str>,
        V: Into<String>,
    {
        for (key, value) in entries {
            let spec = lookup(key.as_ref()).ok_or_else(|| ConfigError::UnknownKey {
                key: key.as_ref().to_owned(),
                origin: origin.clone(),
                closest: closest_key(key.as_ref()),
            })?;
            self.entries
                .insert(spec.name, (value.into(), origin.clone()));
        }
        Ok(self)
    }

    /// Adds the layer of a YAML config file: flat `key: value` lines, or nested maps whose
    /// keys join with dots (`execution: {checkpointing: {interval: 10 s}}`).
    pub fn file(&mut self, path: &Path) -> Result<&mut Self, ConfigError> {
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
        self.layer(Origin::File(path.to_owned()), flat)
    }

    /// Adds the `-D key=value` definitions.
    pub fn definitions(&mut self, definitions: &[String]) -> Result<&mut Self, ConfigError> {
        let pairs = definitions
            .iter()
            .map(|d| {
                d.split_once('=')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| ConfigError::Definition(d.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.layer(Origin::CommandLine, pairs)
    }

    /// The effective value of every known key, with its origin.
    pub fn effective(&self) -> Vec<(&'static str, String, Origin)> {
        KEYS.iter()
            .map(|spec| match self.entries.get(spec.name) {
                Some((value, origin)) => (spec.name, value.clone(), origin.clone()),
                None => (spec.name, spec.default.to_owned(), Origin::Default),
            })
            .collect()
    }

    /// Parses the effective values into a typed [`Config`].
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let value = |key: &'static str| -> (&str, Origin) {
            match self.entries.get(key) {
                Some((v, o)) => (v.as_str(), o.clone()),
                None => {
                    let spec = lookup(key).expect("resolve reads only known keys");
                    (spec.default, Origin::Default)
                }
            }
        };
        let typed =
            |key: &'static str, expected: &'static str, parse: &dyn Fn(&str) -> Option<u64>| {
                let (raw, origin) = value(key);
                parse(raw).ok_or_else(|| ConfigError::InvalidValue {
                    key,
                    value: raw.to_owned(),
                    origin,
                    expected,
                })
            };
        let positive = |s: &str| {
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0 && n <= u32::MAX as u64)
        };
        let duration = |s: &str| {
            parse_duration(s)
                .map(|d| d.as_millis() as u64)
                .filter(|&ms| ms > 0)
        };
        let boolean = |s: &str| match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(1),
            "false" => Some(0),
            _ => None,
        };
        let optional_duration = |key: &'static str| -> Result<Option<Duration>, ConfigError> {
            let (raw, origin) = value(key);
            if raw.trim().is_empty() {
                return Ok(None);
            }
            parse_duration(raw)
                .filter(|d| !d.is_zero())
                .map(Some)
                .ok_or_else(|| ConfigError::InvalidValue {
                    key,
                    value: raw.to_owned(),
                    origin,
                    expected: "a duration such as 10 s",
                })
        };
        let any_duration = |s: &str| parse_duration(s).map(|d| d.as_millis() as u64);
        let count = |s: &str| {
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|&n| n <= u32::MAX as u64)
        };
        let choice = |key: &'static str, choices: &[&'static str], expected: &'static str| {
            let (raw, origin) = value(key);
            let upper = raw.trim().to_ascii_uppercase();
            choices
                .iter()
                .position(|c| *c == upper)
                .ok_or_else(|| ConfigError::InvalidValue {
                    key,
                    value: raw.to_owned(),
                    origin,
                    expected,
                })
        };
        let text = |key: &'static str| {
            let (raw, _) = value(key);
            Some(raw.trim().to_owned()).filter(|s| !s.is_empty())
        };
        let checkpoints = CheckpointConfig {
            interval: optional_duration("execution.checkpointing.interval")?,
            mode: match choice(
                "execution.checkpointing.mode",
                &["EXACTLY_ONCE", "AT_LEAST_ONCE"],
                "EXACTLY_ONCE or AT_LEAST_ONCE",
            )? {
                0 => CheckpointingMode::ExactlyOnce,
                _ => CheckpointingMode::AtLeastOnce,
            },
            min_pause: Duration::from_millis(typed(
                "execution.checkpointing.min-pause",
                "a duration such as 500 ms",
                &any_duration,
            )?),
            timeout: Duration::from_millis(typed(
                "execution.checkpointing.timeout",
                "a duration such as 10 min",
                &duration,
            )?),
            max_concurrent: typed(
                "execution.checkpointing.max-concurrent-checkpoints",
                "a positive integer",
                &positive,
            )? as u32,
            tolerable_failures: typed(
                "execution.checkpointing.tolerable-failed-checkpoints",
                "a non-negative integer",
                &count,
            )? as u32,
            retention: match choice(
                "execution.checkpointing.externalized-checkpoint-retention",
                &[
                    "NO_EXTERNALIZED_CHECKPOINTS",
                    "DELETE_ON_CANCELLATION",
                    "RETAIN_ON_CANCELLATION",
                ],
                "NO_EXTERNALIZED_CHECKPOINTS, DELETE_ON_CANCELLATION or RETAIN_ON_CANCELLATION",
            )? {
                0 => Retention::NoExternalized,
                1 => Retention::DeleteOnCancellation,
                _ => Retention::RetainOnCancellation,
            },
            num_retained: typed(
                "execution.checkpointing.num-retained",
                "a positive integer",
                &positive,
            )? as u32,
            dir: text("execution.checkpointing.dir"),
            history_size: typed(
                "web.checkpoints.history",
                "an integer from 1 to 10000",
                &|s| positive(s).filter(|&n| n <= MAX_HISTORY),
            )? as usize,
        };
        let s3 = S3Config {
            endpoint: text("s3.endpoint"),
            access_key: text("s3.access-key"),
            secret_key: text("s3.secret-key"),
            region: text("s3.region"),
            path_style: typed("s3.path.style.access", "true or false", &boolean)? == 1,
            use_instance_credentials: typed(
                "s3.use-instance-credentials",
                "true or false",
                &boolean,
            )? == 1,
        };
        let float = |key: &'static str, expected: &'static str, valid: &dyn Fn(f64) -> bool| {
            let (raw, origin) = value(key);
            raw.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && valid(*f))
                .ok_or_else(|| ConfigError::InvalidValue {
                    key,
                    value: raw.to_owned(),
                    origin,
                    expected,
                })
        };
        let millis = |key: &'static str| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(typed(
                key,
                "a duration such as 10 s",
                &any_duration,
            )?))
        };
        let restart_type = value("restart-strategy.type").0.trim().to_ascii_lowercase();
        let restart = match restart_type.as_str() {
            "" if checkpoints.interval.is_none() => RestartStrategy::None,
            // With checkpointing and no strategy set: fixed-delay, unlimited attempts.
            "" => RestartStrategy::FixedDelay {
                attempts: u32::MAX,
                delay: millis("restart-strategy.fixed-delay.delay")?,
            },
            "none" | "off" | "disable" => RestartStrategy::None,
            "fixed-delay" | "fixeddelay" => RestartStrategy::FixedDelay {
                attempts: typed(
                    "restart-strategy.fixed-delay.attempts",
                    "a non-negative integer",
                    &count,
                )? as u32,
                delay: millis("restart-strategy.fixed-delay.delay")?,
            },
            "failure-rate" | "failurerate" => RestartStrategy::FailureRate {
                max_failures: typed(
                    "restart-strategy.failure-rate.max-failures-per-interval",
                    "a positive integer",
                    &positive,
                )? as u32,
                interval: Duration::from_millis(typed(
                    "restart-strategy.failure-rate.failure-rate-interval",
                    "a duration such as 1 min",
                    &duration,
                )?),
                delay: millis("restart-strategy.failure-rate.delay")?,
            },
            "exponential-delay" | "exponentialdelay" => RestartStrategy::ExponentialDelay {
                initial: millis("restart-strategy.exponential-delay.initial-backoff")?,
                max: millis("restart-strategy.exponential-delay.max-backoff")?,
                multiplier: float(
                    "restart-strategy.exponential-delay.backoff-multiplier",
                    "a finite number of at least 1",
                    &|f| f >= 1.0,
                )?,
                reset_threshold: millis(
                    "restart-strategy.exponential-delay.reset-backoff-threshold",
                )?,
                jitter: float(
                    "restart-strategy.exponential-delay.jitter-factor",
                    "a number from 0 to 1",
                    &|f| (0.0..=1.0).contains(&f),
                )?,
                attempts: typed(
                    "restart-strategy.exponential-delay.attempts-before-reset-backoff",
                    "a positive integer",
                    &positive,
                )? as u32,
            },
            _ => {
                let (raw, origin) = value("restart-strategy.type");
                return Err(ConfigError::InvalidValue {
                    key: "restart-strategy.type",
                    value: raw.to_owned(),
                    origin,
                    expected: "none, fixed-delay, failure-rate or exponential-delay",
                });
            }
        };
        let config = Config {
            default_parallelism: typed("parallelism.default", "a positive integer", &positive)?
                as u32,
            max_parallelism: typed(
                "pipeline.max-parallelism",
                "an integer from 1 to 32768 (Flink's upper bound)",
                &|s| positive(s).filter(|&n| n <= u64::from(UPPER_MAX_PARALLELISM)),
            )? as u32,
            memory_limit: typed(
                "wasm.memory-limit",
                "a memory size of at least 64 kb (one WebAssembly page), such as 512 mb",
                &|s| parse_memory_size(s).filter(|&n| n >= WASM_PAGE),
            )?,
            call_timeout: Duration::from_millis(typed(
                "wasm.call-timeout",
                "a duration such as 10 s",
                &duration,
            )?),
            compilation_cache: typed("wasm.compilation-cache", "true or false", &boolean)? == 1,
            savepoint_dir: text("execution.checkpointing.savepoint-dir"),
            exception_history_size: typed(
                "web.exception-history-size",
                "an integer from 1 to 10000",
                &|s| positive(s).filter(|&n| n <= MAX_HISTORY),
            )? as usize,
            rest: rest_config(&value)?,
            checkpoints,
            restart,
            s3,
        };
        if config.default_parallelism > config.max_parallelism {
            let (raw, origin) = value("parallelism.default");
            return Err(ConfigError::InvalidValue {
                key: "parallelism.default",
                value: raw.to_owned(),
                origin,
                expected: "at most pipeline.max-parallelism",
            });
        }
        Ok(config)
    }
}

/// The most entries a statistics history keeps: each is kept in memory and served whole.
const MAX_HISTORY: u64 = 10_000;

/// The typed, effective configuration of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `parallelism.default`: subtasks per node when neither the node nor `-p` says.
    pub default_parallelism: u32,
    /// `pipeline.max-parallelism`: the number of key groups, the upper bound of parallelism.
    pub max_parallelism: u32,
    /// `wasm.memory-limit`: the most linear memory one guest instance may have, in bytes.
    pub memory_limit: u64,
    /// `wasm.call-timeout`: the longest one guest call may run before it counts as stuck.
    pub call_timeout: Duration,
    /// `wasm.compilation-cache`: keep compiled components in the user's cache folder.
    pub compilation_cache: bool,
    pub checkpoints: CheckpointConfig,
    /// `execution.checkpointing.savepoint-dir` (`state.savepoints.dir`): where savepoints go
    /// when a request names no folder.
    pub savepoint_dir: Option<String>,
    /// `web.exception-history-size`: the failures `/jobs/:id/exceptions` keeps.
    pub exception_history_size: usize,
    pub rest: RestConfig,
    /// `restart-strategy.*`, with Flink's default: none without checkpointing, fixed-delay
    /// with unlimited attempts with it.
    pub restart: RestartStrategy,
    pub s3: S3Config,
}

/// `execution.checkpointing.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// `interval`: unset means checkpointing is disabled.
    pub interval: Option<Duration>,
    pub mode: CheckpointingMode,
    /// `min-pause`: least time between the end of one checkpoint and the start of the next.
    pub min_pause: Duration,
    /// `timeout`: a checkpoint still incomplete after this is aborted.
    pub timeout: Duration,
    /// `max-concurrent-checkpoints`.
    pub max_concurrent: u32,
    /// `tolerable-failed-checkpoints`: consecutive failures beyond this fail the job.
    pub tolerable_failures: u32,
    /// `externalized-checkpoint-retention`.
    pub retention: Retention,
    /// `num-retained`: completed checkpoints kept.
    pub num_retained: u32,
    /// `dir`: where checkpoints go (a path or an object-store URL); `None` = the default.
    pub dir: Option<String>,
    /// `web.checkpoints.history`: completed checkpoints the statistics keep.
    pub history_size: usize,
}

/// Flink's checkpointing modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CheckpointingMode {
    #[serde(rename = "EXACTLY_ONCE")]
    ExactlyOnce,
    #[serde(rename = "AT_LEAST_ONCE")]
    AtLeastOnce,
}

impl fmt::Display for CheckpointingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckpointingMode::ExactlyOnce => "EXACTLY_ONCE",
            CheckpointingMode::AtLeastOnce => "AT_LEAST_ONCE",
        })
    }
}

/// What happens to a job's checkpoints when it ends: FINISHED always deletes them, FAILED
/// (or a crash) always keeps them, CANCELED keeps them only with `RetainOnCancellation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    NoExternalized,
    DeleteOnCancellation,
    RetainOnCancellation,
}

/// `rest.*`: the job's REST server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestConfig {
    /// `rest.bind-address`; loopback by default.
    pub bind_address: std::net::IpAddr,
    /// `rest.port`; 0 (the default) picks a free port.
    pub port: u16,
    /// `rest.auth-token`, or the content of `rest.auth-token-file`: required as
    /// `Authorization: Bearer <token>` (or the dashboard's cookie) when set; binding to
    /// anything but loopback requires one.
    pub auth_token: Option<String>,
}

fn rest_config<'a>(
    value: &dyn Fn(&'static str) -> (&'a str, Origin),
) -> Result<RestConfig, ConfigError> {
    let invalid = |key: &'static str, expected: &'static str| {
        let (raw, origin) = value(key);
        ConfigError::InvalidValue {
            key,
            value: raw.to_owned(),
            origin,
            expected,
        }
    };
    let bind_address: std::net::IpAddr = value("rest.bind-address")
        .0
        .trim()
        .parse()
        .map_err(|_| invalid("rest.bind-address", "an IP address such as 127.0.0.1"))?;
    let port = value("rest.port")
        .0
        .trim()
        .parse()
        .map_err(|_| invalid("rest.port", "a port number (0: any free port)"))?;
    let auth_token = Some(value("rest.auth-token").0.trim().to_owned()).filter(|t| !t.is_empty());
    // A token in a file stays out of `ps` and of the shell's history.
    let token_file = value("rest.auth-token-file").0.trim();
    let auth_token = match (auth_token, token_file) {
        (token, "") => token,
        (None, file) => {
            let content =
                std::fs::read_to_string(file).map_err(|cause| ConfigError::TokenFile {
                    path: PathBuf::from(file),
                    origin: value("rest.auth-token-file").1,
                    cause,
                })?;
            let token = content.trim();
            if token.is_empty() {
                return Err(invalid(
                    "rest.auth-token-file",
                    "a file holding the token, not an empty one",
                ));
            }
            Some(token.to_owned())
        }
        (Some(_), _) => {
            return Err(invalid(
                "rest.auth-token-file",
                "no file while rest.auth-token is set: set one of the two",
            ));
        }
    };
    if !bind_address.is_loopback() && auth_token.is_none() {
        return Err(invalid(
            "rest.bind-address",
            "a loopback address, unless rest.auth-token is set: \
             a REST server reachable from other machines must require a token",
        ));
    }
    Ok(RestConfig {
        bind_address,
        port,
        auth_token,
    })
}

/// Flink's S3 keys (`s3.*`); unset values come from the usual `AWS_*` variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub region: Option<String>,
    /// `s3.path.style.access`: `http://endpoint/bucket/key` instead of virtual hosts.
    pub path_style: bool,
    /// `s3.use-instance-credentials`: without credentials, ask the cloud's instance metadata
    /// service (a request beyond the endpoint, so only on request).
    pub use_instance_credentials: bool,
}

fn lookup(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter()
        .find(|spec| spec.name == key || spec.aliases.contains(&key))
}

fn closest_key(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .flat_map(|spec| {
            std::iter::once(&spec.name)
                .chain(spec.aliases)
                .map(move |n| (n, spec.name))
        })
        .map(|(candidate, name)| (strsim::jaro_winkler(key, candidate), name))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
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

/// Parses a duration in Flink's format: a number and an optional unit (`500 ms`, `10 s`,
/// `5 min`, `1 h`, `2 d`; milliseconds when no unit is given).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = split_number(text)?;
    let millis_per_unit: u64 = match unit {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
}

/// Parses a memory size in Flink's format: `512 mb`, `1 gb`, `64k`, or bytes without a unit.
pub fn parse_memory_size(text: &str) -> Option<u64> {
    let (number, unit) = split_number(text)?;
    let unit = unit.to_ascii_lowercase();
    let multiplier: u64 = match unit.as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kibibytes" => 1 << 10,
        "m" | "mb" | "mebibytes" => 1 << 20,
        "g" | "gb" | "gibibytes" => 1 << 30,
        "t" | "tb" | "tebibytes" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(multiplier).filter(|&n| n > 0)
}

fn split_number(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number = text[..digits].parse().ok()?;
    Some((number, text[digits..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_follow_flink_formats() {
        assert_eq!(parse_duration("500 ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("5 min"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1 h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("ten s"), None);
        assert_eq!(parse_duration("10 parsecs"), None);
        assert_eq!(parse_memory_size("512 mb"), Some(512 << 20));
        assert_eq!(parse_memory_size("1g"), Some(1 << 30));
        assert_eq!(parse_memory_size("4096"), Some(4096));
        assert_eq!(parse_memory_size("0"), None);
        assert_eq!(parse_memory_size("12 furlongs"), None);
    }

    #[test]
    fn later_layers_win_and_defaults_fill_in() {
        let mut layers = ConfigLayers::default();
        layers
            .layer(
                Origin::Job,
                [("parallelism.default", "3"), ("wasm.call-timeout", "2 s")],
            )
            .unwrap()
            .definitions(&["parallelism.default=4".to_owned()])
            .unwrap();
        let config = layers.resolve().unwrap();
        assert_eq!(config.default_parallelism, 4);
        assert_eq!(config.call_timeout, Duration::from_secs(2));
        assert_eq!(config.max_parallelism, 128);
        assert_eq!(config.memory_limit, 512 << 20);
        assert_eq!(config.checkpoints.interval, None);
        assert_eq!(config.checkpoints.mode, CheckpointingMode::ExactlyOnce);
        assert_eq!(config.checkpoints.timeout, Duration::from_secs(600));
        assert_eq!(config.checkpoints.num_retained, 1);
        assert_eq!(config.checkpoints.retention, Retention::NoExternalized);
        let effective = layers.effective();
        assert!(effective.contains(&("parallelism.default", "4".into(), Origin::CommandLine)));
        assert!(effective.contains(&("wasm.call-timeout", "2 s".into(), Origin::Job)));
        assert!(effective.contains(&("pipeline.max-parallelism", "128".into(), Origin::Default)));
    }

    #[test]
    fn flink_1_names_are_aliases() {
        let mut layers = ConfigLayers::default();
        layers
            .layer(
                Origin::Job,
                [
                    ("state.checkpoints.num-retained", "3"),
                    ("execution.checkpointing.interval", "100 ms"),
                    ("execution.checkpointing.mode", "at_least_once"),
                ],
            )
            .unwrap()
            .definitions(&["state.checkpoints.dir=s3://bucket/chk".to_owned()])
            .unwrap();
        let config = layers.resolve().unwrap();
        assert_eq!(config.checkpoints.num_retained, 3);
        assert_eq!(
            config.checkpoints.interval,
            Some(Duration::from_millis(100))
        );
        assert_eq!(config.checkpoints.mode, CheckpointingMode::AtLeastOnce);
        assert_eq!(config.checkpoints.dir.as_deref(), Some("s3://bucket/chk"));
        let effective = layers.effective();
        assert!(effective.contains(&(
            "execution.checkpointing.num-retained",
            "3".into(),
            Origin::Job
        )));
        let err = ConfigLayers::default()
            .definitions(&["execution.checkpointing.mode=SOMETIMES".to_owned()])
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("expected EXACTLY_ONCE or AT_LEAST_ONCE"),
            "{err}"
        );
    }

    #[test]
    fn restart_strategy_defaults_follow_checkpointing() {
        let config = ConfigLayers::default().resolve().unwrap();
        assert_eq!(config.restart, RestartStrategy::None);
        let mut layers = ConfigLayers::default();
        layers
            .definitions(&["execution.checkpointing.interval=1 s".to_owned()])
            .unwrap();
        assert_eq!(
            layers.resolve().unwrap().restart,
            RestartStrategy::FixedDelay {
                attempts: u32::MAX,
                delay: Duration::from_secs(1)
            }
        );
        layers
            .definitions(&[
                "restart-strategy=exponential-delay".to_owned(),
                "restart-strategy.exponential-delay.jitter-factor=0.5".to_owned(),
            ])
            .unwrap();
        let RestartStrategy::ExponentialDelay {
            initial,
            max,
            multiplier,
            jitter,
            ..
        } = layers.resolve().unwrap().restart
        else {
            panic!("exponential-delay expected");
        };
        assert_eq!(
            (initial, max),
            (Duration::from_secs(1), Duration::from_secs(60))
        );
        assert_eq!((multiplier, jitter), (1.5, 0.5));
        layers
            .definitions(&["restart-strategy.type=sometimes".to_owned()])
            .unwrap();
        assert!(layers.resolve().is_err());
    }

    #[test]
    fn typos_suggest_the_closest_key() {
        let err = ConfigLayers::default()
            .definitions(&["paralelism.default=2".to_owned()])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown config key 'paralelism.default' (from -D); did you mean 'parallelism.default'?"
        );
        let err = ConfigLayers::default()
            .layer(Origin::Job, [("zzz", "1")])
            .unwrap_err();
        assert_eq!(err.to_string(), "unknown config key 'zzz' (from job code)");
    }

    #[test]
    fn bad_values_name_key_and_origin() {
        let mut layers = ConfigLayers::default();
        layers
            .definitions(&["wasm.memory-limit=lots".to_owned()])
            .unwrap();
        assert_eq!(
            layers.resolve().unwrap_err().to_string(),
            "invalid value 'lots' for wasm.memory-limit (from -D): expected a memory size of at least 64 kb (one WebAssembly page), such as 512 mb"
        );
        assert!(matches!(
            ConfigLayers::default().definitions(&["novalue".to_owned()]),
            Err(ConfigError::Definition(_))
        ));
    }

    #[test]
    fn numbers_out_of_range_are_refused() {
        let resolve = |definition: &str| {
            ConfigLayers::default()
                .definitions(&[
                    "restart-strategy=exponential-delay".to_owned(),
                    definition.to_owned(),
                ])
                .and_then(|layers| layers.resolve())
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        for multiplier in ["inf", "NaN", "-inf", "0.5", "1e400"] {
            let err = resolve(&format!(
                "restart-strategy.exponential-delay.backoff-multiplier={multiplier}"
            ))
            .unwrap_err();
            assert!(err.contains("a finite number of at least 1"), "{err}");
        }
        let err = resolve("pipeline.max-parallelism=100000").unwrap_err();
        assert!(err.contains("from 1 to 32768"), "{err}");
        assert_eq!(resolve("pipeline.max-parallelism=32768"), Ok(()));
        let err = resolve("wasm.memory-limit=1 kb").unwrap_err();
        assert!(err.contains("at least 64 kb"), "{err}");
        let err = resolve("web.checkpoints.history=4000000000").unwrap_err();
        assert!(err.contains("from 1 to 10000"), "{err}");
        let err = ConfigLayers::default()
            .layer(Origin::Flag("-p"), [("parallelism.default", "0")])
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("(from -p)"), "{err}");
    }

    #[test]
    fn yaml_files_may_be_flat_or_nested() {
        let dir = std::env::temp_dir().join(format!("cairn-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cairn.yaml");
        std::fs::write(
            &path,
            "parallelism.default: 2\nwasm:\n  call-timeout: 3 s\n  compilation-cache: false\n",
        )
        .unwrap();
        let config = ConfigLayers::default()
            .file(&path)
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(config.default_parallelism, 2);
        assert_eq!(config.call_timeout, Duration::from_secs(3));
        assert!(!config.compilation_cache);
        for (text, kind) in [("- a\n- b\n", "a list"), ("just words\n", "a single value")] {
            std::fs::write(&path, text).unwrap();
            let err = ConfigLayers::default().file(&path).unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "expected keys with values (`parallelism.default: 4`), got {kind}"
                )),
                "{err}"
            );
        }
        std::fs::write(&path, "parallelism.default: [1, 2]\n").unwrap();
        let err = ConfigLayers::default().file(&path).unwrap_err().to_string();
        assert!(
            err.contains("the value of parallelism.default must be a single value, not a list"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
