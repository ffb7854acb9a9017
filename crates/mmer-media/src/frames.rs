//! RGB keyframes, decoded by ffmpeg in one pass (`-f rawvideo -pix_fmt rgb24`).
//!
//! The k keyframes sit at the centres of k equal slices of the clip,
//! `start + (i + ½)·D/k` (DESIGN §2 "k FFmpeg keyframes"; D runs to the
//! start of the last frame, one frame period before the end); centres rather
//! than slice starts, so the first keyframe is not the often-black frame 0.
//! Or, in [`KeyframeMode::Scene`], at the strongest shot changes: a first
//! ffmpeg pass scores every frame with `select='gt(scene,T)'` and
//! `metadata=print`, the k highest-scoring cuts are kept, and when there are
//! fewer than k the slice centres farthest from them top the set up, so k
//! frames always come back in time order. The scene pass decodes the whole
//! video once more.
//!
//! One ffmpeg process decodes the chosen frames: a `select` filter keeps the first
//! frame at or after each target time, `showinfo` reports the time of the
//! frame actually kept (which matters for variable frame rate), and a
//! `scale` filter caps the size of huge videos. One process instead of k
//! seeks because starting ffmpeg costs about as much as decoding a short
//! clip.

use std::ffi::{OsStr, OsString};
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ffmpeg::{Ffmpeg, Program, run};
use crate::probe::MediaInfo;

/// Fallback spacing when the container does not know its duration, seconds.
const UNKNOWN_DURATION_SPACING_S: f64 = 1.0;

/// Default threshold of ffmpeg's scene score for a cut (the value ffmpeg's
/// own documentation uses for `select='gt(scene,0.3)'`).
pub const DEFAULT_SCENE_THRESHOLD: f64 = 0.3;

/// Where the k keyframes are taken.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum KeyframeMode {
    /// Centres of k equal slices of the clip.
    #[default]
    Uniform,
    /// The first frames of the k strongest shot changes whose ffmpeg scene
    /// score (0–1) exceeds `threshold`, topped up with slice centres.
    Scene {
        /// Minimum scene score of a cut, in (0, 1).
        threshold: f64,
    },
}

impl KeyframeMode {
    /// Scene mode with [`DEFAULT_SCENE_THRESHOLD`].
    pub fn scene() -> Self {
        Self::Scene {
            threshold: DEFAULT_SCENE_THRESHOLD,
        }
    }
}

/// Which frames to decode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KeyframeOptions {
    /// Number of keyframes k (≥ 1).
    pub count: usize,
    /// Cap on the longer side, pixels: bigger frames are scaled down
    /// (aspect kept). `None` keeps the native size.
    pub max_side: Option<u32>,
    /// Uniform or at scene changes.
    #[serde(default)]
    pub mode: KeyframeMode,
}

impl Default for KeyframeOptions {
    /// 8 uniform keyframes, longer side at most 1280 px (a 4K phone video
    /// would be 25 MB per RGB frame; a face detector needs far less).
    fn default() -> Self {
        Self {
            count: 8,
            max_side: Some(1280),
            mode: KeyframeMode::Uniform,
        }
    }
}

impl KeyframeOptions {
    /// "8 uniform keyframes" / "8 keyframes at scene changes (…)", for the
    /// store's stream descriptions.
    pub fn describe(&self) -> String {
        match self.mode {
            KeyframeMode::Uniform => format!("{} uniform keyframes", self.count),
            KeyframeMode::Scene { threshold } => format!(
                "{} keyframes at the strongest scene changes (ffmpeg scene score > {threshold}), \
                 topped up with uniform ones",
                self.count
            ),
        }
    }

    /// Checks the count, the size cap and the scene threshold.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the bad value.
    pub fn validate(&self) -> Result<()> {
        if self.count == 0 {
            return Err(Error::InvalidOption("keyframe count must be ≥ 1".into()));
        }
        if self.max_side == Some(0) {
            return Err(Error::InvalidOption("max_side must be ≥ 1".into()));
        }
        if let KeyframeMode::Scene { threshold } = self.mode
            && !(threshold > 0.0 && threshold < 1.0)
        {
            return Err(Error::InvalidOption(format!(
                "scene threshold {threshold} is outside (0, 1)"
            )));
        }
        Ok(())
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbFrame {
    /// Presentation time in the file, seconds.
    pub time_s: f64,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Row-major RGB bytes, `height * width * 3`.
    pub data: Vec<u8>,
}

impl RgbFrame {
    /// The pixel at `(x, y)` as `[r, g, b]`, if inside the frame.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.data.get(i..i + 3).map(|p| [p[0], p[1], p[2]])
    }
}

/// Output size for a `width × height` frame under a longer-side cap,
/// aspect kept, each side at least 1 and even when scaled (codec-friendly
/// for anyone who re-encodes crops).
pub fn capped_size(width: u32, height: u32, max_side: Option<u32>) -> (u32, u32) {
    let Some(cap) = max_side else {
        return (width, height);
    };
    let longer = width.max(height);
    if longer <= cap || longer == 0 {
        return (width, height);
    }
    let scale = f64::from(cap) / f64::from(longer);
    let fit = |side: u32| {
        let s = (f64::from(side) * scale).round() as u32;
        (s - s % 2).max(2).min(cap)
    };
    (fit(width), fit(height))
}

/// Target times, seconds in the file's timeline.
fn target_times(start_s: f64, duration_s: Option<f64>, count: usize) -> Vec<f64> {
    let step = duration_s.map_or(UNKNOWN_DURATION_SPACING_S, |d| d / count as f64);
    (0..count)
        .map(|i| start_s + (i as f64 + 0.5) * step)
        .collect()
}

/// How far before a cut's reported time its target is put, seconds: the
/// log prints times rounded, and `gte(t, target)` must still keep the cut
/// frame rather than the one after it. Far below any frame period.
const CUT_TIME_SLACK_S: f64 = 1e-3;

/// Scene-mode targets: the `k` strongest `cuts` (`(time, score)`), then, if
/// fewer, the `uniform` targets farthest from every time already chosen
/// (earliest first on ties); sorted by time.
fn scene_targets(cuts: &[(f64, f64)], uniform: &[f64], k: usize) -> Vec<f64> {
    let mut strongest = cuts.to_vec();
    strongest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.total_cmp(&b.0)));
    let mut chosen: Vec<f64> = strongest
        .iter()
        .take(k)
        .map(|&(t, _)| t - CUT_TIME_SLACK_S)
        .collect();
    let mut pool = uniform.to_vec();
    while chosen.len() < k && !pool.is_empty() {
        let gap = |t: f64| {
            chosen
                .iter()
                .map(|&c| (c - t).abs())
                .fold(f64::INFINITY, f64::min)
        };
        let mut best = 0;
        for i in 1..pool.len() {
            if gap(pool[i]) > gap(pool[best]) {
                best = i;
            }
        }
        chosen.push(pool.remove(best));
    }
    chosen.sort_by(f64::total_cmp);
    chosen
}

impl Ffmpeg {
    /// Decodes `opts.count` RGB frames, uniformly or at scene changes
    /// ([`KeyframeMode`]), in time order.
    ///
    /// Fewer frames come back when the stream ends early (a truncated file
    /// that still decodes); none is an [`Error::Corrupt`].
    ///
    /// # Errors
    /// [`Error::InvalidOption`] (from [`KeyframeOptions::validate`]),
    /// [`Error::NoStream`] (no video), [`Error::FfmpegNotFound`],
    /// [`Error::Corrupt`].
    pub fn keyframes(&self, info: &MediaInfo, opts: &KeyframeOptions) -> Result<Vec<RgbFrame>> {
        opts.validate()?;
        let path = info.path.as_path();
        let video = info.video.as_ref().ok_or_else(|| Error::NoStream {
            path: path.to_path_buf(),
            kind: "video",
        })?;
        let (w, h) = video.display_size();
        let (out_w, out_h) = capped_size(w, h, opts.max_side);
        // The last frame starts one frame period before the end: aim within
        // [start, last frame] so the final slice centre still has a frame.
        let span = info
            .video_duration_s()
            .map(|d| video.fps.map_or(d, |fps| (d - 1.0 / fps).max(d / 2.0)));
        let uniform = target_times(video.start_s, span, opts.count);
        let targets = match opts.mode {
            KeyframeMode::Uniform => uniform,
            KeyframeMode::Scene { threshold } => {
                let cuts = self.scene_cuts(info, video.index, threshold)?;
                tracing::debug!(path = %path.display(), cuts = cuts.len(), "scene changes");
                scene_targets(&cuts, &uniform, opts.count)
            }
        };
        // select: keep the first frame whose time reaches target number
        // `selected_n` (the count of frames kept so far). The expression has
        // no list type, so a nested if-chain over selected_n picks the target.
        let mut target = format!("{:.6}", targets[opts.count - 1]);
        for (i, t) in targets.iter().enumerate().rev().skip(1) {
            target = format!("if(eq(selected_n\\,{i})\\,{t:.6}\\,{target})");
        }
        let select = format!("gte(t\\,{target})");
        let filter = format!("select='{select}',showinfo,scale={out_w}:{out_h}:flags=area");
        let input = info.input_args();
        let map = format!("0:{}", video.index);
        let count = opts.count.to_string();
        let args = filtered_video_args(
            &input,
            &map,
            &filter,
            &[
                OsStr::new("-frames:v"),
                OsStr::new(&count),
                OsStr::new("-f"),
                OsStr::new("rawvideo"),
                OsStr::new("-pix_fmt"),
                OsStr::new("rgb24"),
                OsStr::new("-"),
            ],
        );
        let frame_bytes = out_w as usize * out_h as usize * 3;
        let (buffers, log) = run(self, Program::Ffmpeg, path, &args, |out| {
            let mut frames = Vec::new();
            loop {
                let mut buf = vec![0u8; frame_bytes];
                match read_full(out, &mut buf)? {
                    n if n == frame_bytes => frames.push(buf),
                    0 => break,
                    // A partial frame: the stream ended mid-frame; drop it.
                    _ => break,
                }
            }
            Ok(frames)
        })?;
        if buffers.is_empty() {
            return Err(Error::Corrupt {
                program: "ffmpeg",
                path: path.to_path_buf(),
                stderr: format!("no video frame decoded; {}", log.tail_text()),
            });
        }
        if buffers.len() < opts.count {
            tracing::debug!(path = %path.display(), got = buffers.len(), wanted = opts.count, "fewer keyframes than requested");
        }
        Ok(buffers
            .into_iter()
            .enumerate()
            .map(|(i, data)| RgbFrame {
                time_s: log
                    .pts_times
                    .get(i)
                    .copied()
                    .unwrap_or_else(|| targets[i.min(targets.len() - 1)]),
                width: out_w,
                height: out_h,
                data,
            })
            .collect())
    }
}

impl Ffmpeg {
    /// `(time, score)` of every frame of video stream `index` whose scene
    /// score exceeds `threshold`: one decoding pass to a null output.
    fn scene_cuts(
        &self,
        info: &MediaInfo,
        index: usize,
        threshold: f64,
    ) -> Result<Vec<(f64, f64)>> {
        let input = info.input_args();
        let map = format!("0:{index}");
        let filter =
            format!("select='gt(scene\\,{threshold})',metadata=print:key=lavfi.scene_score");
        let args = filtered_video_args(
            &input,
            &map,
            &filter,
            &[OsStr::new("-f"), OsStr::new("null"), OsStr::new("-")],
        );
        let ((), log) = run(self, Program::Ffmpeg, &info.path, &args, |out| {
            std::io::copy(out, &mut std::io::sink()).map(|_| ())
        })?;
        Ok(log.scene_scores)
    }
}

/// ffmpeg arguments that decode video stream `map` (`0:<index>`) of the
/// file opened by `input` ([`MediaInfo::input_args`]) alone through the
/// filter graph `filter`, passing every frame on (the filter picks them;
/// logged at `info` for `showinfo`/`metadata`), followed by the `output`
/// arguments.
fn filtered_video_args<'a>(
    input: &'a [OsString],
    map: &'a str,
    filter: &'a str,
    output: &[&'a OsStr],
) -> Vec<&'a OsStr> {
    let mut args: Vec<&OsStr> = ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "info"]
        .map(OsStr::new)
        .to_vec();
    args.extend(input.iter().map(OsString::as_os_str));
    args.extend(
        [
            "-map",
            map,
            "-an",
            "-sn",
            "-vf",
            filter,
            "-fps_mode",
            "passthrough",
        ]
        .map(OsStr::new),
    );
    args.extend_from_slice(output);
    args
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_keeps_aspect_and_small_frames() {
        assert_eq!(capped_size(480, 360, Some(1280)), (480, 360));
        assert_eq!(capped_size(3840, 2160, Some(1280)), (1280, 720));
        assert_eq!(capped_size(1080, 1920, Some(640)), (360, 640));
        assert_eq!(capped_size(7, 5, None), (7, 5));
    }

    #[test]
    fn scene_targets_take_the_strongest_cuts_then_top_up() {
        let uniform = [0.5, 1.5, 2.5, 3.5];
        let cuts = [(1.0, 0.4), (3.0, 0.9), (2.0, 0.6)];
        let near = |got: &[f64], want: &[f64]| {
            got.len() == want.len()
                && got
                    .iter()
                    .zip(want)
                    .all(|(g, w)| (g - w).abs() <= CUT_TIME_SLACK_S)
        };
        // More cuts than k: the two strongest, in time order.
        let t = scene_targets(&cuts, &uniform, 2);
        assert!(near(&t, &[2.0, 3.0]), "{t:?}");
        // Fewer cuts than k: the slice centres farthest from them.
        let t = scene_targets(&cuts[1..2], &uniform, 3);
        assert!(near(&t, &[0.5, 1.5, 3.0]), "{t:?}");
        // No cut at all: the uniform targets, earliest first on ties.
        assert_eq!(scene_targets(&[], &uniform, 4), uniform.to_vec());
        assert_eq!(scene_targets(&[], &uniform, 1), vec![0.5]);
    }

    #[test]
    fn options_are_validated() {
        assert!(KeyframeOptions::default().validate().is_ok());
        for bad in [
            KeyframeOptions {
                count: 0,
                ..Default::default()
            },
            KeyframeOptions {
                mode: KeyframeMode::Scene { threshold: 1.0 },
                ..Default::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::InvalidOption(_))));
        }
    }

    #[test]
    fn targets_are_slice_centres() {
        let t = target_times(1.0, Some(4.0), 4);
        assert_eq!(t, vec![1.5, 2.5, 3.5, 4.5]);
        assert_eq!(target_times(0.0, None, 2), vec![0.5, 1.5]);
    }
}
