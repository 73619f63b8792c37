//! Configuration: Flink's key names, their defaults, and where each value came from.
//!
//! Values come in layers, lowest precedence first: the config file, the job's own graph
//! config (set in code), then `-D key=value` on the command line. Keys are checked against
//! the known ones (deprecated Flink 1.x names are accepted as aliases); a typo gets an error
//! naming the closest known key. Each key is declared once, in [`keys`]: lookup, parsing,
//! `--print-config` and the README's table all read that declaration.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::restart::RestartStrategy;
use keys::{Key, KeySpec, RestartType};

mod file;
mod keys;
#[cfg(test)]
mod readme;
mod units;

pub use units::{parse_duration, parse_memory_size};

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

fn suggestion(closest: &Option<&'static str>) -> String {
    closest
        .map(|k| format!("; did you mean '{k}'?"))
        .unwrap_or_default()
}

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
        let entries = file::read(path)?;
        self.layer(Origin::File(path.to_owned()), entries)
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
        keys::ALL
            .iter()
            .map(|spec| match self.entries.get(spec.name) {
                Some((value, origin)) => (spec.name, value.clone(), origin.clone()),
                None => (spec.name, spec.default.to_owned(), Origin::Default),
            })
            .collect()
    }

    /// Parses the effective values into a typed [`Config`].
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let checkpoints = CheckpointConfig {
            interval: self.get(&keys::CHECKPOINT_INTERVAL)?,
            mode: self.get(&keys::CHECKPOINT_MODE)?,
            min_pause: self.get(&keys::CHECKPOINT_MIN_PAUSE)?,
            timeout: self.get(&keys::CHECKPOINT_TIMEOUT)?,
            max_concurrent: self.get(&keys::CHECKPOINT_MAX_CONCURRENT)?,
            tolerable_failures: self.get(&keys::CHECKPOINT_TOLERABLE_FAILURES)?,
            retention: self.get(&keys::CHECKPOINT_RETENTION)?,
            num_retained: self.get(&keys::CHECKPOINT_NUM_RETAINED)?,
            dir: self.get(&keys::CHECKPOINT_DIR)?,
            history_size: self.get(&keys::CHECKPOINT_HISTORY)?,
        };
        let s3 = S3Config {
            endpoint: self.get(&keys::S3_ENDPOINT)?,
            access_key: self.get(&keys::S3_ACCESS_KEY)?,
            secret_key: self.get(&keys::S3_SECRET_KEY)?,
            region: self.get(&keys::S3_REGION)?,
            path_style: self.get(&keys::S3_PATH_STYLE)?,
            use_instance_credentials: self.get(&keys::S3_INSTANCE_CREDENTIALS)?,
        };
        let restart = self.restart(checkpoints.interval.is_some())?;
        let config = Config {
            default_parallelism: self.get(&keys::PARALLELISM)?,
            max_parallelism: self.get(&keys::MAX_PARALLELISM)?,
            watermark_interval: self.get(&keys::WATERMARK_INTERVAL)?,
            memory_limit: self.get(&keys::MEMORY_LIMIT)?,
            call_timeout: self.get(&keys::CALL_TIMEOUT)?,
            compilation_cache: self.get(&keys::COMPILATION_CACHE)?,
            savepoint_dir: self.get(&keys::SAVEPOINT_DIR)?,
            exception_history_size: self.get(&keys::EXCEPTION_HISTORY)?,
            rest: self.rest()?,
            checkpoints,
            restart,
            s3,
        };
        if config.default_parallelism > config.max_parallelism {
            return Err(self.invalid(&keys::PARALLELISM, "at most pipeline.max-parallelism"));
        }
        Ok(config)
    }

    /// `restart-strategy.*`: only the chosen strategy's keys are read.
    fn restart(&self, checkpointing: bool) -> Result<RestartStrategy, ConfigError> {
        Ok(match self.get(&keys::RESTART_TYPE)? {
            None if !checkpointing => RestartStrategy::None,
            // With checkpointing and no strategy set: fixed-delay, unlimited attempts.
            None => RestartStrategy::FixedDelay {
                attempts: u32::MAX,
                delay: self.get(&keys::FIXED_DELAY_DELAY)?,
            },
            Some(RestartType::None) => RestartStrategy::None,
            Some(RestartType::FixedDelay) => RestartStrategy::FixedDelay {
                attempts: self.get(&keys::FIXED_DELAY_ATTEMPTS)?,
                delay: self.get(&keys::FIXED_DELAY_DELAY)?,
            },
            Some(RestartType::FailureRate) => RestartStrategy::FailureRate {
                max_failures: self.get(&keys::FAILURE_RATE_MAX_FAILURES)?,
                interval: self.get(&keys::FAILURE_RATE_INTERVAL)?,
                delay: self.get(&keys::FAILURE_RATE_DELAY)?,
            },
            Some(RestartType::ExponentialDelay) => RestartStrategy::ExponentialDelay {
                initial: self.get(&keys::EXPONENTIAL_INITIAL)?,
                max: self.get(&keys::EXPONENTIAL_MAX)?,
                multiplier: self.get(&keys::EXPONENTIAL_MULTIPLIER)?,
                reset_threshold: self.get(&keys::EXPONENTIAL_RESET)?,
                jitter: self.get(&keys::EXPONENTIAL_JITTER)?,
                attempts: self.get(&keys::EXPONENTIAL_ATTEMPTS)?,
            },
        })
    }

    /// `rest.*`, with the checks that span keys.
    fn rest(&self) -> Result<RestConfig, ConfigError> {
        let bind_address = self.get(&keys::REST_BIND_ADDRESS)?;
        let port = self.get(&keys::REST_PORT)?;
        let auth_token = self.get(&keys::REST_AUTH_TOKEN)?;
        // A token in a file stays out of `ps` and of the shell's history.
        let token_file = &keys::REST_AUTH_TOKEN_FILE;
        let auth_token = match (auth_token, self.get(token_file)?) {
            (token, None) => token,
            (None, Some(file)) => {
                let content =
                    std::fs::read_to_string(&file).map_err(|cause| ConfigError::TokenFile {
                        path: PathBuf::from(file),
                        origin: self.raw(token_file).1,
                        cause,
                    })?;
                let token = content.trim();
                if token.is_empty() {
                    return Err(
                        self.invalid(token_file, "a file holding the token, not an empty one")
                    );
                }
                Some(token.to_owned())
            }
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    token_file,
                    "no file while rest.auth-token is set: set one of the two",
                ));
            }
        };
        if !bind_address.is_loopback() && auth_token.is_none() {
            return Err(self.invalid(
                &keys::REST_BIND_ADDRESS,
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

    /// A key's effective value, parsed.
    fn get<T>(&self, key: &Key<T>) -> Result<T, ConfigError> {
        (key.parse)(self.raw(key).0).ok_or_else(|| self.invalid(key, key.expected))
    }

    /// A key's effective text and where it came from.
    fn raw<T>(&self, key: &Key<T>) -> (&str, Origin) {
        match self.entries.get(key.name) {
            Some((value, origin)) => (value.as_str(), origin.clone()),
            None => (key.default, Origin::Default),
        }
    }

    /// The error naming a key's effective value as invalid.
    fn invalid<T>(&self, key: &Key<T>, expected: &'static str) -> ConfigError {
        let (value, origin) = self.raw(key);
        ConfigError::InvalidValue {
            key: key.name,
            value: value.to_owned(),
            origin,
            expected,
        }
    }
}

/// The typed, effective configuration of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `parallelism.default`: subtasks per node when neither the node nor `-p` says.
    pub default_parallelism: u32,
    /// `pipeline.max-parallelism`: the number of key groups, the upper bound of parallelism.
    pub max_parallelism: u32,
    /// `pipeline.auto-watermark-interval`: how often watermarks are made; `None`: never.
    pub watermark_interval: Option<Duration>,
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
    keys::ALL
        .iter()
        .find(|spec| spec.name == key || spec.aliases.contains(&key))
}

fn closest_key(key: &str) -> Option<&'static str> {
    keys::ALL
        .iter()
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
    fn every_strategy_resolves_with_its_defaults() {
        for strategy in ["none", "fixed-delay", "failure-rate", "exponential-delay"] {
            let mut layers = ConfigLayers::default();
            layers
                .definitions(&[format!("restart-strategy.type={strategy}")])
                .unwrap();
            assert!(layers.resolve().is_ok(), "{strategy}");
        }
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
