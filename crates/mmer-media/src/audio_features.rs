//! The Audio modality of the extraction stage: mmer-audio's frame-level
//! descriptors (LLDs), pooled into short windows, plus its eGeMAPS-style
//! utterance functionals.
//!
//! Why windows: 10 ms LLDs give 100 rows per second — a 10 s turn would be
//! 1,000 steps for the temporal encoder, and 13k MELD turns would need
//! ~2 GB. Averaging non-overlapping windows of [`AudioFeaturesConfig::window_frames`]
//! frames (default 10 = 100 ms, the usual prosodic resolution) keeps the
//! shape of the contours at a tenth of the length; `window_frames = 1`
//! stores the raw frames.
//!
//! Per window: the mean of every LLD, except F0 and HNR, which are averaged
//! over the *voiced* frames only (0 when the window has none — its
//! `voiced_fraction` is then 0 too, which says so). F0 is in semitones
//! above 27.5 Hz, as in eGeMAPS. The mask marks windows that hold signal:
//! at least one frame above [`mmer_audio::activity::ACTIVITY_FLOOR_DB`].

use std::collections::BTreeMap;

use mmer_audio::activity::ACTIVITY_FLOOR_DB;
use mmer_audio::{Analyzer, FrameFeatures, HOP_LENGTH, NUM_MEL_BANDS, NUM_MFCC, WINDOW_LENGTH};
use mmer_core::Modality;
use mmer_core::media_store::{Presence, Stream, StreamInfo, StreamKey};
use sha2::{Digest, Sha256};

use crate::audio::AudioState;
use crate::error::{Error, Result};
use crate::extract::{Extracted, MediaInput, StreamExtractor};

/// Version of this extractor's output; bump when its numbers change.
const VERSION: u32 = 1;

/// Settings of [`AudioFeatures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFeaturesConfig {
    /// 10 ms frames pooled into one row (≥ 1).
    pub window_frames: usize,
    /// Drop leading/trailing silence before analysis ([`mmer_audio::trim_silence`]).
    pub trim_silence: bool,
}

impl Default for AudioFeaturesConfig {
    fn default() -> Self {
        Self {
            window_frames: 10,
            trim_silence: false,
        }
    }
}

/// Column names of the windowed LLD stream, in order.
pub fn lld_names() -> Vec<String> {
    let mut names: Vec<String> = (0..NUM_MEL_BANDS).map(|i| format!("log_mel_{i}")).collect();
    for prefix in ["mfcc", "mfcc_delta", "mfcc_delta2"] {
        names.extend((0..NUM_MFCC).map(|i| format!("{prefix}_{i}")));
    }
    names.extend(
        [
            "loudness",
            "energy_db",
            "zcr",
            "f0_semitone_voiced",
            "voiced_fraction",
            "periodicity",
            "hnr_db_voiced",
            "spectral_flux",
            "alpha_ratio_db",
            "hammarberg_index_db",
            "slope_0_500",
            "slope_500_1500",
        ]
        .map(String::from),
    );
    names
}

/// The audio extractor.
#[derive(Debug)]
pub struct AudioFeatures {
    config: AudioFeaturesConfig,
    analyzer: Analyzer,
    fingerprint: String,
}

impl AudioFeatures {
    /// Builds the analyzer (FFT plans, filterbanks).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when `window_frames` is 0.
    pub fn new(config: AudioFeaturesConfig) -> Result<Self> {
        if config.window_frames == 0 {
            return Err(Error::InvalidOption(
                "audio window must be ≥ 1 frame".into(),
            ));
        }
        let mut h = Sha256::new();
        h.update(format!(
            "mmer-media audio v{VERSION}|sr={}|win={WINDOW_LENGTH}|hop={HOP_LENGTH}|pool={}|trim={}|",
            mmer_audio::SAMPLE_RATE,
            config.window_frames,
            config.trim_silence
        ));
        h.update(lld_names().join(","));
        h.update(mmer_audio::functional_names().join(","));
        let fingerprint = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            config,
            analyzer: Analyzer::new(),
            fingerprint,
        })
    }

    /// Windowed LLDs and functionals of 16 kHz `samples` starting at
    /// `offset_s` in the source.
    fn analyse(&self, samples: &[f32], offset_s: f64) -> mmer_audio::Result<[Stream; 2]> {
        let ff = self.analyzer.frames(samples)?;
        let functionals = mmer_audio::summarise(samples, &ff);
        let duration = samples.len() as f64 / f64::from(mmer_audio::SAMPLE_RATE);
        let frames = pool(&ff, self.config.window_frames, offset_s);
        let utterance = Stream {
            features: mmer_core::Features::vector(functionals.values),
            times: vec![[offset_s as f32, (offset_s + duration) as f32]],
            mask: vec![true],
        };
        Ok([frames, utterance])
    }
}

/// Semitones above 27.5 Hz (eGeMAPS' F0 scale).
fn semitones(f0_hz: f32) -> f32 {
    12.0 * (f0_hz / 27.5).log2()
}

/// Pools 10 ms frames into windows of `w` frames (see the module doc).
fn pool(ff: &FrameFeatures, w: usize, offset_s: f64) -> Stream {
    let n = ff.num_frames;
    let dim = NUM_MEL_BANDS + 3 * NUM_MFCC + 12;
    let rows = n.div_ceil(w);
    let sr = f64::from(mmer_audio::SAMPLE_RATE);
    let mut data = Vec::with_capacity(rows * dim);
    let mut times = Vec::with_capacity(rows);
    let mut mask = Vec::with_capacity(rows);
    let mean = |v: &[f32], r: std::ops::Range<usize>| {
        let len = r.len().max(1) as f32;
        v[r].iter().sum::<f32>() / len
    };
    for start in (0..n).step_by(w) {
        let end = (start + w).min(n);
        let len = (end - start) as f32;
        for (matrix, width) in [
            (&ff.log_mel, NUM_MEL_BANDS),
            (&ff.mfcc, NUM_MFCC),
            (&ff.mfcc_delta, NUM_MFCC),
            (&ff.mfcc_delta2, NUM_MFCC),
        ] {
            for c in 0..width {
                let s: f32 = (start..end).map(|t| matrix[t * width + c]).sum();
                data.push(s / len);
            }
        }
        data.push(mean(&ff.loudness, start..end));
        data.push(mean(&ff.energy_db, start..end));
        data.push(mean(&ff.zcr, start..end));
        let voiced: Vec<usize> = (start..end).filter(|&t| ff.voiced[t]).collect();
        let voiced_mean = |v: &[f32], f: fn(f32) -> f32| {
            if voiced.is_empty() {
                0.0
            } else {
                voiced.iter().map(|&t| f(v[t])).sum::<f32>() / voiced.len() as f32
            }
        };
        data.push(voiced_mean(&ff.f0_hz, semitones));
        data.push(voiced.len() as f32 / len);
        data.push(mean(&ff.periodicity, start..end));
        data.push(voiced_mean(&ff.hnr_db, |x| x));
        data.push(mean(&ff.spectral_flux, start..end));
        data.push(mean(&ff.alpha_ratio_db, start..end));
        data.push(mean(&ff.hammarberg_index_db, start..end));
        data.push(mean(&ff.slope_0_500, start..end));
        data.push(mean(&ff.slope_500_1500, start..end));
        let t0 = offset_s + (start * HOP_LENGTH) as f64 / sr;
        let t1 = offset_s + ((end - 1) * HOP_LENGTH + WINDOW_LENGTH) as f64 / sr;
        times.push([t0 as f32, t1 as f32]);
        mask.push(
            ff.energy_db[start..end]
                .iter()
                .any(|&e| e >= ACTIVITY_FLOOR_DB),
        );
    }
    // Non-finite values would poison training; mmer-audio promises finite
    // output, so this only guards against a future regression.
    data.iter_mut()
        .filter(|v| !v.is_finite())
        .for_each(|v| *v = 0.0);
    Stream {
        features: mmer_core::Features {
            frames: rows,
            dim,
            data,
        },
        times,
        mask,
    }
}

impl StreamExtractor for AudioFeatures {
    fn name(&self) -> &'static str {
        "audio"
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn streams(&self) -> Vec<(StreamKey, StreamInfo)> {
        vec![
            (
                StreamKey::frames(Modality::Audio),
                StreamInfo {
                    dim: lld_names().len(),
                    names: lld_names(),
                    description: format!(
                        "mmer-audio LLDs (25 ms Hamming, 10 ms hop, 16 kHz) pooled over {} ms windows; \
                         F0/HNR averaged over voiced frames; mask = window above {ACTIVITY_FLOOR_DB} dBFS",
                        self.config.window_frames * 10
                    ),
                },
            ),
            (
                StreamKey::utterance(Modality::Audio),
                StreamInfo {
                    dim: mmer_audio::functional_names().len(),
                    names: mmer_audio::functional_names()
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    description: "mmer-audio eGeMAPS-style utterance functionals".into(),
                },
            ),
        ]
    }

    fn needs_audio(&self) -> bool {
        true
    }

    fn extract(&self, input: &MediaInput<'_>) -> Result<Extracted> {
        let Some(audio) = input.audio else {
            return Ok(Extracted::missing(Modality::Audio, Presence::Absent));
        };
        let presence = match audio.state {
            AudioState::Absent => Presence::Absent,
            AudioState::Empty | AudioState::Silent => Presence::Silent,
            AudioState::Present => Presence::Present,
        };
        if presence != Presence::Present {
            return Ok(Extracted::missing(Modality::Audio, presence));
        }
        let sr = f64::from(mmer_audio::SAMPLE_RATE);
        let (samples, offset_s) = if self.config.trim_silence {
            match mmer_audio::speech_bounds(&audio.samples) {
                Some(r) => (&audio.samples[r.clone()], r.start as f64 / sr),
                None => (&audio.samples[..], 0.0),
            }
        } else {
            (&audio.samples[..], 0.0)
        };
        let [frames, utterance] =
            self.analyse(samples, offset_s)
                .map_err(|source| Error::Audio {
                    path: input.info.path.clone(),
                    source,
                })?;
        Ok(Extracted {
            presence: BTreeMap::from([(Modality::Audio, Presence::Present)]),
            streams: BTreeMap::from([
                (StreamKey::frames(Modality::Audio), frames),
                (StreamKey::utterance(Modality::Audio), utterance),
            ]),
            parts_ms: BTreeMap::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f32) -> Vec<f32> {
        let n = (seconds * 16_000.0) as usize;
        (0..n)
            .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 200.0 * i as f32 / 16_000.0).sin())
            .collect()
    }

    #[test]
    fn windows_pool_ten_frames_with_times_and_voicing() {
        let x = AudioFeatures::new(AudioFeaturesConfig::default()).unwrap();
        let [frames, utt] = x.analyse(&tone(1.0), 0.0).unwrap();
        let names = lld_names();
        assert_eq!(frames.features.dim, names.len());
        assert_eq!(utt.features.dim, mmer_audio::functional_names().len());
        let n = mmer_audio::stft::frame_count(16_000);
        assert_eq!(frames.features.frames, n.div_ceil(10));
        assert_eq!(frames.times[0], [0.0, 0.115]);
        assert!(frames.mask.iter().all(|m| *m));
        let f0 = names
            .iter()
            .position(|n| n == "f0_semitone_voiced")
            .unwrap();
        let row = &frames.features.data[3 * names.len()..4 * names.len()];
        // 200 Hz = 12·log2(200/27.5) ≈ 34.35 semitones.
        assert!((row[f0] - 34.35).abs() < 0.5, "{}", row[f0]);
        assert!(row[f0 + 1] > 0.9, "voiced fraction {}", row[f0 + 1]);
    }

    #[test]
    fn raw_frames_and_fingerprint_depend_on_the_window() {
        let a = AudioFeatures::new(AudioFeaturesConfig::default()).unwrap();
        let b = AudioFeatures::new(AudioFeaturesConfig {
            window_frames: 1,
            ..Default::default()
        })
        .unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        let [frames, _] = b.analyse(&tone(0.5), 1.0).unwrap();
        assert_eq!(frames.features.frames, mmer_audio::stft::frame_count(8000));
        assert!((frames.times[1][0] - 1.01).abs() < 1e-6);
        assert!(
            AudioFeatures::new(AudioFeaturesConfig {
                window_frames: 0,
                ..Default::default()
            })
            .is_err()
        );
    }
}
