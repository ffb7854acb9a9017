//! `mmer._mmer.Predictor`: a trained model (a `seed-<k>` directory of a
//! run) loaded once, predicting the conversation records the Python layer
//! hands over as JSON Lines (see [`crate::records`]).

use std::path::PathBuf;

use mmer_run::predict::Predictor as RunPredictor;
use pyo3::prelude::*;

use crate::error::{Error, Result};
use crate::records::{self, Source};

/// A trained mmer model; `mmer.Predictor` wraps it.
#[pyclass(frozen, module = "mmer._mmer", name = "Predictor")]
pub struct Predictor {
    inner: RunPredictor,
    dir: PathBuf,
}

// PyO3 places a pyclass inside a Python object, which Python's allocator
// aligns to 16 bytes: a more aligned type must be boxed (as
// `crate::analyze::PyAnalyzer` boxes the analyser).
const _: () = assert!(std::mem::align_of::<Predictor>() <= 16);
const _: () = assert!(std::mem::align_of::<crate::analyze::PyAnalyzer>() <= 16);

impl Predictor {
    fn load_from(dir: PathBuf, models_dir: Option<PathBuf>) -> Result<Self> {
        let models_dir = models_dir.unwrap_or_else(mmer_text::default_models_dir);
        let inner = RunPredictor::load_with(&dir, &models_dir)?;
        Ok(Self { inner, dir })
    }

    fn predict_records(&self, records: &[u8], source: Source<'_>) -> Result<String> {
        let labels = &self.inner.checkpoint().labels;
        let dialogues = records::parse(records, source, labels)?;
        let predictions = self.inner.predict(dialogues)?;
        let ordered = records::in_record_order(records, &predictions)?;
        Ok(serde_json::to_string(&ordered)?)
    }
}

#[pymethods]
impl Predictor {
    /// Loads the model in `path` (its weights checked against their
    /// recorded SHA-256) and the text encoder it was trained with, from
    /// `models_dir` (default: `$MMER_MODELS_DIR`, else `./models`).
    #[staticmethod]
    #[pyo3(signature = (path, models_dir = None))]
    fn load(py: Python<'_>, path: PathBuf, models_dir: Option<PathBuf>) -> PyResult<Self> {
        Ok(py.detach(|| Self::load_from(path, models_dir))?)
    }

    /// The classes, in the order of the model's outputs.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.inner.checkpoint().labels.classes.clone()
    }

    /// Whether a turn may carry several classes.
    #[getter]
    fn multi_label(&self) -> bool {
        self.inner.checkpoint().labels.multi_label
    }

    /// The model directory as given to `load`.
    #[getter]
    fn path(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The model's metadata as JSON: `model_dir`, `model_sha256`, `corpus`,
    /// `seed`, `labels` (`name`, `classes`, `multi_label`), `text_encoder`,
    /// `modalities`, `version`.
    fn info_json(&self) -> PyResult<String> {
        let info = self.inner.summary();
        Ok(serde_json::to_string(&info).map_err(Error::from)?)
    }

    /// Predicts conversation records given as JSON Lines (UTF-8, one record
    /// per line): a JSON array with, per record in the same order, the
    /// object `mmer predict --format jsonl` writes for its turn. `source`
    /// and `noun` name the records in error messages (`conversation`,
    /// `record`; `DataFrame`, `row`).
    fn predict_jsonl(
        &self,
        py: Python<'_>,
        records: &[u8],
        source: &str,
        noun: &str,
    ) -> PyResult<String> {
        let source = Source { name: source, noun };
        Ok(py.detach(|| self.predict_records(records, source))?)
    }

    fn __repr__(&self) -> String {
        format!("Predictor.load({:?})", self.dir.display().to_string())
    }
}
