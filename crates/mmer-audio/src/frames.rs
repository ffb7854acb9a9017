//! Frame-level low-level descriptors (LLDs) at 16 kHz, 25 ms / 10 ms.
//!
//! [`Analyzer`] owns the FFT plans and filterbanks, so reuse one across clips.

use crate::error::{Error, Result};
use crate::loudness::{equal_loudness, loudness};
use crate::mel::{LOG_FLOOR, MelFilterbank};
use crate::mfcc::{Cepstrum, MFCC_BANDS, deltas, htk_filterbank};
use crate::pitch::PitchTracker;
use crate::spectral::{
    alpha_ratio_db, flux_magnitudes, hammarberg_index_db, spectral_flux, spectral_slope,
};
use crate::stft::{Stft, frame};
use crate::waveform::{energy_db, zero_crossing_rate};
use crate::{NUM_MEL_BANDS, NUM_MFCC};

/// All frame-level descriptors of one utterance.
///
/// # Shapes
/// `T = num_frames` ([`crate::stft::frame_count`] of the input). Matrices are
/// row-major: `log_mel` `[T, NUM_MEL_BANDS]`; `mfcc`, `mfcc_delta`,
/// `mfcc_delta2` `[T, NUM_MFCC]`; every other field `[T]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameFeatures {
    /// Number of 10 ms frames `T`.
    pub num_frames: usize,
    /// Natural-log mel power, 64 Slaney bands 0–8 kHz: `ln(max(mel, 1e-10))`.
    pub log_mel: Vec<f32>,
    /// MFCC `c0..c12` (HTK conventions, see [`crate::mfcc`]).
    pub mfcc: Vec<f32>,
    /// First-order regression deltas of `mfcc`, per frame.
    pub mfcc_delta: Vec<f32>,
    /// Second-order deltas (deltas of `mfcc_delta`), per frame.
    pub mfcc_delta2: Vec<f32>,
    /// Loudness (arbitrary units, see [`crate::loudness`]).
    pub loudness: Vec<f32>,
    /// Frame energy, dBFS.
    pub energy_db: Vec<f32>,
    /// Zero-crossing rate in [0, 1].
    pub zcr: Vec<f32>,
    /// F0 in Hz, 0 where unvoiced.
    pub f0_hz: Vec<f32>,
    /// Voicing decision.
    pub voiced: Vec<bool>,
    /// YIN periodicity `1 − d'(τ*)` in [0, 1].
    pub periodicity: Vec<f32>,
    /// Harmonics-to-noise ratio, dB (meaningful where voiced).
    pub hnr_db: Vec<f32>,
    /// Spectral flux (level-dependent, see [`crate::spectral`]).
    pub spectral_flux: Vec<f32>,
    /// Alpha ratio, dB.
    pub alpha_ratio_db: Vec<f32>,
    /// Hammarberg index, dB.
    pub hammarberg_index_db: Vec<f32>,
    /// Spectral slope 0–500 Hz, dB/Hz.
    pub slope_0_500: Vec<f32>,
    /// Spectral slope 500–1500 Hz, dB/Hz.
    pub slope_500_1500: Vec<f32>,
}

impl FrameFeatures {
    /// Log-mel row of frame `t` ([`NUM_MEL_BANDS`] values).
    pub fn log_mel_frame(&self, t: usize) -> &[f32] {
        &self.log_mel[t * NUM_MEL_BANDS..(t + 1) * NUM_MEL_BANDS]
    }

    /// MFCC row of frame `t` ([`NUM_MFCC`] values).
    pub fn mfcc_frame(&self, t: usize) -> &[f32] {
        &self.mfcc[t * NUM_MFCC..(t + 1) * NUM_MFCC]
    }
}

/// Checks that audio is non-empty and finite.
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`] (index of the first bad sample).
pub fn validate(samples: &[f32]) -> Result<()> {
    if samples.is_empty() {
        return Err(Error::Empty);
    }
    match samples.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(Error::NonFinite { index }),
        None => Ok(()),
    }
}

/// Reusable feature extractor (FFT plans, filterbanks, DCT).
#[derive(Debug)]
pub struct Analyzer {
    stft: Stft,
    log_mel_bank: MelFilterbank,
    htk_bank: MelFilterbank,
    cepstrum: Cepstrum,
    loudness_weights: [f32; MFCC_BANDS],
    pitch: PitchTracker,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    /// Builds the plans and tables.
    pub fn new() -> Self {
        let htk_bank = htk_filterbank();
        let mut loudness_weights = [0.0; MFCC_BANDS];
        for (w, &f) in loudness_weights.iter_mut().zip(htk_bank.centres_hz()) {
            *w = equal_loudness(f) as f32;
        }
        Self {
            stft: Stft::new(),
            log_mel_bank: MelFilterbank::log_mel(),
            htk_bank,
            cepstrum: Cepstrum::new(),
            loudness_weights,
            pitch: PitchTracker::new(),
        }
    }

    /// Frame-level descriptors of 16 kHz mono `samples`.
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::NonFinite`].
    pub fn frames(&self, samples: &[f32]) -> Result<FrameFeatures> {
        validate(samples)?;
        let spec = self.stft.power(samples);
        let n = spec.num_frames;
        let mut ff = FrameFeatures {
            num_frames: n,
            log_mel: vec![0.0; n * NUM_MEL_BANDS],
            mfcc: vec![0.0; n * NUM_MFCC],
            mfcc_delta: Vec::new(),
            mfcc_delta2: Vec::new(),
            loudness: Vec::with_capacity(n),
            energy_db: Vec::with_capacity(n),
            zcr: Vec::with_capacity(n),
            f0_hz: Vec::new(),
            voiced: Vec::new(),
            periodicity: Vec::new(),
            hnr_db: Vec::new(),
            spectral_flux: Vec::with_capacity(n),
            alpha_ratio_db: Vec::with_capacity(n),
            hammarberg_index_db: Vec::with_capacity(n),
            slope_0_500: Vec::with_capacity(n),
            slope_500_1500: Vec::with_capacity(n),
        };
        let mut bands = [0.0f32; MFCC_BANDS];
        let mut prev_magnitudes: Option<Vec<f32>> = None;
        for t in 0..n {
            let power = spec.frame(t);
            let mel = &mut ff.log_mel[t * NUM_MEL_BANDS..(t + 1) * NUM_MEL_BANDS];
            self.log_mel_bank.apply(power, mel);
            mel.iter_mut().for_each(|m| *m = m.max(LOG_FLOOR).ln());
            self.htk_bank.apply(power, &mut bands);
            self.cepstrum
                .apply(&bands, &mut ff.mfcc[t * NUM_MFCC..(t + 1) * NUM_MFCC]);
            ff.loudness.push(loudness(&bands, &self.loudness_weights));
            let raw = frame(samples, t);
            ff.energy_db.push(energy_db(&raw));
            ff.zcr.push(zero_crossing_rate(&raw));
            let magnitudes = flux_magnitudes(power);
            ff.spectral_flux.push(
                prev_magnitudes
                    .as_ref()
                    .map_or(0.0, |p| spectral_flux(p, &magnitudes)),
            );
            prev_magnitudes = Some(magnitudes);
            ff.alpha_ratio_db.push(alpha_ratio_db(power));
            ff.hammarberg_index_db.push(hammarberg_index_db(power));
            ff.slope_0_500.push(spectral_slope(power, 0.0, 500.0));
            ff.slope_500_1500.push(spectral_slope(power, 500.0, 1500.0));
        }
        ff.mfcc_delta = deltas(&ff.mfcc, NUM_MFCC);
        ff.mfcc_delta2 = deltas(&ff.mfcc_delta, NUM_MFCC);
        let pitch = self.pitch.track(samples);
        ff.f0_hz = pitch.f0_hz;
        ff.voiced = pitch.voiced;
        ff.periodicity = pitch.periodicity;
        ff.hnr_db = pitch.hnr_db;
        Ok(ff)
    }
}

/// [`Analyzer::frames`] with a fresh analyzer (build one [`Analyzer`] to
/// process many clips).
///
/// # Errors
/// [`Error::Empty`], [`Error::NonFinite`].
pub fn frame_features(samples_16k: &[f32]) -> Result<FrameFeatures> {
    Analyzer::new().frames(samples_16k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, amp: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / 16_000.0).sin())
            .collect()
    }

    #[test]
    fn shapes_are_consistent() {
        let ff = frame_features(&sine(200.0, 0.3, 16_000)).expect("features");
        let t = ff.num_frames;
        assert_eq!(t, crate::stft::frame_count(16_000));
        assert_eq!(ff.log_mel.len(), t * NUM_MEL_BANDS);
        for m in [&ff.mfcc, &ff.mfcc_delta, &ff.mfcc_delta2] {
            assert_eq!(m.len(), t * NUM_MFCC);
        }
        for v in [
            &ff.loudness,
            &ff.energy_db,
            &ff.zcr,
            &ff.f0_hz,
            &ff.periodicity,
            &ff.hnr_db,
            &ff.spectral_flux,
            &ff.alpha_ratio_db,
            &ff.hammarberg_index_db,
            &ff.slope_0_500,
            &ff.slope_500_1500,
        ] {
            assert_eq!(v.len(), t);
            assert!(v.iter().all(|x| x.is_finite()));
        }
        assert_eq!(ff.voiced.len(), t);
        assert!(ff.log_mel.iter().chain(&ff.mfcc).all(|x| x.is_finite()));
    }

    #[test]
    fn sine_200hz_frames() {
        let ff = frame_features(&sine(200.0, 0.3, 16_000)).expect("features");
        let mid = ff.num_frames / 2;
        assert!(ff.voiced[mid]);
        assert!((ff.f0_hz[mid] - 200.0).abs() < 1.0, "{}", ff.f0_hz[mid]);
        // 0.3 amplitude sine: mean power 0.045 → −13.5 dBFS.
        assert!(
            (ff.energy_db[mid] + 13.47).abs() < 0.2,
            "{}",
            ff.energy_db[mid]
        );
        // The log-mel peak sits in the band that contains 200 Hz.
        let row = ff.log_mel_frame(mid);
        let argmax = (0..NUM_MEL_BANDS)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .expect("bands");
        let centre = MelFilterbank::log_mel().centres_hz()[argmax];
        assert!((centre - 200.0).abs() < 50.0, "peak band centre {centre}");
    }

    #[test]
    fn silence_is_unvoiced_and_quiet() {
        let ff = frame_features(&vec![0.0; 16_000]).expect("features");
        assert!(ff.voiced.iter().all(|&v| !v));
        assert!(ff.f0_hz.iter().all(|&f| f == 0.0));
        assert!(ff.energy_db.iter().all(|&e| e <= -99.0));
        assert!(ff.loudness.iter().all(|&l| l < 1e-2));
        assert!(
            ff.log_mel
                .iter()
                .all(|&m| (m - LOG_FLOOR.ln()).abs() < 1e-3)
        );
    }

    #[test]
    fn empty_and_nan_inputs_are_typed_errors() {
        assert!(matches!(frame_features(&[]), Err(Error::Empty)));
        let mut x = vec![0.1; 1000];
        x[17] = f32::NAN;
        assert!(matches!(
            frame_features(&x),
            Err(Error::NonFinite { index: 17 })
        ));
        x[17] = f32::INFINITY;
        assert!(matches!(
            frame_features(&x),
            Err(Error::NonFinite { index: 17 })
        ));
    }

    #[test]
    fn short_input_gives_one_frame() {
        let ff = frame_features(&[0.1, -0.1, 0.2]).expect("features");
        assert_eq!(ff.num_frames, 1);
    }
}
