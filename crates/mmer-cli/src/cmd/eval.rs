//! `mmer eval`: re-evaluate every seed of a trained run on one split; with
//! `--label-map`, through a label-mapping file, on the run's own data or
//! (`--on`) on another dataset's.

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
    /// Score through this label map (TOML: `source` and `target` label
    /// sets, `[map]` source class = target class(es); docs/label-maps/):
    /// classes are grouped into the map's comparison classes, turns of an
    /// unmapped gold class left out and counted. Writes
    /// `eval-map-<map>-<data corpus>-<split>.json` in the run. Without --on:
    /// the run's own data, grouped by the side of the map that names its
    /// label set (the in-domain reference).
    #[arg(long, value_name = "MAP", conflicts_with = "report")]
    pub label_map: Option<PathBuf>,
    /// Evaluate on another dataset (cross-domain): a run directory (its
    /// config.toml) or a run config whose `[data]` section gives the data,
    /// with the same text encoder and layers as the run's. The run's label
    /// set must be the map's source, this data's its target.
    #[arg(long, value_name = "RUN_OR_CONFIG", requires = "label_map")]
    pub on: Option<PathBuf>,
}

/// Entry point of `mmer eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    if let Some(map) = &args.label_map {
        let evaluation = mmer_run::cross_dataset::evaluate_mapped(
            &args.run,
            args.on.as_deref(),
            map,
            args.split,
        )?;
        println!("{}", evaluation.to_text());
        println!("\nwritten: {}", evaluation.written.display());
        return Ok(());
    }
    if mmer_run::evaluate::is_multi_label_run(&args.run)? {
        anyhow::ensure!(
            args.report.is_none(),
            "--report draws single-label runs; {} is multi-label",
            args.run.display()
        );
        let evaluation = mmer_run::evaluate::evaluate_multi_label_run(&args.run, args.split)?;
        let names: Vec<&str> = evaluation.classes.iter().map(String::as_str).collect();
        for (what, aggregate) in [
            ("threshold 0.5", &evaluation.at_half),
            ("thresholds tuned on validation", &evaluation.tuned),
        ] {
            println!(
                "{} | {} split | {} seed(s) | {what}\n",
                evaluation.corpus,
                evaluation.split,
                evaluation.per_seed.len()
            );
            println!("{}\n", aggregate.to_table(&names));
        }
        println!("written: {}", evaluation.written.display());
        return Ok(());
    }
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
