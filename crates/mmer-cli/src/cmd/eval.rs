//! `mmer eval`: re-evaluate every seed of a trained run on one split.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use mmer_core::Split;

/// Arguments of `mmer eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Run directory written by `mmer train` (holds config.toml and seed-*/).
    pub run: PathBuf,
    /// Split to evaluate. Model selection already happened on `valid`.
    #[arg(long, value_enum, default_value = "test")]
    pub split: Split,
}

/// Entry point of `mmer eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let evaluation = mmer_run::evaluate::evaluate_run(&args.run, args.split)?;
    let names: Vec<&str> = evaluation.classes.iter().map(String::as_str).collect();
    println!(
        "{} | {} split | {} seed(s)\n",
        evaluation.corpus,
        evaluation.split,
        evaluation.per_seed.len()
    );
    println!("{}", evaluation.aggregate.to_table(&names));
    println!("\nwritten: {}", evaluation.written.display());
    Ok(())
}
