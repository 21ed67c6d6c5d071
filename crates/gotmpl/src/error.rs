//! The crate's errors. Messages follow Go's text/template word for word where Go has
//! one, so a chart author sees what Helm would have shown.

/// A template failed to parse: `template: NAME:LINE: …`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
}

/// Why an execution stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecErrorKind {
    /// The template itself failed, as it would in Go.
    Template,
    /// One of our limits (depth, output size, step budget) stopped a runaway template.
    Limit,
}

/// A template failed to execute: `template: NAME:LINE:COL: executing "NAME" at <…>: …`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExecError {
    /// The template being executed when it failed.
    pub template: String,
    pub message: String,
    pub kind: ExecErrorKind,
}

/// Any failure of this crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A bad argument to the API itself (e.g. an unknown option).
    #[error("{0}")]
    Usage(String),
}
