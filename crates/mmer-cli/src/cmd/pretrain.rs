//! `mmer pretrain`: cross-modal NCE pre-training of the modality encoders
//! and MAN (AMuSE §III-E1), one model per seed, selected on the validation
//! split's NCE loss. Labels are not read. `mmer train --init-from <out>`
//! then starts each seed from `<out>/seed-<k>`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mmer_train::pretrain::pretrain_seed;

use crate::cmd::train::{TrainArgs, prepare, seed_checkpoint, write_json};

/// Arguments of `mmer pretrain`: the same run config and flags as `train`
/// (its `[train.pretrain]` table sets epochs, negatives, temperature).
#[derive(Debug, Args)]
pub struct PretrainArgs {
    #[command(flatten)]
    run: TrainArgs,
}

/// Entry point of `mmer pretrain`.
pub fn run(args: PretrainArgs) -> Result<()> {
    let explicit_out = args.run.out.is_some();
    let (config, out) = args.run.into_config()?;
    let out = if explicit_out {
        out
    } else {
        PathBuf::from(format!("{}-pretrain", out.display()))
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let config_path = out.join("config.toml");
    std::fs::write(&config_path, toml::to_string_pretty(&config)?)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let (corpus, data) = prepare(&config)?;
    for &seed in &config.train.seeds {
        let (outcome, model) = pretrain_seed(&data, &config.train, seed, true)?;
        println!(
            "seed {seed}: epoch {} kept, validation NCE {:.4} ({:.0} s)",
            outcome.best_epoch, outcome.valid_loss, outcome.seconds
        );
        let dir = out.join(format!("seed-{seed}"));
        seed_checkpoint(&corpus, &data, &config, seed, outcome.best_epoch).save(&model, &dir)?;
        write_json(&dir.join("pretrain.json"), &outcome)?;
    }
    println!(
        "pre-trained weights: {} (use `mmer train --init-from {}` with the same config)",
        out.display(),
        out.display()
    );
    Ok(())
}
