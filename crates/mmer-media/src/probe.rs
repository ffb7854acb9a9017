//! What a media file holds, from `ffprobe -print_format json`.
//!
//! Two things ffprobe would get wrong are settled here. A WAV file's
//! header is checked by mmer-audio first ([`mmer_audio::read_wav_header`]):
//! ffmpeg reads 16-bit data under a header declaring 7 bits per sample as
//! 8-bit audio twice as long, and picks one side of a header whose block
//! alignment contradicts its channels and sample size. And a duration
//! ffprobe only estimated from the bitrate (an MP3 without a Xing header:
//! easily off by half) is replaced by where the file's packets really end.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use mmer_data::conversation::Segment;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ffmpeg::{Ffmpeg, Program, check_file, input_arg, run};

/// The first audio stream of a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioStream {
    /// ffmpeg's stream index (for `-map 0:<index>`).
    pub index: usize,
    /// Codec name (`mp3`, `aac`, `pcm_s16le`, ...).
    pub codec: String,
    /// Native sample rate, Hz (0 when unknown).
    pub sample_rate: u32,
    /// Channel count (0 when unknown).
    pub channels: u32,
    /// Stream duration, seconds, when the container says.
    pub duration_s: Option<f64>,
}

/// The first real video stream of a file (cover art is skipped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoStream {
    /// ffmpeg's stream index.
    pub index: usize,
    /// Codec name (`vp6f`, `h264`, ...).
    pub codec: String,
    /// Coded width, pixels (before rotation).
    pub width: u32,
    /// Coded height, pixels (before rotation).
    pub height: u32,
    /// Average frame rate, frames/s, when known.
    pub fps: Option<f64>,
    /// Whether the nominal and average frame rates differ (variable frame rate).
    pub variable_frame_rate: bool,
    /// Display rotation in degrees (from the display matrix or `rotate` tag);
    /// ffmpeg applies it when decoding, so ±90 swaps the output width/height.
    pub rotation: i32,
    /// Stream start, seconds.
    pub start_s: f64,
    /// Stream duration, seconds, when the container says.
    pub duration_s: Option<f64>,
}

impl VideoStream {
    /// Width and height of decoded frames, after rotation.
    pub fn display_size(&self) -> (u32, u32) {
        if self.rotation.rem_euclid(180) == 90 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// The streams of one media file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    /// The file.
    pub path: PathBuf,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Container name(s) as ffprobe reports them (`flv`, `mov,mp4,m4a,3gp,3g2,mj2`).
    pub format: String,
    /// Container duration, seconds, when known.
    pub duration_s: Option<f64>,
    /// First audio stream, if any.
    pub audio: Option<AudioStream>,
    /// First video stream that is not cover art, if any.
    pub video: Option<VideoStream>,
    /// The part of the file that decoding reads (`None`: all of it); set by
    /// [`MediaInfo::cut`].
    #[serde(default)]
    pub segment: Option<Segment>,
}

/// A range may end this much past the probed duration (container durations
/// are rounded, and transcripts are timed by hand) and is then clamped.
const SEGMENT_END_TOLERANCE_S: f64 = 0.25;

impl MediaInfo {
    /// This file as the utterance `segment` of it: decoding seeks to the
    /// range (ffmpeg's input seek restarts timestamps at 0), and every
    /// duration becomes the range's.
    ///
    /// # Errors
    /// [`Error::SegmentOutside`] when the range ends after the clip (by more
    /// than a quarter second; a range that overshoots less is clamped), or
    /// starts at or after its end.
    pub fn cut(mut self, segment: Segment) -> Result<Self> {
        let known = self
            .duration_s
            .or_else(|| self.video.as_ref().and_then(|v| v.duration_s))
            .or_else(|| self.audio.as_ref().and_then(|a| a.duration_s));
        let mut segment = segment;
        if let Some(duration_s) = known {
            if segment.end_s > duration_s + SEGMENT_END_TOLERANCE_S || segment.start_s >= duration_s
            {
                return Err(Error::SegmentOutside {
                    path: self.path.clone(),
                    segment,
                    duration_s,
                });
            }
            segment.end_s = segment.end_s.min(duration_s);
        }
        let length = Some(segment.duration_s());
        self.duration_s = length;
        if let Some(v) = &mut self.video {
            v.start_s = 0.0;
            v.duration_s = length;
        }
        if let Some(a) = &mut self.audio {
            a.duration_s = length;
        }
        self.segment = Some(segment);
        Ok(self)
    }

    /// ffmpeg's input arguments for this file: `-i <file>`, preceded by the
    /// options that seek to [`MediaInfo::segment`] when there is one.
    pub(crate) fn input_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = match self.segment {
            Some(s) => vec![
                "-ss".into(),
                format!("{:.3}", s.start_s).into(),
                "-t".into(),
                format!("{:.3}", s.duration_s()).into(),
            ],
            None => Vec::new(),
        };
        args.push("-i".into());
        args.push(input_arg(&self.path));
        args
    }

    /// Best known duration of the video: the stream's, else the container's
    /// minus the stream's start.
    pub fn video_duration_s(&self) -> Option<f64> {
        let v = self.video.as_ref()?;
        v.duration_s
            .or_else(|| self.duration_s.map(|d| (d - v.start_s).max(0.0)))
            .filter(|d| d.is_finite() && *d > 0.0)
    }
}

#[derive(Debug, Deserialize)]
struct ProbeJson {
    #[serde(default)]
    streams: Vec<StreamJson>,
    #[serde(default)]
    format: Option<FormatJson>,
}

#[derive(Debug, Deserialize)]
struct FormatJson {
    #[serde(default)]
    format_name: Option<String>,
    #[serde(default)]
    duration: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StreamJson {
    index: usize,
    #[serde(default)]
    codec_type: Option<String>,
    #[serde(default)]
    codec_name: Option<String>,
    #[serde(default)]
    width: Option<u32>,
    #[serde(default)]
    height: Option<u32>,
    #[serde(default)]
    avg_frame_rate: Option<String>,
    #[serde(default)]
    r_frame_rate: Option<String>,
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    sample_rate: Option<String>,
    #[serde(default)]
    channels: Option<u32>,
    #[serde(default)]
    disposition: HashMap<String, i64>,
    #[serde(default)]
    tags: HashMap<String, String>,
    #[serde(default)]
    side_data_list: Vec<serde_json::Value>,
}

/// `"30000/1001"` → 29.97; `"0/0"` or garbage → `None`.
fn rational(s: Option<&str>) -> Option<f64> {
    let (n, d) = s?.split_once('/')?;
    let (n, d): (f64, f64) = (n.trim().parse().ok()?, d.trim().parse().ok()?);
    (d != 0.0 && n > 0.0).then_some(n / d)
}

fn seconds(s: Option<&str>) -> Option<f64> {
    s?.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

fn rotation(stream: &StreamJson) -> i32 {
    let from_side_data = stream
        .side_data_list
        .iter()
        .find_map(|sd| sd.get("rotation").and_then(serde_json::Value::as_f64));
    let from_tag = stream
        .tags
        .get("rotate")
        .and_then(|r| r.parse::<f64>().ok());
    from_side_data.or(from_tag).map_or(0, |r| r.round() as i32)
}

/// Parses ffprobe's JSON (split out for unit tests).
fn parse(path: &Path, size_bytes: u64, json: &[u8]) -> Result<MediaInfo> {
    let probe: ProbeJson = serde_json::from_slice(json).map_err(|e| Error::Probe {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let audio = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"))
        .map(|s| AudioStream {
            index: s.index,
            codec: s.codec_name.clone().unwrap_or_default(),
            sample_rate: s
                .sample_rate
                .as_deref()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            channels: s.channels.unwrap_or(0),
            duration_s: seconds(s.duration.as_deref()),
        });
    let video = probe
        .streams
        .iter()
        .find(|s| {
            s.codec_type.as_deref() == Some("video")
                && s.disposition.get("attached_pic").copied().unwrap_or(0) == 0
                && s.width.unwrap_or(0) > 0
                && s.height.unwrap_or(0) > 0
        })
        .map(|s| {
            let avg = rational(s.avg_frame_rate.as_deref());
            let nominal = rational(s.r_frame_rate.as_deref());
            VideoStream {
                index: s.index,
                codec: s.codec_name.clone().unwrap_or_default(),
                width: s.width.unwrap_or(0),
                height: s.height.unwrap_or(0),
                fps: avg.or(nominal),
                variable_frame_rate: matches!((avg, nominal), (Some(a), Some(r)) if (a - r).abs() / r > 0.01),
                rotation: rotation(s),
                start_s: seconds(s.start_time.as_deref()).unwrap_or(0.0),
                duration_s: seconds(s.duration.as_deref()).filter(|d| *d > 0.0),
            }
        });
    let format = probe.format.as_ref();
    Ok(MediaInfo {
        path: path.to_path_buf(),
        size_bytes,
        format: format
            .and_then(|f| f.format_name.clone())
            .unwrap_or_default(),
        duration_s: format
            .and_then(|f| seconds(f.duration.as_deref()))
            .filter(|d| *d > 0.0),
        audio,
        video,
        segment: None,
    })
}

/// Where the packets of a file lie, from demuxing it (nothing is decoded).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PacketSpan {
    /// Earliest packet time over all streams, seconds.
    start_s: Option<f64>,
    /// Latest packet end (time + duration) per stream index, seconds.
    ends: HashMap<usize, f64>,
}

impl PacketSpan {
    /// Where the last packet of any stream ends, seconds from the first
    /// packet (`None`: no packets).
    pub(crate) fn end_s(&self) -> Option<f64> {
        let end = self.ends.values().copied().reduce(f64::max)?;
        Some(end - self.start_s.unwrap_or(0.0))
    }

    /// Where the last packet of stream `index` ends, seconds from the first
    /// packet of any stream.
    pub(crate) fn stream_end_s(&self, index: usize) -> Option<f64> {
        Some(self.ends.get(&index)? - self.start_s.unwrap_or(0.0))
    }

    /// Adds one line of `ffprobe -show_entries packet=... -of compact=p=0`
    /// (`stream_index=1|pts_time=0.835000|dts_time=0.835000|duration_time=0.026000`).
    fn push(&mut self, line: &str) {
        let mut index = None;
        let (mut pts, mut dts, mut duration) = (None, None, None);
        for field in line.trim().split('|') {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let number = value.parse::<f64>().ok().filter(|v| v.is_finite());
            match key {
                "stream_index" => index = value.parse::<usize>().ok(),
                "pts_time" => pts = number,
                "dts_time" => dts = number,
                "duration_time" => duration = number,
                _ => {}
            }
        }
        let (Some(index), Some(time)) = (index, pts.or(dts)) else {
            return;
        };
        self.start_s = Some(self.start_s.map_or(time, |s| s.min(time)));
        let end = time + duration.unwrap_or(0.0).max(0.0);
        let slot = self.ends.entry(index).or_insert(end);
        *slot = slot.max(end);
    }
}

/// Whether `path` starts like a RIFF/WAVE file.
fn is_riff_wave(path: &Path) -> Result<bool> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut magic = [0u8; 12];
    match std::fs::File::open(path)
        .map_err(io)?
        .read_exact(&mut magic)
    {
        Ok(()) => Ok(&magic[..4] == b"RIFF" && &magic[8..] == b"WAVE"),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(io(e)),
    }
}

impl Ffmpeg {
    /// The streams of `path`.
    ///
    /// # Errors
    /// [`Error::Io`] (missing/unreadable), [`Error::ZeroLength`],
    /// [`Error::Wav`] (a WAV header that contradicts itself or the file),
    /// [`Error::FfmpegNotFound`], [`Error::Corrupt`] (ffprobe rejects the
    /// file; its stderr tail included), [`Error::Probe`].
    pub fn probe(&self, path: &Path) -> Result<MediaInfo> {
        let size = check_file(path)?;
        if is_riff_wave(path)? {
            mmer_audio::read_wav_header(path).map_err(Error::Wav)?;
        }
        let input = input_arg(path);
        // Warnings too: "Estimating duration from bitrate" is one.
        let args: [&OsStr; 8] = [
            OsStr::new("-v"),
            OsStr::new("warning"),
            OsStr::new("-print_format"),
            OsStr::new("json"),
            OsStr::new("-show_format"),
            OsStr::new("-show_streams"),
            OsStr::new("-i"),
            &input,
        ];
        let (json, log) = run(self, Program::Ffprobe, path, &args, |out| {
            let mut buf = Vec::new();
            out.read_to_end(&mut buf)?;
            Ok(buf)
        })?;
        let mut info = parse(path, size, &json)?;
        if log.duration_estimated {
            let span = self.packet_span(path)?;
            tracing::debug!(path = %path.display(), estimated = ?info.duration_s, measured = ?span.end_s(), "ffprobe estimated the duration; using the packets'");
            info.duration_s = span.end_s().filter(|d| *d > 0.0);
            if let Some(a) = &mut info.audio {
                a.duration_s = span.stream_end_s(a.index).filter(|d| *d > 0.0);
            }
            if let Some(v) = &mut info.video {
                v.duration_s = span
                    .stream_end_s(v.index)
                    .map(|end| end - v.start_s)
                    .filter(|d| *d > 0.0);
            }
        }
        Ok(info)
    }

    /// Where the packets of `path` lie, by demuxing the whole file (no
    /// decoding: about 0.1 s for a CREMA-D clip).
    ///
    /// # Errors
    /// [`Error::FfmpegNotFound`], [`Error::Spawn`], [`Error::Corrupt`].
    pub(crate) fn packet_span(&self, path: &Path) -> Result<PacketSpan> {
        let input = input_arg(path);
        let args: [&OsStr; 8] = [
            OsStr::new("-v"),
            OsStr::new("error"),
            OsStr::new("-show_entries"),
            OsStr::new("packet=stream_index,pts_time,dts_time,duration_time"),
            OsStr::new("-of"),
            OsStr::new("compact=p=0"),
            OsStr::new("-i"),
            &input,
        ];
        let (span, _) = run(self, Program::Ffprobe, path, &args, |out| {
            let mut span = PacketSpan::default();
            for line in BufReader::new(out).lines() {
                span.push(&line?);
            }
            Ok(span)
        })?;
        Ok(span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flv_with_data_stream_and_cover_art_is_not_video() {
        let json = br#"{"streams": [
            {"index": 0, "codec_type": "data"},
            {"index": 1, "codec_type": "audio", "codec_name": "mp3", "sample_rate": "44100", "channels": 1},
            {"index": 2, "codec_type": "video", "codec_name": "vp6f", "width": 480, "height": 360,
             "r_frame_rate": "30000/1001", "avg_frame_rate": "989/33", "start_time": "0.027000"}],
            "format": {"format_name": "flv", "duration": "2.235000"}}"#;
        let info = parse(Path::new("x.flv"), 10, json).unwrap();
        let v = info.video.as_ref().unwrap();
        assert_eq!((v.index, v.width, v.height), (2, 480, 360));
        assert!((v.fps.unwrap() - 29.97).abs() < 0.01);
        assert!(!v.variable_frame_rate);
        assert!((info.video_duration_s().unwrap() - 2.208).abs() < 1e-9);
        assert_eq!(info.audio.as_ref().unwrap().sample_rate, 44_100);

        let cover = br#"{"streams": [
            {"index": 0, "codec_type": "audio", "codec_name": "mp3"},
            {"index": 1, "codec_type": "video", "width": 500, "height": 500,
             "disposition": {"attached_pic": 1}}], "format": {}}"#;
        let info = parse(Path::new("x.mp3"), 10, cover).unwrap();
        assert!(info.video.is_none());
    }

    #[test]
    fn rotation_swaps_display_size() {
        let json =
            br#"{"streams": [{"index": 0, "codec_type": "video", "width": 1920, "height": 1080,
            "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}]}"#;
        let info = parse(Path::new("x.mp4"), 10, json).unwrap();
        assert_eq!(info.video.unwrap().display_size(), (1080, 1920));
    }

    #[test]
    fn packet_lines_give_the_span_per_stream() {
        let mut span = PacketSpan::default();
        assert_eq!(span.end_s(), None);
        for line in [
            "stream_index=1|pts_time=0.000000|dts_time=0.000000|duration_time=0.026000",
            "stream_index=2|pts_time=0.027000|dts_time=0.027000|duration_time=N/A",
            "stream_index=2|pts_time=N/A|dts_time=0.861000|duration_time=0.033000",
            "stream_index=1|pts_time=0.835000|dts_time=0.835000|duration_time=0.026000",
            "garbage",
            "stream_index=x|pts_time=9",
        ] {
            span.push(line);
        }
        assert!((span.end_s().unwrap() - 0.894).abs() < 1e-9);
        assert!((span.stream_end_s(1).unwrap() - 0.861).abs() < 1e-9);
        assert_eq!(span.stream_end_s(0), None);
    }

    #[test]
    fn garbage_json_is_a_probe_error_naming_the_file() {
        let err = parse(Path::new("x.mp4"), 1, b"not json").unwrap_err();
        assert!(err.to_string().contains("x.mp4"), "{err}");
    }
}
