//! `mmer pretrain`: cross-modal NCE pre-training of the modality encoders
//! and MAN (AMuSE §III-E1), one model per seed, selected on the validation
//! split's NCE loss. Labels are not read. `mmer train --init-from <out>`
//! then starts each seed from `<out>/seed-<k>`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cmd::train::TrainArgs;
use mmer_run::run::pretrain_run;

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
    let (config, out) = args.run.into_config()?;
    let out = if explicit_out {
        out
    } else {
        PathBuf::from(format!("{}-pretrain", out.display()))
    };
    let (out, outcomes) = pretrain_run(&config, &out, true, existing)?;
    for outcome in &outcomes {
        println!(
            "seed {}: epoch {} kept, validation NCE {:.4} ({:.0} s)",
            outcome.seed, outcome.best_epoch, outcome.valid_loss, outcome.seconds
        );
    }
    println!(
        "pre-trained weights: {} (use `mmer train --init-from {}` with the same config)",
        out.display(),
        out.display()
    );
    Ok(())
}
