//! The audio track as 16 kHz mono f32 PCM, streamed from ffmpeg's stdout.
//!
//! ffmpeg down-mixes (`-ac 1`) and resamples (`-ar 16000`, swresample) so
//! every container and codec arrives in mmer-audio's analysis format
//! ([`mmer_audio::SAMPLE_RATE`]). A file without audio, or whose audio is
//! digital silence, is a recorded [`AudioState`], not an error: a video
//! without sound is still a valid utterance with a missing modality.
//!
//! What decodes is checked against what the file declares, because ffmpeg
//! decodes a cut file up to the cut and exits 0 while ffprobe still reports
//! the container header's duration. When the audio falls short of the
//! declared duration (or of a turn's range) by more than
//! [`shortfall_tolerance_s`], the file's packets are scanned (demuxed,
//! not decoded): if every stream stops early the file is truncated; if the
//! audio packets do reach the end, their data are corrupt — both are
//! [`Error::Truncated`]. Only an audio track that is simply shorter than
//! the file's video passes. An audio-only file that decodes to nothing is
//! [`Error::NoAudioSamples`].

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ffmpeg::{Ffmpeg, Program, run};
use crate::probe::MediaInfo;

/// Bytes read from ffmpeg per chunk (16 k samples, ~1 s of audio).
const CHUNK_BYTES: usize = 64 * 1024;

/// What the audio track of a file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioState {
    /// The file has no audio stream.
    Absent,
    /// An audio stream that decodes to no samples, in a file with video
    /// (a stub track, or a turn's range past the end of a short audio
    /// track); in an audio-only file this is [`Error::NoAudioSamples`].
    Empty,
    /// Samples, but no 25 ms frame above mmer-audio's activity floor
    /// ([`mmer_audio::activity::ACTIVITY_FLOOR_DB`], −60 dBFS).
    Silent,
    /// Audible audio.
    Present,
}

impl AudioState {
    /// Whether there is sound worth analysing.
    pub fn is_present(self) -> bool {
        self == AudioState::Present
    }
}

/// A decoded audio track.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAudio {
    /// What the track is.
    pub state: AudioState,
    /// 16 kHz mono samples in [-1, 1] (empty when `Absent`).
    pub samples: Vec<f32>,
}

impl DecodedAudio {
    /// Duration, seconds.
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / f64::from(mmer_audio::SAMPLE_RATE)
    }
}

/// Reads little-endian f32 samples until EOF, handing out whole samples only.
fn read_f32le(reader: &mut dyn Read, out: &mut Vec<f32>) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut carry = 0usize;
    loop {
        let n = reader.read(&mut buf[carry..])?;
        if n == 0 {
            break;
        }
        let filled = carry + n;
        let whole = filled - filled % 4;
        out.extend(
            buf[..whole]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        buf.copy_within(whole..filled, 0);
        carry = filled - whole;
    }
    Ok(())
}

impl Ffmpeg {
    /// Decodes the first audio stream of a probed file to 16 kHz mono.
    ///
    /// # Errors
    /// [`Error::FfmpegNotFound`], [`Error::Corrupt`] (ffmpeg fails; the
    /// stderr tail is included), [`Error::Truncated`] (far less audio than
    /// declared, see the module doc), [`Error::NoAudioSamples`] (an
    /// audio-only file whose audio decodes to nothing). A missing, empty
    /// (beside video) or silent track is `Ok` with the matching
    /// [`AudioState`].
    pub fn decode_audio(&self, info: &MediaInfo) -> Result<DecodedAudio> {
        let Some(stream) = &info.audio else {
            return Ok(DecodedAudio {
                state: AudioState::Absent,
                samples: Vec::new(),
            });
        };
        let path: &Path = &info.path;
        let input = info.input_args();
        let map = format!("0:{}", stream.index);
        let rate = mmer_audio::SAMPLE_RATE.to_string();
        let mut args: Vec<&OsStr> = [
            OsStr::new("-nostdin"),
            OsStr::new("-hide_banner"),
            OsStr::new("-loglevel"),
            OsStr::new("error"),
        ]
        .to_vec();
        args.extend(input.iter().map(OsString::as_os_str));
        args.extend([
            OsStr::new("-map"),
            OsStr::new(&map),
            OsStr::new("-vn"),
            OsStr::new("-ac"),
            OsStr::new("1"),
            OsStr::new("-ar"),
            OsStr::new(&rate),
            OsStr::new("-f"),
            OsStr::new("f32le"),
            OsStr::new("-c:a"),
            OsStr::new("pcm_f32le"),
            OsStr::new("-"),
        ]);
        let (mut samples, log) = run(self, Program::Ffmpeg, path, &args, |out| {
            let mut samples = Vec::new();
            read_f32le(out, &mut samples)?;
            Ok(samples)
        })?;
        if !log.tail.is_empty() {
            tracing::debug!(path = %path.display(), stderr = %log.tail_text(), "ffmpeg warnings while decoding audio");
        }
        // A damaged stream can decode to NaN/Inf; such samples carry no signal.
        samples
            .iter_mut()
            .filter(|s| !s.is_finite())
            .for_each(|s| *s = 0.0);
        let decoded_s = samples.len() as f64 / f64::from(mmer_audio::SAMPLE_RATE);
        let declared_s = stream.duration_s.or(info.duration_s);
        if let Some(declared_s) = declared_s
            && decoded_s + shortfall_tolerance_s(declared_s) < declared_s
        {
            self.check_short_audio(info, stream.index, declared_s, decoded_s)?;
        }
        if samples.is_empty() && info.video.is_none() {
            return Err(Error::NoAudioSamples {
                path: path.to_path_buf(),
                declared_s,
            });
        }
        let state = if samples.is_empty() {
            AudioState::Empty
        } else if mmer_audio::speech_bounds(&samples).is_none() {
            AudioState::Silent
        } else {
            AudioState::Present
        };
        Ok(DecodedAudio { state, samples })
    }

    /// Decides whether audio that decoded to `decoded_s` seconds, short of
    /// the `declared_s` that `info` gives it, is a truncated or corrupt file
    /// (`Err`) or a track shorter than the file's other streams (`Ok`). See
    /// the module doc.
    fn check_short_audio(
        &self,
        info: &MediaInfo,
        audio_index: usize,
        declared_s: f64,
        decoded_s: f64,
    ) -> Result<()> {
        // Positions from the start of the file: a turn's range is cut out of it.
        let (from_s, expected_s) = match info.segment {
            Some(s) => (s.start_s, s.end_s),
            None => (
                0.0,
                info.duration_s.map_or(declared_s, |d| d.max(declared_s)),
            ),
        };
        let span = self.packet_span(&info.path)?;
        let tolerance = shortfall_tolerance_s(expected_s);
        let reaches = |end: Option<f64>| end.is_some_and(|e| e + tolerance >= expected_s);
        let file_is_whole = reaches(span.end_s());
        let audio_packets_reach_the_end = reaches(span.stream_end_s(audio_index));
        tracing::debug!(
            path = %info.path.display(), expected_s, decoded_s, packets_end_s = ?span.end_s(),
            audio_end_s = ?span.stream_end_s(audio_index), "audio shorter than declared"
        );
        if file_is_whole && !audio_packets_reach_the_end {
            // The audio track just ends before the video does.
            return Ok(());
        }
        Err(Error::Truncated {
            path: info.path.clone(),
            expected_s,
            decoded_s: from_s + decoded_s,
            packets_end_s: span.end_s(),
        })
    }
}

/// Seconds by which decoded audio may fall short of a declared duration of
/// `declared_s` before the file is checked for truncation: containers round
/// durations, and codecs pad or trim a frame or two (CREMA-D's MP3-in-FLV
/// clips decode to within 0.15 s of their container's duration).
fn shortfall_tolerance_s(declared_s: f64) -> f64 {
    0.3 + 0.02 * declared_s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most 3 bytes per call, splitting samples.
    struct Dribble(Vec<u8>, usize);
    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(3).min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn samples_split_across_reads_are_reassembled() {
        let want = [0.5f32, -0.25, 1.0, 3.5];
        let bytes: Vec<u8> = want.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut got = Vec::new();
        read_f32le(&mut Dribble(bytes, 0), &mut got).unwrap();
        assert_eq!(got, want);
    }
}
