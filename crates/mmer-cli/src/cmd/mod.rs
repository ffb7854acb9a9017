//! One module per verb.

pub mod analyze;
pub mod bench;
pub mod data;
pub mod demo;
pub mod eval;
pub mod extract;
pub mod predict;
pub mod pretrain;
pub mod robustness;
pub mod serve;
pub mod store;
pub mod train;
pub mod transcribe;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// `--out FILE`, or stdout when none is given.
pub fn open_output(out: Option<&Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    })
}

/// Runs `work` on every file and hands each result to `emit`. A file whose
/// work fails is logged by name and the others still run; the command then
/// fails, naming every such file. An error of `emit` (writing the output)
/// stops at once.
pub fn each_file<T>(
    files: &[PathBuf],
    mut work: impl FnMut(&Path) -> anyhow::Result<T>,
    mut emit: impl FnMut(T) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for file in files {
        match work(file) {
            Ok(result) => emit(result)?,
            Err(err) => {
                tracing::error!("{}", crate::error_chain(&err));
                failed.push(file.display().to_string());
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} files failed (named above): {}",
            failed.len(),
            files.len(),
            failed.join(", ")
        );
    }
    Ok(())
}
