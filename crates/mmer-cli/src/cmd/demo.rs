//! `mmer demo`: the whole pipeline on built-in synthetic conversations.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mmer_core::{Modality, Split};
use mmer_data::synthetic::SyntheticConfig;
use mmer_train::{Checkpoint, TrainConfig};

use crate::cmd::predict::render_table;
use mmer_run::data::{DataConfig, DatasetKind};
use mmer_run::{Existing, RunConfig, train_run};

/// Arguments of `mmer demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output directory for the demo run; a demo run already there is
    /// replaced (atomically, once the new one has finished).
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// Seeds to train (mean ± std is reported over them).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub seeds: Vec<u64>,
    /// Maximum epochs per seed.
    #[arg(long, default_value_t = 40)]
    pub max_epochs: usize,
}

/// Entry point of `mmer demo`.
pub fn run(args: DemoArgs) -> Result<()> {
    let synthetic = SyntheticConfig::default();
    let config = RunConfig {
        data: DataConfig {
            synthetic: Some(synthetic.clone()),
            ..DataConfig::new(DatasetKind::Synthetic, None)
        },
        train: TrainConfig {
            modalities: Modality::ALL.to_vec(),
            seeds: args.seeds,
            max_epochs: args.max_epochs,
            patience: 8,
            ..TrainConfig::default()
        },
    };
    println!(
        "mmer demo: {} synthetic conversations (Text/Audio/Face/Body features; see `mmer_data::synthetic` for the planted signal)\n",
        synthetic.dialogues.iter().sum::<usize>()
    );
    let results = train_run(&config, &args.out, true, Existing::Force)?;
    println!("{}", results.table());

    // Predict one held-out conversation turn by turn with the first seed's model.
    let seed_dir = args.out.join(format!(
        "seed-{}",
        results.seeds().first().copied().unwrap_or(0)
    ));
    let (checkpoint, model) =
        Checkpoint::load(&seed_dir).with_context(|| format!("loading {}", seed_dir.display()))?;
    let corpus = mmer_data::synthetic::generate(&synthetic);
    let sample = corpus
        .split(Split::Test)
        .iter()
        .max_by_key(|d| d.utterances.len())
        .context("the synthetic test split is empty")?;
    let predictions = checkpoint.predict(&model, std::slice::from_ref(sample))?;
    println!(
        "Sample conversation {} ({} turns):\n",
        sample.id,
        sample.utterances.len()
    );
    println!("{}", render_table(&predictions));
    println!(
        "Run directory: {} (config.toml, results.json, seed-*/checkpoint.json + model.bpk)",
        args.out.display()
    );
    Ok(())
}
