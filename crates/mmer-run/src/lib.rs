//! The run and predict library of mmer: what a front end (the `mmer` CLI;
//! later the server and the Python package) calls to train, evaluate and
//! predict, so that binaries only parse arguments and print.
//!
//! - [`data`]: where a run's data comes from ([`DataConfig`]) and how
//!   transcripts become the text modality (frozen encoders, feature store).
//! - [`labels`]: a run's label set, a preset or declared classes
//!   ([`Labels`]).
//! - [`run`]: a run's config ([`RunConfig`]) and its directory
//!   ([`RunDir`]): training every seed ([`train_run`]), resuming, replacing.
//! - [`results`]: `results.json` and the table printed after a run;
//!   [`multi_label_results`] for multi-label runs (with the trivial
//!   baselines beside the model).
//! - [`evaluate`]: a finished run's seeds re-evaluated on a split.
//! - [`cross_dataset`]: a run's seeds scored on another corpus (or its own)
//!   through an explicit label-mapping file.
//! - [`robustness`]: a finished run with modalities missing at test time
//!   (fixed conditions and a random missing-rate sweep, plotted).
//! - [`predict`]: a trained model on a user's conversation file.
//! - [`bench`](mod@bench): the speed benchmarks of `mmer bench` (embedding, training
//!   epochs, prediction latency, extraction).
//! - [`emodb`]: the EmoDB leave-one-speaker-out speech experiment.
//! - [`audio_model`]: the shipped audio emotion model (EmoDB) on one turn's speech.
//! - [`analyze`]: a recording's turns with their emotion and its evidence,
//!   from the shipped models.
//! - [`explain`]: LIME over a turn's words and the other evidence of
//!   `analyze --explain`.
//! - [`report_html`]: analyses as one self-contained HTML page.
//! - [`transcribe`]: a recording's speech as text and turns (Whisper), and
//!   the word-error-rate benchmark.
//! - [`stream`]: a live stream of audio cut into turns at pauses, each
//!   turn analysed as it closes (`mmer serve`'s WebSocket).
//!
//! Dependencies point down the pipeline: core, data, audio, features,
//! models, eval, train ← run ← cli.

mod config;
mod error;

pub mod analysis_output;
pub mod analyze;
pub mod audio_model;
pub mod bench;
pub mod cross_dataset;
pub mod data;
pub mod emodb;
pub mod evaluate;
pub mod explain;
pub mod labels;
pub mod multi_label_results;
pub mod predict;
pub mod report_html;
pub mod results;
pub mod robustness;
pub mod run;
pub mod stream;
pub mod transcribe;

pub use config::RunConfig;
pub use data::{DataConfig, DatasetKind};
pub use error::{Context, Error, Result};
pub use labels::Labels;
pub use multi_label_results::MultiLabelRunResults;
pub use results::RunResults;
pub use run::{Existing, RunDir, TrainedRun, train_run};
