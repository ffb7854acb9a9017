//! The extraction speed benchmark behind `mmer bench extract`: real-time
//! factor of the extraction stage on a generated clip, with a per-stage
//! breakdown.
//!
//! The clip is made by ffmpeg: lavfi `testsrc` video (H.264, yuv420p) and
//! real speech — EmoDB clips concatenated to the clip's length — as AAC in
//! MP4, the commonest user format. A `--picture` video is looped with
//! ffmpeg's `loop` filter, not `-stream_loop -1`: with ffmpeg 5.1 the latter
//! fails on the CREMA-D FLVs ("Operation not permitted") yet exits 0, which
//! gave a clip with 2.04 s of video under 10 s of audio. [`make_clip`] probes
//! what it made and refuses a clip whose streams are short. Visual features belong to mmer-vision,
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
use crate::probe::MediaInfo;

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

/// Shortest share of the requested duration a made clip's stream may have:
/// encoders round the end to a frame or an AAC packet, never by 5 %.
const MIN_CLIP_SHARE: f64 = 0.95;

/// Makes the benchmark clip at `out` from `speech` WAV files (looped and
/// cut to length), then checks with ffprobe that both streams last the
/// requested time.
///
/// # Errors
/// [`Error::InvalidOption`] (no speech file, a non-positive duration),
/// [`Error::FfmpegNotFound`], [`Error::Corrupt`] (ffmpeg failed),
/// [`Error::ClipTooShort`] (a stream of the clip came out short).
pub fn make_clip(ffmpeg: &Ffmpeg, spec: &ClipSpec, speech: &[PathBuf], out: &Path) -> Result<()> {
    if speech.is_empty() {
        return Err(Error::InvalidOption("no speech file for the clip".into()));
    }
    if !(spec.seconds.is_finite() && spec.seconds > 0.0) {
        return Err(Error::InvalidOption(format!(
            "clip duration {} s is not positive",
            spec.seconds
        )));
    }
    let mut args: Vec<OsString> = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
        .map(OsString::from)
        .into();
    let (w, h) = (spec.width, spec.height);
    let video_filter = match &spec.picture {
        Some(picture) => {
            args.push("-i".into());
            args.push(picture.into());
            // Cut the picture to the clip's length first, so `loop` buffers at
            // most that much decoded video; `loop` keeps timestamps rising
            // across repeats, and a short picture is repeated as a whole.
            let s = spec.seconds;
            format!(
                "[0:v]trim=duration={s},setpts=PTS-STARTPTS,loop=loop=-1:size={LOOP_MAX_FRAMES},\
                 scale={w}:{h}:force_original_aspect_ratio=decrease,\
                 pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,fps={},trim=duration={s},setpts=PTS-STARTPTS[v];",
                spec.fps
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
    check_clip(&ffmpeg.probe(out)?, spec.seconds)
}

/// Largest `size` of ffmpeg's `loop` filter (frames it buffers and repeats).
const LOOP_MAX_FRAMES: u32 = 32767;

/// [`Error::ClipTooShort`] unless both streams of `info` last at least
/// [`MIN_CLIP_SHARE`] of `seconds`.
fn check_clip(info: &MediaInfo, seconds: f64) -> Result<()> {
    let audio = info.audio.as_ref().and_then(|a| a.duration_s);
    for (kind, got_s) in [("video", info.video_duration_s()), ("audio", audio)] {
        if got_s.is_none_or(|got| got < MIN_CLIP_SHARE * seconds) {
            return Err(Error::ClipTooShort {
                path: info.path.clone(),
                kind,
                got_s,
                want_s: seconds,
            });
        }
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
        ..KeyframeOptions::default()
    });
    let extractors: [&dyn StreamExtractor; 2] = [&audio, visual.unwrap_or(&stand_in)];
    let job = Job {
        id: "bench".into(),
        path: clip.to_path_buf(),
        ..Job::default()
    };
    let mut walls = Vec::new();
    let mut stages: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for i in 0..=repeats {
        let opts = ExtractOptions {
            out: work.join(format!("store-{i}")),
            jobs: 1,
            force: true,
            shard: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{AudioStream, VideoStream};

    fn info(video_s: Option<f64>, audio_s: Option<f64>) -> MediaInfo {
        MediaInfo {
            path: PathBuf::from("clip.mp4"),
            size_bytes: 1,
            format: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            duration_s: None,
            audio: Some(AudioStream {
                index: 1,
                codec: "aac".into(),
                sample_rate: 16_000,
                channels: 1,
                duration_s: audio_s,
            }),
            video: Some(VideoStream {
                index: 0,
                codec: "h264".into(),
                width: 640,
                height: 360,
                fps: Some(25.0),
                variable_frame_rate: false,
                rotation: 0,
                start_s: 0.0,
                duration_s: video_s,
            }),
            segment: None,
        }
    }

    #[test]
    fn a_clip_with_short_video_is_refused() {
        assert!(check_clip(&info(Some(10.0), Some(10.02)), 10.0).is_ok());
        // The -stream_loop failure: 2.04 s of video under 10 s of audio.
        let err = check_clip(&info(Some(2.04), Some(10.0)), 10.0).expect_err("short video");
        assert!(
            matches!(err, Error::ClipTooShort { kind: "video", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("2.04 s"), "{err}");
        assert!(matches!(
            check_clip(&info(Some(10.0), None), 10.0),
            Err(Error::ClipTooShort { kind: "audio", .. })
        ));
    }
}
