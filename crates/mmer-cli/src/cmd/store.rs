//! `mmer store ...`: operations on media feature stores. Thin: parses,
//! calls `mmer_core::sharding`, prints.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use mmer_core::sharding::{self, MERGE_REPORT};

/// Store subcommands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Merge the stores of `mmer extract --shard i/n` (all n of them) into
    /// one store, byte for byte the store one process would have written.
    /// Refuses shards of different runs or settings, a shard given twice or
    /// missing, a shard that did not finish, and an utterance whose records
    /// differ, naming the store and utterance. Plain stores (no shard)
    /// merge too, when made with the same settings.
    Merge(MergeArgs),
}

/// Arguments of `mmer store merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The stores to merge (for shards: every shard of the run, any order).
    #[arg(required = true)]
    pub stores: Vec<PathBuf>,
    /// The merged store: a new directory, or an earlier merge's output
    /// (replaced only once the new one is complete).
    #[arg(long)]
    pub out: PathBuf,
    /// Print the report as JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// Entry point of `mmer store`.
pub fn run(command: StoreCommand) -> Result<()> {
    match command {
        StoreCommand::Merge(args) => merge(args),
    }
}

fn merge(args: MergeArgs) -> Result<()> {
    let report = sharding::merge(&args.stores, &args.out)
        .with_context(|| format!("merging into {}", args.out.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.summary());
        println!(
            "store: {} ({}, index.json)",
            args.out.display(),
            MERGE_REPORT.join(", ")
        );
    }
    if !report.failed.is_empty() {
        bail!(
            "{} utterances failed in their shards and are not in the merged store (see {})",
            report.failed.len(),
            args.out.join(MERGE_REPORT[1]).display()
        );
    }
    Ok(())
}
