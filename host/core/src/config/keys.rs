//! Every configuration key, declared once: its name, Flink 1.x aliases, default, meaning
//! (the README's table is rendered from these and checked) and how its value parses.

use std::net::IpAddr;
use std::time::Duration;

use super::units::{parse_duration, parse_memory_size};
use super::{CheckpointingMode, Retention, UPPER_MAX_PARALLELISM};

/// A known configuration key whose value parses into a `T`.
pub(super) struct Key<T> {
    pub(super) name: &'static str,
    /// Older (Flink 1.x) names accepted for the same key.
    pub(super) aliases: &'static [&'static str],
    /// The value when no layer sets one (`""`: unset), as `--print-config` shows it.
    pub(super) default: &'static str,
    /// The README's default column, where `default` alone would not say it.
    pub(super) readme_default: Option<&'static str>,
    /// What the key does, as the README's table says it.
    pub(super) meaning: &'static str,
    /// What a valid value looks like, for the error naming an invalid one.
    pub(super) expected: &'static str,
    /// The typed value, or `None` when the text is not a valid value.
    pub(super) parse: fn(&str) -> Option<T>,
}

/// A key without its type: what lookup, `--print-config` and the README read.
#[derive(Debug, Clone, Copy)]
pub(super) struct KeySpec {
    pub(super) name: &'static str,
    pub(super) aliases: &'static [&'static str],
    pub(super) default: &'static str,
    // Only the README check reads these two, and it is a test.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) readme_default: Option<&'static str>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) meaning: &'static str,
}

impl<T> Key<T> {
    const fn spec(&self) -> KeySpec {
        KeySpec {
            name: self.name,
            aliases: self.aliases,
            default: self.default,
            readme_default: self.readme_default,
            meaning: self.meaning,
        }
    }
}

/// Declares each key as a const and lists them all in [`ALL`], so that no key can be
/// declared without being known to lookup, `--print-config` and the README check.
macro_rules! keys {
    ($($id:ident: $t:ty = $key:expr;)*) => {
        $(pub(super) const $id: Key<$t> = $key;)*
        /// Every key, in the order `--print-config` and the README's table show them.
        pub(super) const ALL: &[KeySpec] = &[$($id.spec()),*];
    };
}

keys! {
    PARALLELISM: u32 = Key {
        name: "parallelism.default",
        aliases: &[],
        default: "1",
        readme_default: None,
        meaning: "subtasks per node unless the node sets its own (`-p` sets this)",
        expected: "a positive integer",
        parse: positive,
    };
    MAX_PARALLELISM: u32 = Key {
        name: "pipeline.max-parallelism",
        aliases: &[],
        default: "128",
        readme_default: None,
        meaning: "number of key groups; the upper bound of any parallelism (at most 32768)",
        expected: "an integer from 1 to 32768 (Flink's upper bound)",
        parse: |s| positive(s).filter(|&n| n <= UPPER_MAX_PARALLELISM),
    };
    WATERMARK_INTERVAL: Option<Duration> = Key {
        name: "pipeline.auto-watermark-interval",
        aliases: &[],
        default: "200 ms",
        readme_default: None,
        meaning: "how often nodes with a watermark strategy emit watermarks and check \
                  idleness (`0`: never; only the end of input ends event time)",
        expected: "a duration such as 200 ms, or 0",
        parse: |s| parse_duration(s).map(|d| (!d.is_zero()).then_some(d)),
    };
    MEMORY_LIMIT: u64 = Key {
        name: "wasm.memory-limit",
        aliases: &[],
        default: "512 mb",
        readme_default: None,
        meaning: "most linear memory one guest instance may have",
        expected: "a memory size of at least 64 kb (one WebAssembly page), such as 512 mb",
        parse: |s| parse_memory_size(s).filter(|&n| n >= WASM_PAGE),
    };
    CALL_TIMEOUT: Duration = Key {
        name: "wasm.call-timeout",
        aliases: &[],
        default: "10 s",
        readme_default: None,
        meaning: "longest one guest call may run before it is interrupted",
        expected: "a duration such as 10 s",
        parse: positive_duration,
    };
    COMPILATION_CACHE: bool = Key {
        name: "wasm.compilation-cache",
        aliases: &[],
        default: "true",
        readme_default: None,
        meaning: "keep compiled components in `$XDG_CACHE_HOME/cairn` (read before the job's \
                  code runs, so set it in the file or with `-D`)",
        expected: "true or false",
        parse: boolean,
    };
    CHECKPOINT_INTERVAL: Option<Duration> = Key {
        name: "execution.checkpointing.interval",
        aliases: &[],
        default: "",
        readme_default: Some("unset (off)"),
        meaning: "time between checkpoints",
        expected: "a duration such as 10 s",
        parse: |s| match s.trim() {
            "" => Some(None),
            _ => positive_duration(s).map(Some),
        },
    };
    CHECKPOINT_MODE: CheckpointingMode = Key {
        name: "execution.checkpointing.mode",
        aliases: &[],
        default: "EXACTLY_ONCE",
        readme_default: Some("`EXACTLY_ONCE`"),
        meaning: "or `AT_LEAST_ONCE` (no barrier alignment: faster, may duplicate after a \
                  restore)",
        expected: "EXACTLY_ONCE or AT_LEAST_ONCE",
        parse: |s| {
            choice(
                &[
                    ("EXACTLY_ONCE", CheckpointingMode::ExactlyOnce),
                    ("AT_LEAST_ONCE", CheckpointingMode::AtLeastOnce),
                ],
                s,
            )
        },
    };
    CHECKPOINT_MIN_PAUSE: Duration = Key {
        name: "execution.checkpointing.min-pause",
        aliases: &[],
        default: "0 ms",
        readme_default: None,
        meaning: "least time from one checkpoint's end to the next one's start",
        expected: "a duration such as 500 ms",
        parse: parse_duration,
    };
    CHECKPOINT_TIMEOUT: Duration = Key {
        name: "execution.checkpointing.timeout",
        aliases: &[],
        default: "10 min",
        readme_default: None,
        meaning: "a checkpoint not complete by then is aborted (and its files deleted)",
        expected: "a duration such as 10 min",
        parse: positive_duration,
    };
    CHECKPOINT_MAX_CONCURRENT: u32 = Key {
        name: "execution.checkpointing.max-concurrent-checkpoints",
        aliases: &[],
        default: "1",
        readme_default: None,
        meaning: "checkpoints in flight at once",
        expected: "a positive integer",
        parse: positive,
    };
    CHECKPOINT_TOLERABLE_FAILURES: u32 = Key {
        name: "execution.checkpointing.tolerable-failed-checkpoints",
        aliases: &[],
        default: "0",
        readme_default: None,
        meaning: "consecutive failed checkpoints allowed before the job fails",
        expected: "a non-negative integer",
        parse: count,
    };
    CHECKPOINT_RETENTION: Retention = Key {
        name: "execution.checkpointing.externalized-checkpoint-retention",
        aliases: &[],
        default: "NO_EXTERNALIZED_CHECKPOINTS",
        readme_default: Some("`NO_EXTERNALIZED_CHECKPOINTS`"),
        meaning: "or `DELETE_ON_CANCELLATION`, `RETAIN_ON_CANCELLATION` (see below)",
        expected: "NO_EXTERNALIZED_CHECKPOINTS, DELETE_ON_CANCELLATION or RETAIN_ON_CANCELLATION",
        parse: |s| {
            choice(
                &[
                    ("NO_EXTERNALIZED_CHECKPOINTS", Retention::NoExternalized),
                    ("DELETE_ON_CANCELLATION", Retention::DeleteOnCancellation),
                    ("RETAIN_ON_CANCELLATION", Retention::RetainOnCancellation),
                ],
                s,
            )
        },
    };
    CHECKPOINT_NUM_RETAINED: u32 = Key {
        name: "execution.checkpointing.num-retained",
        aliases: &["state.checkpoints.num-retained"],
        default: "1",
        readme_default: None,
        meaning: "completed checkpoints kept",
        expected: "a positive integer",
        parse: positive,
    };
    CHECKPOINT_DIR: Option<String> = Key {
        name: "execution.checkpointing.dir",
        aliases: &["state.checkpoints.dir"],
        default: "",
        readme_default: Some("`~/.local/state/cairn/checkpoints`"),
        meaning: "a path, `file://`, `s3://bucket/prefix`, `gs://…`, `az://…`",
        expected: "any text",
        parse: text,
    };
    SAVEPOINT_DIR: Option<String> = Key {
        name: "execution.checkpointing.savepoint-dir",
        aliases: &["state.savepoints.dir"],
        default: "",
        readme_default: Some("none"),
        meaning: "where savepoints go when a command names no folder",
        expected: "any text",
        parse: text,
    };
    CHECKPOINT_HISTORY: usize = Key {
        name: "web.checkpoints.history",
        aliases: &[],
        default: "10",
        readme_default: None,
        meaning: "completed checkpoints the statistics (REST, dashboard) keep",
        expected: "an integer from 1 to 10000",
        parse: history,
    };
    EXCEPTION_HISTORY: usize = Key {
        name: "web.exception-history-size",
        aliases: &[],
        default: "16",
        readme_default: None,
        meaning: "failures `/jobs/:id/exceptions` keeps (older ones are dropped, and it says \
                  `truncated`)",
        expected: "an integer from 1 to 10000",
        parse: history,
    };
    REST_PORT: u16 = Key {
        name: "rest.port",
        aliases: &[],
        default: "0",
        readme_default: Some("0 (any free port)"),
        meaning: "the REST API's port",
        expected: "a port number (0: any free port)",
        parse: |s| s.trim().parse().ok(),
    };
    REST_BIND_ADDRESS: IpAddr = Key {
        name: "rest.bind-address",
        aliases: &[],
        default: "127.0.0.1",
        readme_default: None,
        meaning: "where the job's REST API listens; anything but loopback requires \
                  `rest.auth-token`",
        expected: "an IP address such as 127.0.0.1",
        parse: |s| s.trim().parse().ok(),
    };
    REST_AUTH_TOKEN: Option<String> = Key {
        name: "rest.auth-token",
        aliases: &[],
        default: "",
        readme_default: Some("none"),
        meaning: "when set, every REST request needs `Authorization: Bearer <token>` (or the \
                  dashboard's cookie, see below)",
        expected: "any text",
        parse: text,
    };
    REST_AUTH_TOKEN_FILE: Option<String> = Key {
        name: "rest.auth-token-file",
        aliases: &[],
        default: "",
        readme_default: Some("none"),
        meaning: "a file whose content (trimmed) is `rest.auth-token`, so the token stays out \
                  of `ps`; a missing or empty file is an error",
        expected: "any text",
        parse: text,
    };
    RESTART_TYPE: Option<RestartType> = Key {
        name: "restart-strategy.type",
        aliases: &["restart-strategy"],
        default: "",
        readme_default: Some("none; with checkpointing: fixed-delay, unlimited attempts"),
        meaning: "`none`, `fixed-delay`, `failure-rate`, `exponential-delay`",
        expected: "none, fixed-delay, failure-rate or exponential-delay",
        parse: |s| {
            if s.trim().is_empty() {
                return Some(None);
            }
            choice(
                &[
                    ("none", RestartType::None),
                    ("off", RestartType::None),
                    ("disable", RestartType::None),
                    ("fixed-delay", RestartType::FixedDelay),
                    ("fixeddelay", RestartType::FixedDelay),
                    ("failure-rate", RestartType::FailureRate),
                    ("failurerate", RestartType::FailureRate),
                    ("exponential-delay", RestartType::ExponentialDelay),
                    ("exponentialdelay", RestartType::ExponentialDelay),
                ],
                s,
            )
            .map(Some)
        },
    };
    FIXED_DELAY_ATTEMPTS: u32 = Key {
        name: "restart-strategy.fixed-delay.attempts",
        aliases: &[],
        default: "1",
        readme_default: None,
        meaning: "fixed-delay: restarts allowed",
        expected: "a non-negative integer",
        parse: count,
    };
    FIXED_DELAY_DELAY: Duration = Key {
        name: "restart-strategy.fixed-delay.delay",
        aliases: &[],
        default: "1 s",
        readme_default: None,
        meaning: "fixed-delay (also the default with checkpointing): wait before each restart",
        expected: "a duration such as 10 s",
        parse: parse_duration,
    };
    FAILURE_RATE_MAX_FAILURES: u32 = Key {
        name: "restart-strategy.failure-rate.max-failures-per-interval",
        aliases: &[],
        default: "1",
        readme_default: None,
        meaning: "failure-rate: failures allowed within the interval; one more fails the job",
        expected: "a positive integer",
        parse: positive,
    };
    FAILURE_RATE_INTERVAL: Duration = Key {
        name: "restart-strategy.failure-rate.failure-rate-interval",
        aliases: &[],
        default: "1 min",
        readme_default: None,
        meaning: "failure-rate: the window failures are counted in",
        expected: "a duration such as 1 min",
        parse: positive_duration,
    };
    FAILURE_RATE_DELAY: Duration = Key {
        name: "restart-strategy.failure-rate.delay",
        aliases: &[],
        default: "1 s",
        readme_default: None,
        meaning: "failure-rate: wait before each restart",
        expected: "a duration such as 10 s",
        parse: parse_duration,
    };
    EXPONENTIAL_INITIAL: Duration = Key {
        name: "restart-strategy.exponential-delay.initial-backoff",
        aliases: &[],
        default: "1 s",
        readme_default: None,
        meaning: "exponential-delay: wait before the first restart",
        expected: "a duration such as 10 s",
        parse: parse_duration,
    };
    EXPONENTIAL_MAX: Duration = Key {
        name: "restart-strategy.exponential-delay.max-backoff",
        aliases: &[],
        default: "1 min",
        readme_default: None,
        meaning: "exponential-delay: the longest wait the delays grow to",
        expected: "a duration such as 10 s",
        parse: parse_duration,
    };
    EXPONENTIAL_MULTIPLIER: f64 = Key {
        name: "restart-strategy.exponential-delay.backoff-multiplier",
        aliases: &[],
        default: "1.5",
        readme_default: None,
        meaning: "exponential-delay: each wait is the previous one times this",
        expected: "a finite number of at least 1",
        parse: |s| number(s).filter(|&f| f >= 1.0),
    };
    EXPONENTIAL_RESET: Duration = Key {
        name: "restart-strategy.exponential-delay.reset-backoff-threshold",
        aliases: &[],
        default: "1 h",
        readme_default: None,
        meaning: "exponential-delay: a run longer than this resets the wait and the attempts",
        expected: "a duration such as 10 s",
        parse: parse_duration,
    };
    EXPONENTIAL_JITTER: f64 = Key {
        name: "restart-strategy.exponential-delay.jitter-factor",
        aliases: &[],
        default: "0.1",
        readme_default: None,
        meaning: "exponential-delay: each wait varies by ± this fraction of it",
        expected: "a number from 0 to 1",
        parse: |s| number(s).filter(|f| (0.0..=1.0).contains(f)),
    };
    EXPONENTIAL_ATTEMPTS: u32 = Key {
        name: "restart-strategy.exponential-delay.attempts-before-reset-backoff",
        aliases: &[],
        default: "2147483647",
        readme_default: Some("unlimited"),
        meaning: "exponential-delay: restarts allowed without a reset before the job fails",
        expected: "a positive integer",
        parse: positive,
    };
    S3_ENDPOINT: Option<String> = Key {
        name: "s3.endpoint",
        aliases: &[],
        default: "",
        readme_default: Some("from `AWS_*` variables"),
        meaning: "the S3 API's URL, for S3-compatible stores (MinIO, moto, …)",
        expected: "any text",
        parse: text,
    };
    S3_ACCESS_KEY: Option<String> = Key {
        name: "s3.access-key",
        aliases: &[],
        default: "",
        readme_default: Some("from `AWS_*` variables"),
        meaning: "the S3 access key id",
        expected: "any text",
        parse: text,
    };
    S3_SECRET_KEY: Option<String> = Key {
        name: "s3.secret-key",
        aliases: &[],
        default: "",
        readme_default: Some("from `AWS_*` variables"),
        meaning: "the S3 secret access key",
        expected: "any text",
        parse: text,
    };
    S3_REGION: Option<String> = Key {
        name: "s3.region",
        aliases: &[],
        default: "",
        readme_default: Some("from `AWS_*` variables"),
        meaning: "the S3 bucket's region",
        expected: "any text",
        parse: text,
    };
    S3_PATH_STYLE: bool = Key {
        name: "s3.path.style.access",
        aliases: &[],
        default: "false",
        readme_default: None,
        meaning: "address objects as `endpoint/bucket/key` rather than by virtual host (as \
                  MinIO and moto need)",
        expected: "true or false",
        parse: boolean,
    };
    S3_INSTANCE_CREDENTIALS: bool = Key {
        name: "s3.use-instance-credentials",
        aliases: &[],
        default: "false",
        readme_default: None,
        meaning: "with no other S3 credentials, ask the cloud's instance metadata service \
                  (169.254.169.254) for them; otherwise such a store is refused",
        expected: "true or false",
        parse: boolean,
    };
}

/// The choices of `restart-strategy.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RestartType {
    None,
    FixedDelay,
    FailureRate,
    ExponentialDelay,
}

/// The smallest `wasm.memory-limit`: one WebAssembly page.
const WASM_PAGE: u64 = 64 << 10;
/// The most entries a statistics history keeps: each is kept in memory and served whole.
const MAX_HISTORY: usize = 10_000;

/// The value named `text`, ignoring case (Flink's enum values are case-insensitive).
fn choice<T: Copy>(choices: &[(&str, T)], text: &str) -> Option<T> {
    let text = text.trim();
    choices
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|&(_, value)| value)
}

fn count(text: &str) -> Option<u32> {
    text.trim().parse().ok()
}

fn positive(text: &str) -> Option<u32> {
    count(text).filter(|&n| n > 0)
}

fn history(text: &str) -> Option<usize> {
    positive(text)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= MAX_HISTORY)
}

fn positive_duration(text: &str) -> Option<Duration> {
    parse_duration(text).filter(|d| !d.is_zero())
}

fn boolean(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Free text, trimmed; empty means unset.
fn text(text: &str) -> Option<Option<String>> {
    let text = text.trim();
    Some((!text.is_empty()).then(|| text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_choice_defaults_parse() {
        let mut names: Vec<&str> = ALL
            .iter()
            .flat_map(|k| std::iter::once(&k.name).chain(k.aliases))
            .copied()
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a name or alias is declared twice");
        // Each typed default is what an unset key resolves to.
        assert_eq!(
            (CHECKPOINT_MODE.parse)(CHECKPOINT_MODE.default),
            Some(CheckpointingMode::ExactlyOnce)
        );
        assert_eq!(
            (CHECKPOINT_RETENTION.parse)(CHECKPOINT_RETENTION.default),
            Some(Retention::NoExternalized)
        );
        assert_eq!((RESTART_TYPE.parse)(RESTART_TYPE.default), Some(None));
        assert_eq!(
            (EXPONENTIAL_ATTEMPTS.parse)(EXPONENTIAL_ATTEMPTS.default),
            Some(i32::MAX as u32)
        );
    }

    #[test]
    fn choices_match_by_name_ignoring_case() {
        assert_eq!(
            (CHECKPOINT_RETENTION.parse)(" retain_on_cancellation "),
            Some(Retention::RetainOnCancellation)
        );
        assert_eq!(
            (RESTART_TYPE.parse)("Failure-Rate"),
            Some(Some(RestartType::FailureRate))
        );
        assert_eq!((RESTART_TYPE.parse)("off"), Some(Some(RestartType::None)));
        assert_eq!((RESTART_TYPE.parse)("sometimes"), None);
    }
}
