//! Training runs and the directories they live in.
//!
//! A [`RunConfig`] (data + training settings) is a complete, reproducible
//! run; [`train_run`] trains one model per seed into a run directory that
//! [`RunDir`] keeps whole: nothing is written before the data loads, a run
//! is never overwritten unasked ([`Existing`]), every file is written
//! atomically, and `results.json` lists exactly the seeds beside it.

use std::path::{Path, PathBuf};

use mmer_models::Fusion;
use mmer_models::text_encoder::TextEncoder;
use mmer_train::finetune::{TokenStates, train_seed_finetuned};
use mmer_train::pretrain::{PretrainOutcome, pretrain_seed};
use mmer_train::trainer::PreparedData;
use mmer_train::{Checkpoint, TrainConfig, train_seed, train_seed_multi_label};

use crate::config::RunConfig;
use crate::error::{Context, Result, bail, ensure};
use crate::multi_label_results::MultiLabelRunResults;
use crate::results::RunResults;

/// What `train` does when `--out` already holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Stop with an error: a run is never overwritten unasked (the default).
    Refuse,
    /// Continue it: reuse its finished seeds (same settings only).
    Resume,
    /// Replace it, atomically once the new run is complete.
    Force,
}

/// Seeds must be given and distinct: a repeated seed trains the same model
/// twice and reports a spread of zero over the copies.
fn check_seeds(seeds: &[u64]) -> Result<()> {
    ensure!(!seeds.is_empty(), "no seeds configured");
    for (k, seed) in seeds.iter().enumerate() {
        ensure!(
            !seeds[..k].contains(seed),
            "seed {seed} is listed twice: each seed trains one model, and a copy would fake agreement between seeds"
        );
    }
    Ok(())
}

/// `<dataset>-<encoder>-<context>`, e.g. `meld-minilm-dialogue_speaker`,
/// with `-<fusion>` appended for the multimodal fusions.
pub fn default_run_name(config: &RunConfig) -> String {
    let dataset = serde_json::to_value(config.data.dataset)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let encoder = config
        .data
        .text_source()
        .unwrap_or_else(|| "features".to_string());
    let context = serde_json::to_value(config.train.model.context)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let name = format!("{dataset}-{encoder}-{context}");
    match serde_json::to_value(config.train.model.fusion) {
        Ok(serde_json::Value::String(f)) if config.train.model.fusion != Fusion::Early => {
            format!("{name}-{f}")
        }
        _ => name,
    }
}

/// The checkpoint metadata of one seed of a run on `corpus`.
pub fn seed_checkpoint(
    corpus: &mmer_core::Corpus,
    data: &PreparedData,
    config: &RunConfig,
    seed: u64,
    best_epoch: usize,
) -> Checkpoint {
    Checkpoint::new(
        &corpus.name,
        config.data.text_source(),
        &config.train,
        seed,
        best_epoch,
        data.layout.clone(),
        data.labels.clone(),
    )
}

/// Checks the seeds and the label set, then loads, validates and encodes
/// the configured corpus.
pub fn prepare(config: &RunConfig) -> Result<(mmer_core::Corpus, PreparedData)> {
    check_seeds(&config.train.seeds)?;
    let corpus = config.data.load(&config.train.modalities)?;
    corpus
        .validate()
        .with_context(|| format!("validating {}", corpus.name))?;
    let data = PreparedData::new(&corpus, &config.train)?;
    Ok((corpus, data))
}

/// A run directory being written. Nothing in `out` is touched before the
/// data has loaded; with [`Existing::Force`] the run is built in a sibling
/// staging directory and swapped in by [`RunDir::finish`]. Every file is
/// written atomically and every seed directory appears whole (see
/// [`Checkpoint::save_with`]), so a crash leaves finished seeds and
/// `config.toml`, which `--resume` continues, and never a `results.json`
/// that disagrees with the seed directories beside it.
pub struct RunDir {
    out: PathBuf,
    work: PathBuf,
    staged: bool,
}

impl RunDir {
    /// Checks `out` against the policy and creates the directory to write in.
    ///
    /// # Errors
    /// `out` already holds a run and the policy is [`Existing::Refuse`], or
    /// with [`Existing::Resume`] its `config.toml` has other settings.
    pub fn open(out: &Path, existing: Existing, config: &RunConfig) -> Result<Self> {
        let holds_run = out.join("config.toml").exists()
            || out.join("results.json").exists()
            || !seeds_in(out)?.is_empty();
        match existing {
            Existing::Refuse if holds_run => bail!(
                "{} already holds a run; pass --resume to continue it with the same settings, --force to replace it, or choose another --out",
                out.display()
            ),
            Existing::Resume if holds_run => check_resumable(out, config)?,
            _ => {}
        }
        let (work, staged) = if existing == Existing::Force && holds_run {
            let staging = mmer_core::atomic::partial_path(out);
            if staging.exists() {
                std::fs::remove_dir_all(&staging)
                    .with_context(|| format!("removing {}", staging.display()))?;
            }
            (staging, true)
        } else {
            (out.to_path_buf(), false)
        };
        std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        Ok(Self {
            out: out.to_path_buf(),
            work,
            staged,
        })
    }

    /// Where seed `seed`'s checkpoint goes.
    pub fn seed_dir(&self, seed: u64) -> PathBuf {
        self.work.join(format!("seed-{seed}"))
    }

    /// The summary (`metrics.json`, `pretrain.json`) of seed `seed` when
    /// the run being continued has it finished with the same settings.
    ///
    /// # Errors
    /// The seed was trained with other settings, or its files are unreadable.
    pub fn finished<T: serde::de::DeserializeOwned>(
        &self,
        seed: u64,
        config: &TrainConfig,
        summary: &str,
    ) -> Result<Option<T>> {
        finished_seed(&self.seed_dir(seed), config, summary)
    }

    /// Seeds with a `seed-<k>` directory in the run, in numeric order.
    pub fn seeds(&self) -> Result<Vec<u64>> {
        seeds_in(&self.work)
    }

    /// Writes `name` (JSON or TOML bytes) atomically into the run.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        Ok(mmer_core::atomic::write_file(&self.work.join(name), bytes)?)
    }

    /// Swaps a staged run into place; the final directory.
    pub fn finish(mut self) -> Result<PathBuf> {
        if self.staged {
            mmer_core::atomic::publish_dir(&self.work, &self.out)?;
            self.staged = false;
        }
        Ok(self.out.clone())
    }
}

impl Drop for RunDir {
    /// A staged (`--force`) run that did not finish is removed: the run it
    /// was to replace stays as it was. An unstaged run keeps its finished
    /// seeds for `--resume`.
    fn drop(&mut self) {
        if self.staged {
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}

/// Appends the seeds of `more` that `seeds` lacks, in order.
pub fn add_seeds(seeds: &mut Vec<u64>, more: Vec<u64>) {
    for seed in more {
        if !seeds.contains(&seed) {
            seeds.push(seed);
        }
    }
}

/// Seeds with a `seed-<k>` directory in `dir` (none when it does not
/// exist), in numeric order.
pub fn seeds_in(dir: &Path) -> Result<Vec<u64>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut seeds = Vec::new();
    for entry in entries {
        let name = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .file_name();
        if let Some(seed) = name
            .to_str()
            .and_then(|n| n.strip_prefix("seed-"))
            .and_then(|k| k.parse().ok())
        {
            seeds.push(seed);
        }
    }
    seeds.sort_unstable();
    Ok(seeds)
}

/// With `--resume`: the run in `out` must have been made with the same
/// data and training settings (seeds aside).
fn check_resumable(out: &Path, config: &RunConfig) -> Result<()> {
    let path = out.join("config.toml");
    let old = RunConfig::read(&path)
        .context("a directory without a readable config.toml holds no mmer run to resume")?;
    if old.data != config.data {
        bail!(
            "{} was made from other data ([data] differs); use another --out or drop --resume",
            path.display()
        );
    }
    if !old.train.same_settings(&config.train) {
        bail!(
            "{} was trained with other settings ([train] differs beyond its seeds); use another --out or drop --resume",
            path.display()
        );
    }
    Ok(())
}

/// The results of a finished run: single-label or multi-label.
#[derive(Debug, Clone)]
pub enum TrainedRun {
    /// One class per turn.
    Single(Box<RunResults>),
    /// Several classes per turn.
    Multi(Box<MultiLabelRunResults>),
}

impl TrainedRun {
    /// The seeds trained.
    pub fn seeds(&self) -> &[u64] {
        match self {
            TrainedRun::Single(results) => &results.seeds,
            TrainedRun::Multi(results) => &results.seeds,
        }
    }

    /// The readable table of the results.
    pub fn table(&self) -> String {
        match self {
            TrainedRun::Single(results) => results.table(),
            TrainedRun::Multi(results) => results.table(),
        }
    }
}

/// A seed's outcome as `metrics.json` holds it, and what `results.json`
/// is collected from.
trait Outcome: serde::Serialize + serde::de::DeserializeOwned {
    fn best_epoch(&self) -> usize;
    /// Multi-label decision thresholds, kept in the checkpoint for predict.
    fn thresholds(&self) -> Option<Vec<f32>> {
        None
    }
}

impl Outcome for mmer_train::SeedOutcome {
    fn best_epoch(&self) -> usize {
        self.best_epoch
    }
}

impl Outcome for mmer_train::MultiLabelOutcome {
    fn best_epoch(&self) -> usize {
        self.best_epoch
    }
    fn thresholds(&self) -> Option<Vec<f32>> {
        Some(self.thresholds.clone())
    }
}

/// Trains every seed of `config`, writing checkpoints and results under
/// `out` as [`RunDir`] describes. With [`Existing::Resume`] the run's
/// seeds are the requested ones plus those finished in `out` before or
/// meanwhile, and `config.toml` and `results.json` list them all. A
/// multi-label set trains multi-label models
/// ([`mmer_train::multi_label`]) and reports [`MultiLabelRunResults`].
pub fn train_run(
    config: &RunConfig,
    out: &Path,
    show_progress: bool,
    existing: Existing,
) -> Result<TrainedRun> {
    let (corpus, data) = prepare(config)?;
    if data.labels.multi_label {
        let (config, outcomes, run) = train_seeds(
            &corpus,
            &data,
            config,
            out,
            show_progress,
            existing,
            |data, train, seed, show| {
                let (outcome, model) = train_seed_multi_label(data, train, seed, show)?;
                Ok((outcome, model, None))
            },
        )?;
        let results = MultiLabelRunResults::new(
            &corpus,
            &data,
            &config,
            config.data.text_source(),
            &outcomes,
        )?;
        run.write("results.json", &serde_json::to_vec_pretty(&results)?)?;
        run.finish()?;
        return Ok(TrainedRun::Multi(Box::new(results)));
    }
    let (config, outcomes, run) = match &config.train.finetune {
        None => train_seeds(
            &corpus,
            &data,
            config,
            out,
            show_progress,
            existing,
            |data, train, seed, show| {
                let (outcome, model) = train_seed(data, train, seed, show)?;
                Ok((outcome, model, None))
            },
        )?,
        Some(spec) => {
            // Computed when the first seed trains: a resume that only
            // merges finished seeds needs no token states.
            let mut inputs: Option<(TokenStates, TextEncoder)> = None;
            train_seeds(
                &corpus,
                &data,
                config,
                out,
                show_progress,
                existing,
                |data, train, seed, show| {
                    let (states, encoder) = match &mut inputs {
                        Some(inputs) => inputs,
                        None => inputs.insert(finetune_inputs(
                            &corpus,
                            config,
                            spec.layers,
                            show_progress,
                        )?),
                    };
                    let (outcome, tuned) =
                        train_seed_finetuned(data, states, encoder.clone(), train, seed, show)?;
                    Ok((outcome, tuned.model, Some(tuned.encoder)))
                },
            )?
        }
    };
    let results = RunResults::new(&corpus, &config, config.data.text_source(), &outcomes)?;
    run.write("results.json", &serde_json::to_vec_pretty(&results)?)?;
    run.finish()?;
    Ok(TrainedRun::Single(Box::new(results)))
}

/// What a fine-tuning run trains from: the frozen encoder's token states
/// of every turn under the `layers` trained ones (aligned with
/// [`PreparedData`]'s splits), and those layers, loaded from the same
/// checkpoint. The pooled layer is `data.text_layers`' only entry.
fn finetune_inputs(
    corpus: &mmer_core::Corpus,
    config: &RunConfig,
    layers: usize,
    show_progress: bool,
) -> Result<(TokenStates, TextEncoder)> {
    let kind = config
        .data
        .text_encoder
        .context("[train.finetune] needs data.text_encoder (the encoder it fine-tunes)")?;
    let pooled = match config.data.text_layers.as_deref() {
        Some(&[layer]) => layer,
        _ => bail!(
            "[train.finetune] needs data.text_layers to name one layer (the pooled one, e.g. [8])"
        ),
    };
    ensure!(
        (1..=pooled).contains(&layers),
        "[train.finetune] layers = {layers}: between 1 and the pooled layer {pooled}"
    );
    let below = pooled - layers;
    let encoder = crate::data::load_encoder(kind)?;
    let splits = [
        mmer_core::Split::Train,
        mmer_core::Split::Valid,
        mmer_core::Split::Test,
    ];
    let context = config.data.text_context.as_ref();
    let mut inputs = Vec::new();
    for split in splits {
        for d in corpus.split(split) {
            let turns = crate::data::turn_inputs(&encoder, d, context)?;
            for (u, input) in d.utterances.iter().zip(turns) {
                inputs.push(input.with_context(|| {
                    format!(
                        "fine-tuning needs every turn's transcript; {} has none",
                        u.id
                    )
                })?);
            }
        }
    }
    tracing::info!(
        texts = inputs.len(),
        layer = below,
        context = %context.map_or("none".into(), |w| w.to_string()),
        "token states under the fine-tuned layers"
    );
    let progress = mmer_core::progress::Progress::new(
        format!("{kind} layer {below}"),
        "texts",
        inputs.len() as u64,
        show_progress,
    );
    let turns = crate::data::turn_tokens(&encoder, &inputs, below, |done, _| {
        progress.set_position(done as u64)
    })?;
    progress.finish();
    let mut flat = turns.into_iter();
    let mut states = TokenStates {
        width: kind.dim(),
        ..TokenStates::default()
    };
    for (split, out) in
        splits
            .into_iter()
            .zip([&mut states.train, &mut states.valid, &mut states.test])
    {
        *out = corpus
            .split(split)
            .iter()
            .map(|d| d.utterances.iter().filter_map(|_| flat.next()).collect())
            .collect();
    }
    let (checkpoint, tensors) =
        mmer_text::load_encoder_tensors(kind, &mmer_text::default_models_dir())?;
    let layers = TextEncoder::from_checkpoint(
        &checkpoint,
        &tensors,
        below..pooled,
        &burn::tensor::Device::flex(),
    )?;
    Ok((states, layers))
}

/// Every seed of `config` trained with `train` (or reused, resuming) into
/// an open run directory; returns the config with the run's full seed
/// list (written as `config.toml`), the outcomes and the directory, to
/// which the caller adds `results.json` before finishing it.
#[allow(clippy::type_complexity)]
fn train_seeds<O: Outcome>(
    corpus: &mmer_core::Corpus,
    data: &PreparedData,
    config: &RunConfig,
    out: &Path,
    show_progress: bool,
    existing: Existing,
    mut train: impl FnMut(
        &PreparedData,
        &TrainConfig,
        u64,
        bool,
    ) -> Result<(O, mmer_models::EmotionModel, Option<TextEncoder>)>,
) -> Result<(RunConfig, Vec<O>, RunDir)> {
    let run = RunDir::open(out, existing, config)?;
    // Seeds already finished in a run being resumed stay part of it.
    let mut config = config.clone();
    add_seeds(&mut config.train.seeds, run.seeds()?);
    run.write("config.toml", toml::to_string_pretty(&config)?.as_bytes())?;
    tracing::info!(
        corpus = %corpus.name,
        train = data.train.len(),
        valid = data.valid.len(),
        test = data.test.len(),
        d_input = data.layout.d_input(),
        "training"
    );
    let mut outcomes: Vec<O> = Vec::new();
    for seed in config.train.seeds.clone() {
        if existing == Existing::Resume
            && let Some(outcome) = run.finished(seed, &config.train, "metrics.json")?
        {
            tracing::info!(seed, "reusing the finished seed");
            outcomes.push(outcome);
            continue;
        }
        let (outcome, model, encoder) = train(data, &config.train, seed, show_progress)?;
        let files = [("metrics.json", serde_json::to_vec_pretty(&outcome)?)];
        let checkpoint = seed_checkpoint(corpus, data, &config, seed, outcome.best_epoch())
            .with_thresholds(outcome.thresholds());
        let dir = run.seed_dir(seed);
        match &encoder {
            Some(encoder) => checkpoint.save_fine_tuned(&model, encoder, &dir, &files)?,
            None => checkpoint.save_with(&model, &dir, &files)?,
        }
        outcomes.push(outcome);
    }
    // Seeds that parallel `--resume` processes finished meanwhile belong to
    // the run too: results.json lists every model beside it.
    for seed in run.seeds()? {
        if !config.train.seeds.contains(&seed) {
            let outcome = run
                .finished(seed, &config.train, "metrics.json")?
                .with_context(|| format!("{} is unfinished", run.seed_dir(seed).display()))?;
            config.train.seeds.push(seed);
            outcomes.push(outcome);
        }
    }
    run.write("config.toml", toml::to_string_pretty(&config)?.as_bytes())?;
    Ok((config, outcomes, run))
}

/// The summary `summary` of a seed already trained in `dir` with the same
/// settings (the seed list aside), or `None` when there is none.
fn finished_seed<T: serde::de::DeserializeOwned>(
    dir: &Path,
    config: &TrainConfig,
    summary: &str,
) -> Result<Option<T>> {
    let summary = dir.join(summary);
    let meta = dir.join("checkpoint.json");
    if !summary.is_file() || !meta.is_file() {
        return Ok(None);
    }
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let checkpoint: Checkpoint = serde_json::from_slice(&read(&meta)?)
        .with_context(|| format!("parsing {}", meta.display()))?;
    if !checkpoint.config.same_settings(config) {
        bail!(
            "{} was trained with other settings; use another --out or drop --resume",
            dir.display()
        );
    }
    let outcome = serde_json::from_slice(&read(&summary)?)
        .with_context(|| format!("parsing {}", summary.display()))?;
    Ok(Some(outcome))
}

/// Cross-modal NCE pre-training (AMuSE §III-E1) of every seed of `config`
/// into `out`, under the same run-directory rules as [`train_run`]; with
/// [`Existing::Resume`] seeds already pre-trained there are kept. Returns
/// the final directory and the outcome of each seed pre-trained now.
///
/// # Errors
/// As [`train_run`].
pub fn pretrain_run(
    config: &RunConfig,
    out: &Path,
    show_progress: bool,
    existing: Existing,
) -> Result<(PathBuf, Vec<PretrainOutcome>)> {
    let (corpus, data) = prepare(config)?;
    let run = RunDir::open(out, existing, config)?;
    let mut config = config.clone();
    add_seeds(&mut config.train.seeds, run.seeds()?);
    run.write("config.toml", toml::to_string_pretty(&config)?.as_bytes())?;
    let mut outcomes = Vec::new();
    for seed in config.train.seeds.clone() {
        if existing == Existing::Resume
            && run
                .finished::<PretrainOutcome>(seed, &config.train, "pretrain.json")?
                .is_some()
        {
            tracing::info!(seed, "already pre-trained");
            continue;
        }
        let (outcome, model) = pretrain_seed(&data, &config.train, seed, show_progress)?;
        let summary = serde_json::to_vec_pretty(&outcome)?;
        seed_checkpoint(&corpus, &data, &config, seed, outcome.best_epoch).save_with(
            &model,
            &run.seed_dir(seed),
            &[("pretrain.json", summary)],
        )?;
        outcomes.push(outcome);
    }
    add_seeds(&mut config.train.seeds, run.seeds()?);
    run.write("config.toml", toml::to_string_pretty(&config)?.as_bytes())?;
    Ok((run.finish()?, outcomes))
}
