//! Re-evaluating a finished run: every seed's checkpoint on one split.
//!
//! The run directory must describe exactly its models ([`check_complete`]):
//! an unfinished or inconsistent run is refused, never scored.

use std::path::{Path, PathBuf};

use mmer_core::Split;
use mmer_eval::{ClassificationReport, MultiLabelScoresAggregate, ReportAggregate};
use mmer_models::EmotionModel;
use mmer_train::Checkpoint;
use mmer_train::multi_label::HeadScores;
use serde::Serialize;

use crate::config::RunConfig;
use crate::data::checkpoint_encoder;
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
/// every seed on `split` and writes `eval-<split>.json` (atomically). A
/// fine-tuned seed reads its own encoder layers' output, computed as
/// `predict` computes it.
///
/// # Errors
/// An unreadable or inconsistent run, a multi-label run (see
/// [`evaluate_multi_label_run`]), a damaged checkpoint, data that cannot be
/// loaded, or an empty split.
pub fn evaluate_run(run: &Path, split: Split) -> Result<RunEvaluation> {
    let (corpus, models) = load_run(run, split, false)?;
    let mut per_seed = Vec::new();
    for (seed, checkpoint, model) in &models {
        let dir = run.join(format!("seed-{seed}"));
        let dialogues = seed_inputs(checkpoint, &dir, corpus.split(split))?;
        per_seed.push((*seed, checkpoint.evaluate(model, &dialogues)?));
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

/// The metrics of every seed of a multi-label run on one split, written to
/// `eval-<split>.json` in the run: each seed's fused head decided at 0.5
/// and at the per-label thresholds it tuned on validation (kept in its
/// checkpoint).
#[derive(Debug, Clone, Serialize)]
pub struct MultiLabelRunEvaluation {
    /// The split evaluated.
    pub split: Split,
    /// Corpus name.
    #[serde(skip)]
    pub corpus: String,
    /// Label names, in label order.
    pub classes: Vec<String>,
    /// At 0.5, over seeds.
    pub at_half: MultiLabelScoresAggregate,
    /// At the tuned thresholds, over seeds.
    pub tuned: MultiLabelScoresAggregate,
    /// Each seed's scores.
    pub per_seed: Vec<(u64, HeadScores)>,
    /// Where the evaluation was written.
    #[serde(skip)]
    pub written: PathBuf,
}

/// [`evaluate_run`] for a multi-label run.
///
/// # Errors
/// As [`evaluate_run`]; a single-label run.
pub fn evaluate_multi_label_run(run: &Path, split: Split) -> Result<MultiLabelRunEvaluation> {
    let (corpus, models) = load_run(run, split, true)?;
    let mut per_seed = Vec::new();
    for (seed, checkpoint, model) in &models {
        per_seed.push((
            *seed,
            checkpoint.evaluate_multi_label(model, corpus.split(split))?,
        ));
    }
    let (at_half, tuned): (Vec<_>, Vec<_>) = per_seed
        .iter()
        .map(|(_, h)| (h.at_half.clone(), h.tuned.clone()))
        .unzip();
    let evaluation = MultiLabelRunEvaluation {
        split,
        corpus: corpus.name.clone(),
        classes: corpus.labels.classes.clone(),
        at_half: MultiLabelScoresAggregate::from_scores(&at_half)?,
        tuned: MultiLabelScoresAggregate::from_scores(&tuned)?,
        per_seed,
        written: run.join(format!("eval-{split}.json")),
    };
    mmer_core::atomic::write_file(
        &evaluation.written,
        &serde_json::to_vec_pretty(&evaluation)?,
    )?;
    Ok(evaluation)
}

/// The dialogues the seed in `dir` reads: `dialogues` as loaded, or, for a
/// fine-tuned seed, with their text features recomputed by its own encoder
/// layers as `predict` computes them (the store holds the frozen ones).
///
/// # Errors
/// The seed's encoder cannot be loaded or fails on a text.
pub(crate) fn seed_inputs<'a>(
    checkpoint: &Checkpoint,
    dir: &Path,
    dialogues: &'a [mmer_core::Dialogue],
) -> Result<std::borrow::Cow<'a, [mmer_core::Dialogue]>> {
    if checkpoint.config.finetune.is_none() {
        return Ok(std::borrow::Cow::Borrowed(dialogues));
    }
    let featurizer = checkpoint_encoder(checkpoint, dir, &mmer_text::default_models_dir())?
        .with_context(|| format!("{}: a fine-tuned model reads text", dir.display()))?;
    let mut tuned = dialogues.to_vec();
    featurizer.embed(&mut tuned)?;
    Ok(std::borrow::Cow::Owned(tuned))
}

/// Whether the run in `run` trained on a multi-label set.
///
/// # Errors
/// An unreadable `config.toml`, or a preset that does not exist.
pub fn is_multi_label_run(run: &Path) -> Result<bool> {
    let config = RunConfig::read(&run.join("config.toml"))?;
    Ok(config.data.label_space()?.multi_label || config.data.is_multi_label_dataset())
}

/// One seed of a run: its seed, checkpoint metadata and model.
type SeedModel = (u64, Checkpoint, EmotionModel);

/// A complete, consistent run's corpus (`split` non-empty) and every
/// seed's checkpoint and model, checked against `config.toml`; `multi`
/// says which kind of label set the caller scores.
fn load_run(run: &Path, split: Split, multi: bool) -> Result<(mmer_core::Corpus, Vec<SeedModel>)> {
    let config = RunConfig::read(&run.join("config.toml"))?;
    check_complete(run, &config)?;
    let corpus = config.data.load(&config.train.modalities)?;
    ensure!(
        corpus.labels.multi_label == multi,
        "{} trained on the {} set {}: {}",
        run.display(),
        if multi { "single-label" } else { "multi-label" },
        corpus.labels.name,
        if multi {
            "evaluate it with evaluate_run"
        } else {
            "evaluate it with evaluate_multi_label_run"
        }
    );
    if corpus.split(split).is_empty() {
        bail!("{} has no {split} split", corpus.name);
    }
    let mut models = Vec::new();
    for seed in &config.train.seeds {
        let dir = run.join(format!("seed-{seed}"));
        // A fine-tuned seed loads too: its scorers run its encoder layers.
        let (checkpoint, model) =
            Checkpoint::load_model(&dir).with_context(|| format!("loading {}", dir.display()))?;
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
        models.push((*seed, checkpoint, model));
    }
    Ok((corpus, models))
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
