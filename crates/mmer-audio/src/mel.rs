//! Triangular mel filterbanks and the log-mel spectrogram.
//!
//! Two mel scales are used, each where its convention comes from:
//!
//! - [`MelScale::Slaney`] (Slaney's Auditory Toolbox, librosa's default:
//!   linear below 1 kHz, logarithmic above) with area-normalised triangles
//!   ([`MelNorm::Slaney`]) for the [`NUM_MEL_BANDS`]-band log-mel spectrogram,
//!   0–8000 Hz — built the way `librosa.filters.mel(sr=16000, n_fft=512,
//!   n_mels=64)` builds its default filterbank (not checked numerically
//!   against librosa, which is not installed here).
//! - [`MelScale::Htk`] (`1127·ln(1 + f/700)`, HTK Book §5.4) with unit-peak
//!   triangles ([`MelNorm::None`]) for MFCCs and loudness: 26 bands,
//!   20–8000 Hz, as HTK and eGeMAPS (`cMelspec nBands = 26, lofreq = 20`).
//!
//! Triangles are built in Hz between mel-equispaced edge frequencies (librosa's
//! construction): band `m` rises from edge `m` to edge `m+1` and falls to edge
//! `m+2`.

use crate::stft::NUM_BINS;
use crate::{FFT_SIZE, NUM_MEL_BANDS, SAMPLE_RATE};

/// Floor added to mel energies before the logarithm (power units); keeps
/// digital silence finite: `ln(1e-10) ≈ −23`.
pub const LOG_FLOOR: f32 = 1e-10;

/// Mel-scale formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MelScale {
    /// HTK: `mel = 1127·ln(1 + f/700)`.
    Htk,
    /// Slaney: `f/(200/3)` below 1 kHz, `15 + 27·ln(f/1000)/ln(6.4)` above.
    Slaney,
}

impl MelScale {
    /// Hz → mel.
    pub fn hz_to_mel(self, hz: f64) -> f64 {
        match self {
            Self::Htk => 1127.0 * (1.0 + hz / 700.0).ln(),
            Self::Slaney => {
                let f_sp = 200.0 / 3.0;
                let (min_log_hz, logstep) = (1000.0, 6.4f64.ln() / 27.0);
                if hz >= min_log_hz {
                    min_log_hz / f_sp + (hz / min_log_hz).ln() / logstep
                } else {
                    hz / f_sp
                }
            }
        }
    }

    /// Mel → Hz.
    pub fn mel_to_hz(self, mel: f64) -> f64 {
        match self {
            Self::Htk => 700.0 * ((mel / 1127.0).exp() - 1.0),
            Self::Slaney => {
                let f_sp = 200.0 / 3.0;
                let (min_log_hz, logstep) = (1000.0, 6.4f64.ln() / 27.0);
                let min_log_mel = min_log_hz / f_sp;
                if mel >= min_log_mel {
                    min_log_hz * (logstep * (mel - min_log_mel)).exp()
                } else {
                    mel * f_sp
                }
            }
        }
    }
}

/// Triangle normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MelNorm {
    /// Unit peak (HTK).
    None,
    /// Unit area in Hz: each triangle scaled by `2/(f_hi − f_lo)` (Slaney, librosa `norm="slaney"`).
    Slaney,
}

/// A sparse triangular filterbank over the [`NUM_BINS`] bins of a
/// [`FFT_SIZE`]-point power spectrum at [`SAMPLE_RATE`].
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilterbank {
    /// Per band: first bin with a non-zero weight, and the weights from there.
    bands: Vec<(usize, Vec<f32>)>,
    /// Centre frequency of each band, Hz.
    centres_hz: Vec<f64>,
}

impl MelFilterbank {
    /// Builds `num_bands` triangles between `fmin_hz` and `fmax_hz`.
    pub fn new(
        num_bands: usize,
        fmin_hz: f64,
        fmax_hz: f64,
        scale: MelScale,
        norm: MelNorm,
    ) -> Self {
        let (lo, hi) = (scale.hz_to_mel(fmin_hz), scale.hz_to_mel(fmax_hz));
        let edges: Vec<f64> = (0..num_bands + 2)
            .map(|i| scale.mel_to_hz(lo + (hi - lo) * i as f64 / (num_bands + 1) as f64))
            .collect();
        let bin_hz = f64::from(SAMPLE_RATE) / FFT_SIZE as f64;
        let mut bands = Vec::with_capacity(num_bands);
        for m in 0..num_bands {
            let (f_lo, f_c, f_hi) = (edges[m], edges[m + 1], edges[m + 2]);
            let gain = match norm {
                MelNorm::None => 1.0,
                MelNorm::Slaney => 2.0 / (f_hi - f_lo),
            };
            let weights: Vec<(usize, f32)> = (0..NUM_BINS)
                .filter_map(|k| {
                    let f = k as f64 * bin_hz;
                    let w = ((f - f_lo) / (f_c - f_lo)).min((f_hi - f) / (f_hi - f_c));
                    (w > 0.0).then_some((k, (w * gain) as f32))
                })
                .collect();
            let first = weights.first().map_or(0, |&(k, _)| k);
            bands.push((first, weights.into_iter().map(|(_, w)| w).collect()));
        }
        Self {
            bands,
            centres_hz: edges[1..=num_bands].to_vec(),
        }
    }

    /// The [`NUM_MEL_BANDS`]-band Slaney filterbank of the log-mel spectrogram.
    pub fn log_mel() -> Self {
        Self::new(
            NUM_MEL_BANDS,
            0.0,
            f64::from(SAMPLE_RATE) / 2.0,
            MelScale::Slaney,
            MelNorm::Slaney,
        )
    }

    /// Number of bands.
    pub fn num_bands(&self) -> usize {
        self.bands.len()
    }

    /// Centre frequency of every band, Hz.
    pub fn centres_hz(&self) -> &[f64] {
        &self.centres_hz
    }

    /// Dense weights of band `m` over all [`NUM_BINS`] bins.
    pub fn dense_band(&self, m: usize) -> Vec<f32> {
        let mut out = vec![0.0; NUM_BINS];
        let (first, w) = &self.bands[m];
        out[*first..first + w.len()].copy_from_slice(w);
        out
    }

    /// Band energies of one power spectrum (`NUM_BINS` values) into `out`
    /// (`num_bands` values).
    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        for ((first, w), dst) in self.bands.iter().zip(out.iter_mut()) {
            *dst = w.iter().zip(&power[*first..]).map(|(a, b)| a * b).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scales_round_trip_and_agree_on_1khz() {
        for scale in [MelScale::Htk, MelScale::Slaney] {
            for hz in [0.0, 20.0, 700.0, 1000.0, 4000.0, 8000.0] {
                let back = scale.mel_to_hz(scale.hz_to_mel(hz));
                assert!((back - hz).abs() < 1e-6, "{scale:?} {hz} → {back}");
            }
        }
        // Both scales put 1 kHz near 1000 mel (HTK) or 15 mel (Slaney).
        assert!((MelScale::Htk.hz_to_mel(1000.0) - 999.99).abs() < 0.1);
        assert!((MelScale::Slaney.hz_to_mel(1000.0) - 15.0).abs() < 1e-9);
    }

    #[test]
    fn htk_bank_tiles_the_band_with_unit_peaks() {
        let bank = MelFilterbank::new(26, 20.0, 8000.0, MelScale::Htk, MelNorm::None);
        assert_eq!(bank.num_bands(), 26);
        // Adjacent unit-peak triangles overlap by half: between the first and
        // last centre the weights sum to 1 at every bin.
        let dense: Vec<Vec<f32>> = (0..26).map(|m| bank.dense_band(m)).collect();
        let bin_hz = 16_000.0 / 512.0;
        let (c0, c25) = (bank.centres_hz()[0], bank.centres_hz()[25]);
        for k in 0..NUM_BINS {
            let f = k as f64 * bin_hz;
            let total: f32 = dense.iter().map(|d| d[k]).sum();
            if f > c0 && f < c25 {
                assert!((total - 1.0).abs() < 1e-4, "bin {k} ({f} Hz): {total}");
            }
            assert!(total <= 1.0 + 1e-4);
        }
        for d in &dense {
            let peak = d.iter().fold(0.0f32, |a, &b| a.max(b));
            assert!(peak > 0.5 && peak <= 1.0, "peak {peak}");
        }
        // Centres increase and are spaced evenly in mel.
        let mels: Vec<f64> = bank
            .centres_hz()
            .iter()
            .map(|&f| MelScale::Htk.hz_to_mel(f))
            .collect();
        let step = mels[1] - mels[0];
        for w in mels.windows(2) {
            assert!((w[1] - w[0] - step).abs() < 1e-6);
        }
    }

    #[test]
    fn slaney_bank_has_unit_area() {
        let bank = MelFilterbank::log_mel();
        assert_eq!(bank.num_bands(), NUM_MEL_BANDS);
        let bin_hz = 16_000.0 / 512.0;
        // Area (Σ w · Δf) ≈ 1; the narrow low bands (≈ 3 bins wide) are
        // sampled coarsely, the wide high bands well.
        for m in 0..NUM_MEL_BANDS {
            let area: f32 = bank.dense_band(m).iter().sum::<f32>() * bin_hz as f32;
            let tol = if m < 30 { 0.35 } else { 0.05 };
            assert!((area - 1.0).abs() < tol, "band {m}: area {area}");
        }
        // Every band sees at least one bin.
        for m in 0..NUM_MEL_BANDS {
            assert!(
                bank.dense_band(m).iter().any(|&w| w > 0.0),
                "band {m} empty"
            );
        }
    }

    #[test]
    fn apply_equals_dense_product() {
        let bank = MelFilterbank::log_mel();
        let power: Vec<f32> = (0..NUM_BINS)
            .map(|k| (k as f32 * 0.37).sin().abs())
            .collect();
        let mut out = vec![0.0; NUM_MEL_BANDS];
        bank.apply(&power, &mut out);
        for (m, &value) in out.iter().enumerate() {
            let dense: f32 = bank
                .dense_band(m)
                .iter()
                .zip(&power)
                .map(|(a, b)| a * b)
                .sum();
            assert!((value - dense).abs() < 1e-5);
        }
    }
}
