//! WAV reading: integer PCM (8–32 bit) or 32-bit float, any channel count,
//! down-mixed to mono `f32` in [-1, 1].
//!
//! Down-mixing averages the channels with equal weights (no surround-specific
//! coefficients: speech corpora are mono or stereo).

use std::path::{Path, PathBuf};

use crate::SAMPLE_RATE;
use crate::error::{Error, Result};
use crate::resample::resample;

/// Mono audio at its native sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Mono samples, nominally in [-1, 1].
    pub samples: Vec<f32>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
}

impl Audio {
    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }
}

/// Reads a WAV file and down-mixes it to mono.
///
/// Integer PCM of `b` bits is scaled by `2^(b-1)` (so 16-bit −32768 → −1.0);
/// float WAVs are taken as they are.
///
/// # Errors
/// [`Error::OpenWav`] (missing file, bad header, unsupported format such as
/// 64-bit float), [`Error::DecodeWav`] (truncated data), [`Error::EmptyWav`],
/// [`Error::NonFiniteWav`] (NaN/Inf in a float WAV); all name the file.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Audio> {
    let path = path.as_ref();
    let reader = hound::WavReader::open(path).map_err(|source| Error::OpenWav {
        path: path.to_path_buf(),
        source,
    })?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let interleaved = match spec.sample_format {
        hound::SampleFormat::Float => collect(path, reader.into_samples::<f32>(), |x| x)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / f64::from(1u32 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            collect(path, reader.into_samples::<i32>(), |x| x as f32 * scale)?
        }
    };
    if interleaved.is_empty() {
        return Err(Error::EmptyWav {
            path: path.to_path_buf(),
        });
    }
    if let Some(index) = interleaved.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFiniteWav {
            path: path.to_path_buf(),
            index,
            frame: index / channels,
        });
    }
    let samples = if channels == 1 {
        interleaved
    } else {
        let inv = 1.0 / channels as f32;
        interleaved
            .chunks(channels)
            .map(|frame| frame.iter().sum::<f32>() * inv)
            .collect()
    };
    Ok(Audio {
        samples,
        sample_rate: spec.sample_rate,
    })
}

/// Reads a WAV file and returns mono samples at [`SAMPLE_RATE`] (16 kHz),
/// resampled with [`crate::Resampler`] when the file has another rate.
///
/// # Errors
/// Those of [`read_wav`]; [`Error::InvalidSampleRate`] for a 0 Hz header.
pub fn load_16k_mono(path: impl AsRef<Path>) -> Result<Vec<f32>> {
    let audio = read_wav(path)?;
    if audio.sample_rate == SAMPLE_RATE {
        return Ok(audio.samples);
    }
    resample(&audio.samples, audio.sample_rate, SAMPLE_RATE)
}

fn collect<S, I, F>(path: &Path, samples: I, convert: F) -> Result<Vec<f32>>
where
    I: Iterator<Item = hound::Result<S>>,
    F: Fn(S) -> f32,
{
    let (lower, _) = samples.size_hint();
    let mut out = Vec::with_capacity(lower);
    for (index, sample) in samples.enumerate() {
        let sample = sample.map_err(|source| Error::DecodeWav {
            path: PathBuf::from(path),
            index,
            source,
        })?;
        out.push(convert(sample));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, spec: hound::WavSpec, frames: &[Vec<f32>]) {
        let mut w = hound::WavWriter::create(path, spec).expect("create wav");
        for frame in frames {
            for &x in frame {
                match spec.sample_format {
                    hound::SampleFormat::Float => w.write_sample(x).expect("write"),
                    hound::SampleFormat::Int => {
                        w.write_sample((x * 32767.0).round() as i16).expect("write")
                    }
                }
            }
        }
        w.finalize().expect("finalize");
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mmer-audio-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        dir.join(name)
    }

    #[test]
    fn stereo_int16_is_averaged_to_mono() {
        let path = tmp("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write(&path, spec, &[vec![0.5, 0.0], vec![-0.5, -0.25]]);
        let audio = read_wav(&path).expect("read");
        assert_eq!(audio.sample_rate, 8000);
        assert_eq!(audio.samples.len(), 2);
        assert!((audio.samples[0] - 0.25).abs() < 1e-4);
        assert!((audio.samples[1] + 0.375).abs() < 1e-4);
    }

    #[test]
    fn float_nan_is_a_typed_error_naming_the_file() {
        let path = tmp("nan.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        write(&path, spec, &[vec![0.1], vec![f32::NAN]]);
        let err = read_wav(&path).expect_err("NaN must fail");
        assert!(matches!(err, Error::NonFiniteWav { index: 1, .. }), "{err}");
        assert!(err.to_string().contains("nan.wav"), "{err}");
    }

    #[test]
    fn empty_and_missing_files_are_typed_errors() {
        let path = tmp("empty.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write(&path, spec, &[]);
        assert!(matches!(read_wav(&path), Err(Error::EmptyWav { .. })));
        let missing = tmp("does-not-exist.wav");
        let err = read_wav(&missing).expect_err("missing file");
        assert!(matches!(err, Error::OpenWav { .. }));
        assert!(err.to_string().contains("does-not-exist.wav"));
    }

    #[test]
    fn garbage_file_is_an_open_error() {
        let path = tmp("garbage.wav");
        std::fs::write(&path, b"not a wav file at all").expect("write");
        assert!(matches!(read_wav(&path), Err(Error::OpenWav { .. })));
    }
}
