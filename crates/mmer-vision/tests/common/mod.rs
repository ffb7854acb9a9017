//! Shared by the integration tests and the `crema_d` example: where the
//! models and the CREMA-D clips are, and decoding a clip's frames with the
//! `ffmpeg` program (the real decoder lives in `mmer-media`; tests only need
//! every frame of a 2 s clip as `rgb24`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use mmer_vision::MODELS_DIR_ENV;

/// `$MMER_MODELS_DIR`, else `models/` at the workspace root (tests run in the
/// crate directory, where `./models` would be wrong).
pub fn models_dir() -> PathBuf {
    match std::env::var_os(MODELS_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("models"),
    }
}

/// The repository root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared/data/crema-d` relative to the workspace root.
pub fn crema_d_dir() -> PathBuf {
    workspace_root().join("../shared/data/crema-d")
}

/// Whether the `ffmpeg` and `ffprobe` programs run.
pub fn have_ffmpeg() -> bool {
    ["ffmpeg", "ffprobe"].iter().all(|p| {
        Command::new(p)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// One CREMA-D clip of `labels.csv`.
#[derive(Debug, Clone)]
pub struct Clip {
    /// The video file.
    pub path: PathBuf,
    /// The acted emotion (`emotion` column).
    pub emotion: String,
    /// The crowd's perceived emotion (`perceived_label` column).
    pub perceived: String,
}

/// The clips listed in `dir/labels.csv`.
pub fn crema_d_clips(dir: &Path) -> Result<Vec<Clip>> {
    let labels = dir.join("labels.csv");
    let mut reader =
        csv::Reader::from_path(&labels).with_context(|| format!("reading {}", labels.display()))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no column {name:?}", labels.display()))
    };
    let (file, emotion, perceived) = (
        column("file")?,
        column("emotion")?,
        column("perceived_label")?,
    );
    let mut clips = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}:{}", labels.display(), line + 2))?;
        let field = |i: usize| record.get(i).unwrap_or_default().to_string();
        clips.push(Clip {
            path: dir.join(field(file)),
            emotion: field(emotion),
            perceived: field(perceived),
        });
    }
    Ok(clips)
}

/// Every frame of a video's first video stream, decoded by ffmpeg.
pub struct DecodedVideo {
    /// Frame width.
    pub width: usize,
    /// Frame height.
    pub height: usize,
    /// `rgb24` frames, each `width * height * 3` bytes.
    pub frames: Vec<Vec<u8>>,
}

/// Decodes `path` with `ffprobe` (size) and `ffmpeg` (raw `rgb24`).
pub fn decode_video(path: &Path) -> Result<DecodedVideo> {
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .context("running ffprobe")?;
    if !probe.status.success() {
        bail!(
            "ffprobe {}: {}",
            path.display(),
            String::from_utf8_lossy(&probe.stderr)
        );
    }
    let text = String::from_utf8_lossy(&probe.stdout);
    let mut dims = text.trim().split(',').map(str::parse::<usize>);
    let (Some(Ok(width)), Some(Ok(height))) = (dims.next(), dims.next()) else {
        bail!("ffprobe {}: unexpected output {text:?}", path.display());
    };
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(path)
        .args(["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .context("running ffmpeg")?;
    if !out.status.success() {
        bail!(
            "ffmpeg {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let frame_bytes = width * height * 3;
    if frame_bytes == 0 || out.stdout.len() % frame_bytes != 0 {
        bail!(
            "ffmpeg {}: {} bytes is not a whole number of {width}×{height} frames",
            path.display(),
            out.stdout.len()
        );
    }
    Ok(DecodedVideo {
        width,
        height,
        frames: out
            .stdout
            .chunks_exact(frame_bytes)
            .map(<[u8]>::to_vec)
            .collect(),
    })
}
