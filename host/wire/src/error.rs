use std::fmt;

/// An error from job code. Its message is what the user sees when the job fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error(message.to_string())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Any standard error converts, so `?` works on I/O, parsing and UTF-8 errors.
impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        Error(error.to_string())
    }
}

impl From<Error> for String {
    fn from(error: Error) -> Self {
        error.0
    }
}
