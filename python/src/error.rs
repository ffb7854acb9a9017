//! `mmer.MmerError` (a `ValueError`) and how this crate's errors become
//! it. Wrong Python types never get here: pyo3's argument conversion and
//! the Python layer raise `TypeError` for them.

use pyo3::PyErr;
use pyo3::exceptions::PyValueError;

pyo3::create_exception!(
    mmer,
    MmerError,
    PyValueError,
    "An error mmer reports, with the message the mmer command line would print: a conversation record that breaks mmer's rules (naming the record), a missing or damaged model (naming its path), a recording ffmpeg cannot read."
);

/// Errors of the Python package's native module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What the run library refused or failed on (loading a model,
    /// predicting, analysing); the message is its whole cause chain.
    #[error("{}", chain(.0.as_ref()))]
    Run(Box<mmer_run::Error>),
    /// Conversation records that break mmer's rules; the message is
    /// mmer's, with the record (or DataFrame row) in place of the line.
    #[error("{0}")]
    Records(String),
    /// An option of `mmer.analyze` mmer cannot use.
    #[error("{0}")]
    Option(String),
    /// A result that could not be written as JSON for the Python layer.
    #[error("writing the result for Python: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<mmer_run::Error> for Error {
    fn from(err: mmer_run::Error) -> Self {
        Error::Run(Box::new(err))
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        MmerError::new_err(err.to_string())
    }
}

/// The error and its causes joined by `: `, each said once, as `mmer`
/// prints them (library errors often end their message with their
/// cause's, which a plain walk of the chain would repeat).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let message = e.to_string();
        let said = out.ends_with(&format!(": {message}")) || out.ends_with(&format!("({message})"));
        if !said {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&message);
        }
        cause = e.source();
    }
    out
}
