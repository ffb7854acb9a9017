//! `mmer train`: one model per seed, validation-selected, test reported once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use mmer_core::Modality;
use mmer_features::EncoderKind;
use mmer_models::{ContextMode, Fusion, ManResidual, Pooling};
use mmer_train::trainer::PreparedData;
use mmer_train::{Checkpoint, SeedOutcome, TrainConfig, train_seed};
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
    /// Label space of `conversations` data: meld (default), iemocap, synthetic.
    #[arg(long)]
    pub labels: Option<String>,
    /// Frozen sentence encoder for transcripts.
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
    #[arg(long, value_parser = parse_pooling)]
    pub pooling: Option<Pooling>,
    /// Add a classifier per modality whose focal loss is averaged into the
    /// training loss (AMuSE Eq. 5; sequence fusions).
    #[arg(long)]
    pub mode_heads: bool,
    /// Input modalities, comma-separated (default: text).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub modalities: Option<Vec<Modality>>,
    /// Context streams: none (utterance MLP), dialogue, dialogue-speaker (AMuSE).
    #[arg(long, value_parser = parse_context)]
    pub context: Option<ContextMode>,
    /// Modality fusion: early (pooled features concatenated), concat
    /// (per-modality encoders), man-concat, man-af (AMuSE).
    #[arg(long, value_parser = parse_fusion)]
    pub fusion: Option<Fusion>,
    /// How MAN's sub-layers join the residual stream: post-norm (the
    /// transformer layer) or rezero (learned scales starting at 0, so MAN
    /// starts as the identity; for few modalities).
    #[arg(long, value_parser = parse_man_residual)]
    pub man_residual: Option<ManResidual>,
    /// Start every seed from `mmer pretrain`'s weights in this directory
    /// (it holds `seed-<k>/` for each seed).
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// Seeds, comma-separated; one model per seed.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Maximum epochs.
    #[arg(long)]
    pub max_epochs: Option<usize>,
    /// Cut every batch into N shards trained on N threads (default 1). A
    /// different N is a different (still deterministic) run: the shards
    /// draw their own dropout masks. 2 on a 2-core machine halves the
    /// training time.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub data_parallel: Option<u64>,
    /// Output directory (default: `runs/<dataset>-<encoder>-<context>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Feature-store directory for cached embeddings.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Reuse seeds already finished in --out (`seed-<k>/metrics.json` and a
    /// checkpoint made with the same settings) instead of retraining them:
    /// resumes an interrupted run, or merges seeds trained by parallel
    /// `--seeds <k>` processes into one results.json.
    #[arg(long)]
    pub resume: bool,
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
        if config.train.seeds.is_empty() {
            anyhow::bail!("no seeds configured");
        }
        let out = self
            .out
            .unwrap_or_else(|| PathBuf::from("runs").join(default_run_name(&config)));
        Ok((config, out))
    }
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

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", path.display()))
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

/// Trains every seed of `config`, writing checkpoints and results under `out`.
pub fn train_run(
    config: &RunConfig,
    out: &Path,
    show_progress: bool,
    resume: bool,
) -> Result<RunResults> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let config_path = out.join("config.toml");
    std::fs::write(&config_path, toml::to_string_pretty(config)?)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let (corpus, data) = prepare(config)?;
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
    for &seed in &config.train.seeds {
        let dir = out.join(format!("seed-{seed}"));
        if resume && let Some(outcome) = finished_seed(&dir, &config.train)? {
            tracing::info!(seed, dir = %dir.display(), "reusing the finished seed");
            outcomes.push(outcome);
            continue;
        }
        let (outcome, model) = train_seed(&data, &config.train, seed, show_progress)?;
        seed_checkpoint(&corpus, &data, config, seed, outcome.best_epoch).save(&model, &dir)?;
        write_json(&dir.join("metrics.json"), &outcome)?;
        outcomes.push(outcome);
    }
    let results = RunResults::new(&corpus, config, text_encoder, &outcomes)?;
    results.write(out)?;
    Ok(results)
}

/// The outcome of a seed already trained in `dir` with the same settings
/// (the seed list aside), or `None` when there is none.
fn finished_seed(dir: &Path, config: &TrainConfig) -> Result<Option<SeedOutcome>> {
    let metrics = dir.join("metrics.json");
    let meta = dir.join("checkpoint.json");
    if !metrics.is_file() || !meta.is_file() {
        return Ok(None);
    }
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let checkpoint: Checkpoint = serde_json::from_slice(&read(&meta)?)
        .with_context(|| format!("parsing {}", meta.display()))?;
    let without_seeds = |c: &TrainConfig| TrainConfig {
        seeds: Vec::new(),
        ..c.clone()
    };
    if without_seeds(&checkpoint.config) != without_seeds(config) {
        anyhow::bail!(
            "{} was trained with other settings; use another --out or drop --resume",
            dir.display()
        );
    }
    let outcome = serde_json::from_slice(&read(&metrics)?)
        .with_context(|| format!("parsing {}", metrics.display()))?;
    Ok(Some(outcome))
}

/// Entry point of `mmer train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let resume = args.resume;
    let (config, out) = args.into_config()?;
    let results = train_run(&config, &out, true, resume)?;
    println!("{}", results.table());
    println!("results: {}", out.join("results.json").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
