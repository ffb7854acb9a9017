//! `mmer eval`: re-evaluate every seed of a trained run on one split.

use std::path::PathBuf;

use anyhow::{Context, Result};
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
    /// Also write a self-contained HTML page (metrics, per-class F1, confusion
    /// matrices, learning curves) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
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
    if let Some(path) = &args.report {
        let page = mmer_run::report_html::run_report(&args.run, &evaluation)?;
        mmer_core::atomic::write_file(path, page.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("report: {}", path.display());
    }
    Ok(())
}
