//! `mmer serve`: a trained model behind an HTTP JSON API (the server is
//! `mmer_serve`; this module only parses its arguments).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use mmer_serve::ServeConfig;

/// Arguments of `mmer serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A trained model: a `seed-<k>` directory of a run (checkpoint.json +
    /// model.bpk), loaded once; its text encoder comes from
    /// $MMER_MODELS_DIR (else ./models). The only file the server opens.
    #[arg(long)]
    pub model: PathBuf,
    /// Listening, limits and timeouts.
    #[command(flatten)]
    pub config: ServeConfig,
}

/// Entry point of `mmer serve`.
pub fn run(args: ServeArgs) -> Result<()> {
    mmer_serve::run(&args.model, args.config)?;
    Ok(())
}
