//! `mmer train`: one model per seed, validation-selected, test reported once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use mmer_core::Modality;
use mmer_features::EncoderKind;
use mmer_models::{ContextMode, Fusion, ManResidual, Pooling};
use mmer_train::trainer::PreparedData;
use mmer_train::{Checkpoint, TrainConfig, train_seed};
use serde::{Deserialize, Serialize};

use crate::dataset::{DataConfig, DatasetKind};
use crate::report::RunResults;

/// A complete, reproducible run: what data, how to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Data source.
    pub data: DataConfig,
    /// Training settings.
    #[serde(default)]
    pub train: TrainConfig,
}

/// Arguments of `mmer train`. Flags override the config file.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// TOML run config (see docs/configs/); flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Dataset format.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Dataset file or directory.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Label space of `conversations` data: meld, iemocap, synthetic
    /// (other datasets have their own). [default: meld]
    #[arg(long)]
    pub labels: Option<String>,
    /// Frozen sentence encoder that embeds transcripts. Required for the
    /// transcript datasets (meld, iemocap, conversations) when text is a
    /// modality; feature pickles keep their own text features without it.
    #[arg(long, value_enum)]
    pub encoder: Option<EncoderKind>,
    /// Validate on the train and valid dialogues whose id starts with this
    /// prefix, train on the rest. IEMOCAP's own validation dialogues share
    /// their speakers with training while its test speakers are unseen;
    /// `--valid-prefix Ses04` holds out session 4 (two unseen speakers)
    /// so that early stopping rewards what generalises to new speakers.
    #[arg(long, value_name = "PREFIX")]
    pub valid_prefix: Option<String>,
    /// Test on the dialogues whose id starts with this prefix, from any
    /// split (needs --valid-prefix): one fold of a leave-one-group-out
    /// cross-validation. IEMOCAP's leave-one-session-out protocol is five
    /// runs, `--test-prefix Ses0<k> --valid-prefix Ses0<k+1>`
    /// (scripts/run_iemocap_sessions.sh).
    #[arg(long, value_name = "PREFIX")]
    pub test_prefix: Option<String>,
    /// Give the model every token's state from the encoder instead of the
    /// sentence vector (use with a sequence fusion, e.g. `--fusion concat
    /// --pooling attention`).
    #[arg(long)]
    pub text_tokens: bool,
    /// Give the model the mean-pooled states of these encoder layers,
    /// comma-separated (0 = embeddings; MPNet has 0-12), one frame each,
    /// instead of the sentence vector. E.g. `--text-layers 8`, or all of
    /// them with `--fusion concat --pooling attention`.
    #[arg(long, value_delimiter = ',', value_name = "LAYERS")]
    pub text_layers: Option<Vec<usize>>,
    /// Per-utterance pooling of encoded frames or tokens: mean, attention.
    /// [default: mean]
    #[arg(long, value_parser = parse_pooling)]
    pub pooling: Option<Pooling>,
    /// Add a classifier per modality whose focal loss is averaged into the
    /// training loss (AMuSE Eq. 5; sequence fusions).
    #[arg(long)]
    pub mode_heads: bool,
    /// Input modalities, comma-separated. [default: text]
    #[arg(long, value_enum, value_delimiter = ',')]
    pub modalities: Option<Vec<Modality>>,
    /// Context streams: none (utterance MLP), dialogue, dialogue-speaker
    /// (AMuSE). [default: dialogue-speaker]
    #[arg(long, value_parser = parse_context)]
    pub context: Option<ContextMode>,
    /// Modality fusion: early (pooled features concatenated), concat
    /// (per-modality encoders), man-concat, man-af (AMuSE).
    /// [default: early]
    #[arg(long, value_parser = parse_fusion)]
    pub fusion: Option<Fusion>,
    /// How MAN's sub-layers join the residual stream: post-norm (the
    /// transformer layer) or rezero (learned scales starting at 0, so MAN
    /// starts as the identity; for few modalities). [default: post-norm]
    #[arg(long, value_parser = parse_man_residual)]
    pub man_residual: Option<ManResidual>,
    /// Start every seed from `mmer pretrain`'s weights in this directory
    /// (it holds `seed-<k>/` for each seed).
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// Seeds, comma-separated and distinct; one model per seed, results
    /// are mean ± std over them. [default: 0,1,2,3,4]
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Maximum epochs; the epoch kept is the best on validation.
    /// [default: 60]
    #[arg(long)]
    pub max_epochs: Option<usize>,
    /// Cut every batch into N shards trained on N threads. A
    /// different N is a different (still deterministic) run: the shards
    /// draw their own dropout masks. 2 on a 2-core machine halves the
    /// training time. [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub data_parallel: Option<u64>,
    /// Output directory; a run already there is kept unless --resume or
    /// --force says otherwise. [default: runs/DATASET-ENCODER-CONTEXT]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Feature-store directory for cached embeddings. [default: store]
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Reuse seeds already finished in --out (`seed-<k>/metrics.json` and a
    /// checkpoint made with the same settings) instead of retraining them:
    /// resumes an interrupted run, or merges seeds trained by parallel
    /// `--seeds <k>` processes into one results.json.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Replace the run already in --out. The new run is built beside it
    /// and swapped in only once every seed has finished, so an interrupted
    /// --force run leaves the old run as it was.
    #[arg(long)]
    pub force: bool,
}

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

impl TrainArgs {
    /// `--resume` / `--force` as an [`Existing`] policy.
    pub fn existing(&self) -> Existing {
        match (self.resume, self.force) {
            (true, _) => Existing::Resume,
            (false, true) => Existing::Force,
            (false, false) => Existing::Refuse,
        }
    }
}

fn parse_context(s: &str) -> Result<ContextMode, String> {
    match s.replace('-', "_").as_str() {
        "none" => Ok(ContextMode::None),
        "dialogue" => Ok(ContextMode::Dialogue),
        "dialogue_speaker" => Ok(ContextMode::DialogueSpeaker),
        other => Err(format!(
            "unknown context {other:?}: none, dialogue, dialogue-speaker"
        )),
    }
}

fn parse_pooling(s: &str) -> Result<Pooling, String> {
    match s {
        "mean" => Ok(Pooling::Mean),
        "attention" => Ok(Pooling::Attention),
        other => Err(format!("unknown pooling {other:?}: mean, attention")),
    }
}

fn parse_man_residual(s: &str) -> Result<ManResidual, String> {
    match s.replace('-', "_").as_str() {
        "post_norm" => Ok(ManResidual::PostNorm),
        "rezero" => Ok(ManResidual::Rezero),
        other => Err(format!("unknown MAN residual {other:?}: post-norm, rezero")),
    }
}

fn parse_fusion(s: &str) -> Result<Fusion, String> {
    match s.replace('-', "_").as_str() {
        "early" => Ok(Fusion::Early),
        "concat" => Ok(Fusion::Concat),
        "man_concat" => Ok(Fusion::ManConcat),
        "man_af" => Ok(Fusion::ManAf),
        other => Err(format!(
            "unknown fusion {other:?}: early, concat, man-concat, man-af"
        )),
    }
}

impl TrainArgs {
    /// Merges the config file and the flags into one validated config.
    pub fn into_config(self) -> Result<(RunConfig, PathBuf)> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<RunConfig>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => RunConfig {
                data: DataConfig::new(self.dataset.context("give --config or --dataset")?, None),
                train: TrainConfig::default(),
            },
        };
        if let Some(d) = self.dataset {
            config.data.dataset = d;
        }
        if let Some(p) = self.data {
            config.data.path = Some(p);
        }
        if let Some(l) = self.labels {
            config.data.labels = Some(l);
        }
        if let Some(e) = self.encoder {
            config.data.text_encoder = Some(e);
        }
        if let Some(p) = self.valid_prefix {
            config.data.valid_prefix = Some(p);
        }
        if let Some(p) = self.test_prefix {
            config.data.test_prefix = Some(p);
        }
        if self.text_tokens {
            config.data.text_tokens = true;
        }
        if let Some(layers) = self.text_layers {
            config.data.text_layers = Some(layers);
        }
        if let Some(p) = self.pooling {
            config.train.model.pooling = p;
        }
        if self.mode_heads {
            config.train.model.mode_heads = true;
        }
        if let Some(s) = self.store {
            config.data.store = s;
        }
        if let Some(m) = self.modalities {
            config.train.modalities = m;
        }
        if let Some(c) = self.context {
            config.train.model.context = c;
        }
        if let Some(f) = self.fusion {
            config.train.model.fusion = f;
        }
        if let Some(r) = self.man_residual {
            config.train.model.man_residual = r;
        }
        if let Some(p) = self.init_from {
            config.train.init_from = Some(p);
        }
        if let Some(s) = self.seeds {
            config.train.seeds = s;
        }
        if let Some(e) = self.max_epochs {
            config.train.max_epochs = e;
        }
        if let Some(n) = self.data_parallel {
            config.train.data_parallel = n as usize;
        }
        check_seeds(&config.train.seeds)?;
        config.data.check(&config.train.modalities)?;
        let out = self
            .out
            .unwrap_or_else(|| PathBuf::from("runs").join(default_run_name(&config)));
        Ok((config, out))
    }
}

/// Seeds must be given and distinct: a repeated seed trains the same model
/// twice and reports a spread of zero over the copies.
fn check_seeds(seeds: &[u64]) -> Result<()> {
    anyhow::ensure!(!seeds.is_empty(), "no seeds configured");
    for (k, seed) in seeds.iter().enumerate() {
        anyhow::ensure!(
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

/// Loads, validates and encodes the configured corpus.
pub fn prepare(config: &RunConfig) -> Result<(mmer_core::Corpus, PreparedData)> {
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
            Existing::Refuse if holds_run => anyhow::bail!(
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
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (a directory without it holds no mmer run to resume)",
            path.display()
        )
    })?;
    let old: RunConfig =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if old.data != config.data {
        anyhow::bail!(
            "{} was made from other data ([data] differs); use another --out or drop --resume",
            path.display()
        );
    }
    if !old.train.same_settings(&config.train) {
        anyhow::bail!(
            "{} was trained with other settings ([train] differs beyond its seeds); use another --out or drop --resume",
            path.display()
        );
    }
    Ok(())
}

/// Trains every seed of `config`, writing checkpoints and results under
/// `out` as [`RunDir`] describes. With [`Existing::Resume`] the run's
/// seeds are the requested ones plus those finished in `out` before or
/// meanwhile, and `config.toml` and `results.json` list them all.
pub fn train_run(
    config: &RunConfig,
    out: &Path,
    show_progress: bool,
    existing: Existing,
) -> Result<RunResults> {
    let (corpus, data) = prepare(config)?;
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
    let text_encoder = config.data.text_source();
    let mut outcomes = Vec::new();
    for seed in config.train.seeds.clone() {
        if existing == Existing::Resume
            && let Some(outcome) = run.finished(seed, &config.train, "metrics.json")?
        {
            tracing::info!(seed, "reusing the finished seed");
            outcomes.push(outcome);
            continue;
        }
        let (outcome, model) = train_seed(&data, &config.train, seed, show_progress)?;
        let metrics = serde_json::to_vec_pretty(&outcome)?;
        seed_checkpoint(&corpus, &data, &config, seed, outcome.best_epoch).save_with(
            &model,
            &run.seed_dir(seed),
            &[("metrics.json", metrics)],
        )?;
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
    let results = RunResults::new(&corpus, &config, text_encoder, &outcomes)?;
    run.write("results.json", &serde_json::to_vec_pretty(&results)?)?;
    run.finish()?;
    Ok(results)
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
        anyhow::bail!(
            "{} was trained with other settings; use another --out or drop --resume",
            dir.display()
        );
    }
    let outcome = serde_json::from_slice(&read(&summary)?)
        .with_context(|| format!("parsing {}", summary.display()))?;
    Ok(Some(outcome))
}

/// Entry point of `mmer train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let existing = args.existing();
    let (config, out) = args.into_config()?;
    let results = train_run(&config, &out, true, existing)?;
    println!("{}", results.table());
    println!("results: {}", out.join("results.json").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `[default: …]` in `mmer train --help` is the value a run gets
    /// when the flag is left out, so the help cannot drift from the code.
    #[test]
    fn help_shows_the_real_defaults() {
        use clap::Args;
        let help = TrainArgs::augment_args(clap::Command::new("train"))
            .render_long_help()
            .to_string();
        let name = |v: serde_json::Value| v.as_str().unwrap_or_default().replace('_', "-");
        let defaults = RunConfig {
            data: DataConfig::new(DatasetKind::Synthetic, None),
            train: TrainConfig::default(),
        };
        let model = &defaults.train.model;
        let seeds: Vec<String> = defaults.train.seeds.iter().map(u64::to_string).collect();
        let expected = [
            name(serde_json::to_value(model.context).unwrap()),
            name(serde_json::to_value(model.fusion).unwrap()),
            name(serde_json::to_value(model.pooling).unwrap()),
            name(serde_json::to_value(model.man_residual).unwrap()),
            seeds.join(","),
            defaults.train.max_epochs.to_string(),
            defaults.train.data_parallel.to_string(),
            defaults.data.store.display().to_string(),
            defaults.train.modalities[0].as_str().to_lowercase(),
        ];
        for value in expected {
            assert!(
                help.contains(&format!("[default: {value}]")),
                "`mmer train --help` does not show the default {value}:\n{help}"
            );
        }
    }

    /// The documented example config must stay loadable.
    #[test]
    fn documented_config_parses() {
        let text = include_str!("../../../../docs/configs/meld-minilm.toml");
        let config: RunConfig = toml::from_str(text).unwrap();
        assert_eq!(config.data.dataset, DatasetKind::Meld);
        assert_eq!(config.train.seeds, vec![0, 1, 2, 3, 4]);
        assert_eq!(default_run_name(&config), "meld-minilm-dialogue_speaker");
    }
}
