//! Re-evaluating a finished run: every seed's checkpoint on one split.
//!
//! The run directory must describe exactly its models ([`check_complete`]):
//! an unfinished or inconsistent run is refused, never scored.

use std::path::{Path, PathBuf};

use mmer_core::Split;
use mmer_eval::{ClassificationReport, ReportAggregate};
use mmer_train::Checkpoint;
use serde::Serialize;

use crate::config::RunConfig;
use crate::error::{Context, Result, bail, ensure};
use crate::run::seeds_in;

/// The metrics of every seed of a run on one split, written to
/// `eval-<split>.json` in the run.
#[derive(Debug, Clone, Serialize)]
pub struct RunEvaluation {
    /// The split evaluated.
    pub split: Split,
    /// Corpus name.
    #[serde(skip)]
    pub corpus: String,
    /// Class names, in label order (the run's preset or declared set):
    /// what the per-class metrics' indices mean.
    pub classes: Vec<String>,
    /// Metrics over seeds: mean, sample std, per-seed values.
    pub aggregate: ReportAggregate,
    /// Each seed's report.
    pub per_seed: Vec<(u64, ClassificationReport)>,
    /// Where the evaluation was written.
    #[serde(skip)]
    pub written: PathBuf,
}

/// Loads the run in `run`, checks it is complete and consistent, evaluates
/// every seed on `split` and writes `eval-<split>.json` (atomically).
///
/// # Errors
/// An unreadable or inconsistent run, a damaged checkpoint, data that
/// cannot be loaded, or an empty split.
pub fn evaluate_run(run: &Path, split: Split) -> Result<RunEvaluation> {
    let config = RunConfig::read(&run.join("config.toml"))?;
    check_complete(run, &config)?;
    ensure!(
        !config.data.label_space()?.multi_label && !config.data.is_multi_label_dataset(),
        "{}: `mmer eval` re-scores single-label runs for now; this run is multi-label, and its results.json holds every seed's valid and test scores (at 0.5 and at thresholds tuned on validation)",
        run.display()
    );
    let corpus = config.data.load(&config.train.modalities)?;
    let dialogues = corpus.split(split);
    if dialogues.is_empty() {
        bail!("{} has no {split} split", corpus.name);
    }
    let mut per_seed = Vec::new();
    for seed in &config.train.seeds {
        let dir = run.join(format!("seed-{seed}"));
        let (checkpoint, model) =
            Checkpoint::load(&dir).with_context(|| format!("loading {}", dir.display()))?;
        ensure!(
            checkpoint.seed == *seed
                && checkpoint.corpus == corpus.name
                && checkpoint.config.same_settings(&config.train),
            "{} was not trained by this run's config.toml (seed {}, corpus {}); the run directory is inconsistent",
            dir.display(),
            checkpoint.seed,
            checkpoint.corpus
        );
        ensure!(
            checkpoint.labels == corpus.labels,
            "{} was trained on the classes {} but config.toml's data has {}; the run directory is inconsistent",
            dir.display(),
            checkpoint.labels.classes.join(", "),
            corpus.labels.classes.join(", ")
        );
        per_seed.push((*seed, checkpoint.evaluate(&model, dialogues)?));
    }
    let reports: Vec<_> = per_seed.iter().map(|(_, r)| r.clone()).collect();
    let evaluation = RunEvaluation {
        split,
        corpus: corpus.name.clone(),
        classes: corpus.labels.classes.clone(),
        aggregate: ReportAggregate::from_reports(&reports)?,
        per_seed,
        written: run.join(format!("eval-{split}.json")),
    };
    mmer_core::atomic::write_file(
        &evaluation.written,
        &serde_json::to_vec_pretty(&evaluation)?,
    )?;
    Ok(evaluation)
}

/// A run is complete when `results.json` exists and lists exactly the seeds
/// of `config.toml`, and no other `seed-<k>` directory lies beside them.
pub fn check_complete(run: &Path, config: &RunConfig) -> Result<()> {
    let path = run.join("results.json");
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "reading {}: the run is unfinished; `mmer train --config {} --out {} --resume` completes it",
            path.display(),
            run.join("config.toml").display(),
            run.display()
        )
    })?;
    let results: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
    let listed: Vec<u64> = results["seeds"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
        .unwrap_or_default();
    ensure!(
        listed == config.train.seeds,
        "{} lists seeds {listed:?} but config.toml has {:?}; the run directory is inconsistent",
        path.display(),
        config.train.seeds
    );
    if let Some(seed) = seeds_in(run)?.into_iter().find(|s| !listed.contains(s)) {
        bail!(
            "{} holds seed-{seed}, which results.json does not list; the run directory is inconsistent",
            run.display()
        );
    }
    Ok(())
}
