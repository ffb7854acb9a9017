//! `mmer train`: one model per seed, validation-selected, test reported once.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mmer_core::Modality;
use mmer_models::{ContextMode, Fusion, ManResidual, Pooling};
use mmer_run::data::{DataConfig, DatasetKind};
use mmer_run::run::{Existing, default_run_name, train_run};
use mmer_run::{Labels, RunConfig};
use mmer_text::EncoderKind;
use mmer_train::TrainConfig;

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
    /// Label set of `conversations` data (other datasets have their own):
    /// a preset (meld, iemocap, synthetic), or your own classes,
    /// comma-separated, e.g. `--labels calm,tense,happy`; the conversation
    /// files name them, and the checkpoint keeps them for predict and eval.
    /// [default: meld]
    #[arg(long, value_name = "PRESET|CLASSES")]
    pub labels: Option<String>,
    /// The declared classes are multi-label: a turn may have several (or
    /// none; `joy;surprise` in a conversation file). The run trains with
    /// binary cross-entropy per label, selects on the validation macro F1
    /// at 0.5, tunes per-label thresholds on validation, and reports
    /// multi-label metrics beside two trivial baselines.
    #[arg(long)]
    pub multi_label: bool,
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
    #[arg(long, value_enum)]
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
    #[arg(long, value_enum)]
    pub context: Option<ContextMode>,
    /// Modality fusion: early (pooled features concatenated), concat
    /// (per-modality encoders), man-concat, man-af (AMuSE), am2-emoje
    /// (AM²-EmoJE: joint embedding, imputation, query-adaptive fusion; its
    /// settings are `[train.model.joint]`), semul-pcd (SeMuL-PCD: token
    /// streams per modality, peer heads distilled into a fusion token,
    /// for multi-label sets; settings `[train.model.peers]`). Settings go
    /// in a --config or `--set`. [default: early]
    #[arg(long, value_enum)]
    pub fusion: Option<Fusion>,
    /// How MAN's sub-layers join the residual stream: post-norm (the
    /// transformer layer) or rezero (learned scales starting at 0, so MAN
    /// starts as the identity; for few modalities). [default: post-norm]
    #[arg(long, value_enum)]
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
    /// Media store written by `mmer extract` from these conversations: its
    /// audio, face and body frames become the audio, face and body
    /// modalities (matched by utterance id; a turn without a face, or with a
    /// silent track, lacks that modality).
    #[arg(long)]
    pub media_store: Option<PathBuf>,
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
    /// Set any config value, applied after the config file and the flags
    /// above: `KEY=VALUE` with KEY a dotted path into the TOML layout of
    /// docs/configs/ and VALUE a TOML value. Repeatable, e.g.
    /// `--set train.model.joint.nce_weight=0 --set train.learning_rate=1e-3`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
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

impl TrainArgs {
    /// Merges the config file and the flags into one validated config.
    pub fn into_config(self) -> Result<(RunConfig, PathBuf)> {
        let mut config = match &self.config {
            Some(path) => RunConfig::read(path)?,
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
        match (self.labels, self.multi_label) {
            (Some(l), multi) => config.data.labels = Some(Labels::from_arg(&l, multi)?),
            (None, true) => {
                let declared = config
                    .data
                    .labels
                    .take()
                    .context("--multi-label needs declared classes: --labels a,b,c")?;
                config.data.labels = Some(declared.into_multi_label()?);
            }
            (None, false) => {}
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
        if let Some(m) = self.media_store {
            config.data.media_store = Some(m);
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
        let config = config.with_settings(&self.settings)?;
        let out = self
            .out
            .unwrap_or_else(|| PathBuf::from("runs").join(default_run_name(&config)));
        Ok((config, out))
    }
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
