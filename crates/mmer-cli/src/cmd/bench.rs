//! `mmer bench`: speed measurements (being written).

use anyhow::Result;
use clap::Args;

/// Arguments of `mmer bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {}

/// Entry point of `mmer bench`.
pub fn run(_args: BenchArgs) -> Result<()> {
    anyhow::bail!("not implemented yet")
}
