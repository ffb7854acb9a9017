//! The Python package of mmer: the extension module `mmer._mmer`, which
//! the pure-Python package `mmer` (`python/mmer/`) wraps. This crate owns
//! the crossing between Python and the run library; what a valid
//! conversation record is, how a model predicts and how a recording is
//! analysed stay in `mmer_data`, `mmer_run` and below.
//!
//! - [`predictor`]: a trained model ([`mmer_run::predict::Predictor`]) that
//!   predicts conversation records handed over as JSON Lines.
//! - [`records`]: those records read by mmer's own rules
//!   ([`mmer_data::conversation::parse_conversations`]), errors naming the
//!   record by its place in the caller's list or DataFrame, and the
//!   predictions put back in the caller's order.
//! - [`analyze`](mod@analyze): recordings analysed with the shipped models
//!   ([`mmer_run::analyze::Analyzer`], loaded once), as `mmer analyze` does.
//! - [`error`]: `mmer.MmerError` and how mmer's errors become it.
//!
//! Records come in and results go out as JSON text: the Python layer
//! serialises records (one per line) and parses the answers, which are the
//! serde output `mmer predict --format jsonl` writes, so the numbers are the
//! CLI's. Loading, prediction and analysis release the GIL.

pub mod analyze;
pub mod error;
pub mod predictor;
pub mod records;

use pyo3::prelude::*;

/// The native part of the `mmer` package; import `mmer` instead.
#[pymodule]
mod _mmer {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::predictor::Predictor;

    #[pymodule_export]
    use crate::records::check_columns;

    #[pymodule_export]
    use crate::analyze::PyAnalyzer;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("MmerError", m.py().get_type::<crate::error::MmerError>())?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}
