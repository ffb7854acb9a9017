//! The extraction speed benchmark behind `mmer bench extract`: real-time
//! factor of the extraction stage on a generated clip, with a per-stage
//! breakdown.
//!
//! The clip is made by ffmpeg: lavfi `testsrc` video (H.264, yuv420p) and
//! real speech — EmoDB clips concatenated to the clip's length — as AAC in
//! MP4, the commonest user format. Visual features belong to mmer-vision,
//! which this crate does not depend on: the caller passes its extractor in
//! ([`run`]'s `visual`). Without one, a stand-in extractor still makes the
//! stage decode the k keyframes, so the decoding cost is measured either way.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use mmer_core::Modality;
use mmer_core::media_store::{Presence, StreamInfo, StreamKey};
use serde::Serialize;

use crate::audio_features::{AudioFeatures, AudioFeaturesConfig};
use crate::error::{Error, Result};
use crate::extract::{self, ExtractOptions, Extracted, MediaInput, StreamExtractor};
use crate::ffmpeg::{Ffmpeg, Program, spawn_error};
use crate::frames::KeyframeOptions;
use crate::inputs::Job;

/// The benchmark clip.
#[derive(Debug, Clone, Serialize)]
pub struct ClipSpec {
    /// Duration, seconds.
    pub seconds: f64,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Keyframes decoded per clip.
    pub keyframes: usize,
    /// Picture source: a video file looped, scaled and padded to the clip's
    /// size and rate (e.g. a CREMA-D clip, so the face detector and the
    /// expression model see a face); `None` uses lavfi `testsrc`, which has
    /// no face — detection then runs but the expression model does not.
    pub picture: Option<PathBuf>,
}

impl Default for ClipSpec {
    /// Issue 4's target: 10 s, 640×360, 25 fps, 8 keyframes.
    fn default() -> Self {
        Self {
            seconds: 10.0,
            width: 640,
            height: 360,
            fps: 25,
            keyframes: 8,
            picture: None,
        }
    }
}

/// Result of [`run`].
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The clip.
    pub clip: ClipSpec,
    /// Timed repetitions (after one warm-up).
    pub repeats: usize,
    /// Median wall time of one file's extraction, seconds.
    pub wall_s: f64,
    /// `wall_s / clip.seconds`.
    pub real_time_factor: f64,
    /// Median wall time per stage, milliseconds.
    pub stages_ms: BTreeMap<String, f64>,
}

/// Stand-in for the visual extractors: asks for keyframes, records nothing.
struct KeyframeDecode(KeyframeOptions);

impl StreamExtractor for KeyframeDecode {
    fn name(&self) -> &'static str {
        "visual_stand_in"
    }
    fn fingerprint(&self) -> String {
        format!("keyframes={}", self.0.count)
    }
    fn streams(&self) -> Vec<(StreamKey, StreamInfo)> {
        Vec::new()
    }
    fn needs_keyframes(&self) -> Option<KeyframeOptions> {
        Some(self.0)
    }
    fn extract(&self, _input: &MediaInput<'_>) -> Result<Extracted> {
        Ok(Extracted::missing(Modality::Face, Presence::NotExtracted))
    }
}

/// Makes the benchmark clip at `out` from `speech` WAV files (looped and
/// cut to length).
///
/// # Errors
/// [`Error::InvalidOption`] (no speech file), [`Error::FfmpegNotFound`],
/// [`Error::Corrupt`] (ffmpeg failed).
pub fn make_clip(ffmpeg: &Ffmpeg, spec: &ClipSpec, speech: &[PathBuf], out: &Path) -> Result<()> {
    if speech.is_empty() {
        return Err(Error::InvalidOption("no speech file for the clip".into()));
    }
    let mut args: Vec<OsString> = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
        .map(OsString::from)
        .into();
    let (w, h) = (spec.width, spec.height);
    let video_filter = match &spec.picture {
        Some(picture) => {
            args.extend(["-stream_loop", "-1", "-i"].map(OsString::from));
            args.push(picture.into());
            format!(
                "[0:v]scale={w}:{h}:force_original_aspect_ratio=decrease,\
                 pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,fps={},trim=duration={},setpts=PTS-STARTPTS[v];",
                spec.fps, spec.seconds
            )
        }
        None => {
            args.extend(["-f", "lavfi", "-i"].map(OsString::from));
            args.push(
                format!(
                    "testsrc=size={w}x{h}:rate={}:duration={}",
                    spec.fps, spec.seconds
                )
                .into(),
            );
            "[0:v]null[v];".to_string()
        }
    };
    for wav in speech {
        args.push("-i".into());
        args.push(wav.into());
    }
    let inputs: String = (1..=speech.len()).map(|i| format!("[{i}:a]")).collect();
    args.push("-filter_complex".into());
    args.push(
        format!(
            "{video_filter}{inputs}concat=n={}:v=0:a=1,aloop=loop=-1:size=2e9,atrim=0:{}[a]",
            speech.len(),
            spec.seconds
        )
        .into(),
    );
    for a in [
        "-map",
        "[v]",
        "-map",
        "[a]",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
    ] {
        args.push(a.into());
    }
    args.push(out.into());
    let output = Command::new(ffmpeg.exe(Program::Ffmpeg))
        .args(&args)
        .output()
        .map_err(|e| spawn_error(Program::Ffmpeg, ffmpeg.exe(Program::Ffmpeg), out, e))?;
    if !output.status.success() {
        return Err(Error::Corrupt {
            program: "ffmpeg",
            path: out.to_path_buf(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Extracts `clip` `repeats` times (plus a warm-up) into a fresh store under
/// `work` each time, one job, and reports medians.
///
/// `visual` is the Face/Body extractor (mmer-vision's, built by the caller
/// with `spec.keyframes` keyframes); `None` times only the keyframe decode.
///
/// # Errors
/// [`Error::InvalidOption`] (0 repeats), any extraction error of the clip.
pub fn run(
    ffmpeg: &Ffmpeg,
    spec: &ClipSpec,
    clip: &Path,
    work: &Path,
    repeats: usize,
    visual: Option<&dyn StreamExtractor>,
) -> Result<BenchReport> {
    if repeats == 0 {
        return Err(Error::InvalidOption("repeats must be ≥ 1".into()));
    }
    let audio = AudioFeatures::new(AudioFeaturesConfig::default())?;
    let stand_in = KeyframeDecode(KeyframeOptions {
        count: spec.keyframes,
        max_side: KeyframeOptions::default().max_side,
    });
    let extractors: [&dyn StreamExtractor; 2] = [&audio, visual.unwrap_or(&stand_in)];
    let job = Job {
        id: "bench".into(),
        path: clip.to_path_buf(),
    };
    let mut walls = Vec::new();
    let mut stages: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for i in 0..=repeats {
        let opts = ExtractOptions {
            out: work.join(format!("store-{i}")),
            jobs: 1,
            force: true,
        };
        let started = std::time::Instant::now();
        let report = extract::run(
            ffmpeg,
            &extractors,
            std::slice::from_ref(&job),
            &opts,
            &|_| {},
        )?;
        let wall = started.elapsed().as_secs_f64();
        if let Some(f) = report.files.iter().find(|f| f.reason.is_some()) {
            return Err(Error::Extractor {
                path: clip.to_path_buf(),
                extractor: "bench".into(),
                msg: f.reason.clone().unwrap_or_default(),
            });
        }
        if i == 0 {
            continue; // warm-up: page cache, ffmpeg's shared libraries
        }
        walls.push(wall);
        for f in &report.files {
            for (k, v) in &f.stages_ms {
                stages.entry(k.clone()).or_default().push(*v);
            }
        }
    }
    let wall_s = median(walls);
    Ok(BenchReport {
        clip: spec.clone(),
        repeats,
        wall_s,
        real_time_factor: wall_s / spec.seconds,
        stages_ms: stages.into_iter().map(|(k, v)| (k, median(v))).collect(),
    })
}
