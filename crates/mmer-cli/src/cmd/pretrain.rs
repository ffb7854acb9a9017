//! `mmer pretrain`: cross-modal NCE pre-training of the modality encoders
//! and MAN (AMuSE §III-E1), one model per seed, selected on the validation
//! split's NCE loss. Labels are not read. `mmer train --init-from <out>`
//! then starts each seed from `<out>/seed-<k>`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use mmer_train::pretrain::pretrain_seed;

use crate::cmd::train::{Existing, RunDir, TrainArgs, add_seeds, prepare, seed_checkpoint};

/// Arguments of `mmer pretrain`: the same run config and flags as `train`
/// (its `[train.pretrain]` table sets epochs, negatives, temperature).
#[derive(Debug, Args)]
pub struct PretrainArgs {
    #[command(flatten)]
    run: TrainArgs,
}

/// Entry point of `mmer pretrain`.
pub fn run(args: PretrainArgs) -> Result<()> {
    let existing = args.run.existing();
    let explicit_out = args.run.out.is_some();
    let (mut config, out) = args.run.into_config()?;
    let out = if explicit_out {
        out
    } else {
        PathBuf::from(format!("{}-pretrain", out.display()))
    };
    let (corpus, data) = prepare(&config)?;
    let run = RunDir::open(&out, existing, &config)?;
    run.write("config.toml", toml::to_string_pretty(&config)?.as_bytes())?;
    for &seed in &config.train.seeds {
        if existing == Existing::Resume
            && run
                .finished::<serde_json::Value>(seed, &config.train, "pretrain.json")?
                .is_some()
        {
            println!("seed {seed}: already pre-trained in {}", out.display());
            continue;
        }
        let (outcome, model) = pretrain_seed(&data, &config.train, seed, true)?;
        println!(
            "seed {seed}: epoch {} kept, validation NCE {:.4} ({:.0} s)",
            outcome.best_epoch, outcome.valid_loss, outcome.seconds
        );
        let summary = serde_json::to_vec_pretty(&outcome)?;
        seed_checkpoint(&corpus, &data, &config, seed, outcome.best_epoch).save_with(
            &model,
            &run.seed_dir(seed),
            &[("pretrain.json", summary)],
        )?;
    }
    add_seeds(&mut config.train.seeds, run.seeds()?);
    run.write("config.toml", toml::to_string_pretty(&config)?.as_bytes())?;
    let out = run.finish()?;
    println!(
        "pre-trained weights: {} (use `mmer train --init-from {}` with the same config)",
        out.display(),
        out.display()
    );
    Ok(())
}
