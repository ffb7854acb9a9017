//! MFCCs (HTK conventions) and their regression deltas.
//!
//! `c_i = L_i · sqrt(2/N) · Σ_{j=1..N} ln(max(e_j, LOG_FLOOR)) · cos(π·i·(j − ½)/N)`
//! for `i = 0..NUM_MFCC`, with `e_j` the energies of the `N = 26` HTK-mel bands
//! (20–8000 Hz, power spectrum, no pre-emphasis) and the sinusoidal lifter
//! `L_i = 1 + (22/2)·sin(π·i/22)` — HTK Book §5.6 (`NUMCHANS = 26`,
//! `CEPLIFTER = 22`), and what eGeMAPS computes (`cMfcc htkcompatible = 1,
//! cepLifter = 22`) except that eGeMAPS keeps only `c1..c4`. Like eGeMAPS and
//! unlike HTK's default, there is no pre-emphasis. `c0` is kept (it is the
//! log-energy-like coefficient); its offset depends on the input scale
//! (samples in [-1, 1]), the others do not.
//!
//! Deltas use the HTK regression formula with window `Θ = 2` (HTK Book §5.9):
//! `d_t = Σ_{θ=1..Θ} θ·(c_{t+θ} − c_{t−θ}) / (2·Σ θ²)`, edges replicated;
//! delta-deltas apply the same formula to the deltas. Units: per frame (10 ms).

use crate::mel::{LOG_FLOOR, MelFilterbank, MelNorm, MelScale};
use crate::{NUM_MFCC, SAMPLE_RATE};

/// Number of HTK-mel bands under the cepstrum (HTK `NUMCHANS`, eGeMAPS `nBands`).
pub const MFCC_BANDS: usize = 26;
/// Lowest filterbank frequency, Hz (eGeMAPS `lofreq`).
pub const MFCC_FMIN_HZ: f64 = 20.0;
/// Highest filterbank frequency, Hz (eGeMAPS `hifreq`; the 16 kHz Nyquist).
pub const MFCC_FMAX_HZ: f64 = 8000.0;
/// Cepstral lifter (HTK `CEPLIFTER`).
pub const CEP_LIFTER: f64 = 22.0;
/// Half width of the delta regression window (HTK `DELTAWINDOW`).
pub const DELTA_WINDOW: usize = 2;

/// The HTK-mel filterbank shared by MFCCs and loudness.
pub fn htk_filterbank() -> MelFilterbank {
    MelFilterbank::new(
        MFCC_BANDS,
        MFCC_FMIN_HZ,
        MFCC_FMAX_HZ.min(f64::from(SAMPLE_RATE) / 2.0),
        MelScale::Htk,
        MelNorm::None,
    )
}

/// Liftered DCT-II from [`MFCC_BANDS`] log energies to [`NUM_MFCC`] cepstra.
#[derive(Debug, Clone, PartialEq)]
pub struct Cepstrum {
    /// `[NUM_MFCC, MFCC_BANDS]`, lifter folded in.
    matrix: Vec<f32>,
}

impl Default for Cepstrum {
    fn default() -> Self {
        Self::new()
    }
}

impl Cepstrum {
    /// Builds the DCT matrix.
    pub fn new() -> Self {
        let n = MFCC_BANDS as f64;
        let mut matrix = Vec::with_capacity(NUM_MFCC * MFCC_BANDS);
        for i in 0..NUM_MFCC {
            let lifter =
                1.0 + CEP_LIFTER / 2.0 * (std::f64::consts::PI * i as f64 / CEP_LIFTER).sin();
            for j in 0..MFCC_BANDS {
                let c = (std::f64::consts::PI * i as f64 * (j as f64 + 0.5) / n).cos();
                matrix.push(((2.0 / n).sqrt() * c * lifter) as f32);
            }
        }
        Self { matrix }
    }

    /// Cepstra of one frame's band energies (`MFCC_BANDS` values, power) into
    /// `out` (`NUM_MFCC` values).
    pub fn apply(&self, band_energies: &[f32], out: &mut [f32]) {
        let mut logs = [0.0f32; MFCC_BANDS];
        for (l, &e) in logs.iter_mut().zip(band_energies) {
            *l = e.max(LOG_FLOOR).ln();
        }
        for (i, dst) in out.iter_mut().enumerate().take(NUM_MFCC) {
            let row = &self.matrix[i * MFCC_BANDS..(i + 1) * MFCC_BANDS];
            *dst = row.iter().zip(&logs).map(|(a, b)| a * b).sum();
        }
    }
}

/// HTK regression deltas of a `[num_frames, width]` row-major matrix.
///
/// # Shapes
/// `features`: `[num_frames, width]` → `[num_frames, width]`.
pub fn deltas(features: &[f32], width: usize) -> Vec<f32> {
    if width == 0 {
        return Vec::new();
    }
    let num_frames = features.len() / width;
    let norm = 2.0 * (1..=DELTA_WINDOW).map(|t| (t * t) as f32).sum::<f32>();
    let mut out = vec![0.0; num_frames * width];
    for t in 0..num_frames {
        for theta in 1..=DELTA_WINDOW {
            let next = (t + theta).min(num_frames - 1);
            let prev = t.saturating_sub(theta);
            for d in 0..width {
                out[t * width + d] +=
                    theta as f32 * (features[next * width + d] - features[prev * width + d]) / norm;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_log_spectrum_has_only_c0() {
        let cep = Cepstrum::new();
        let mut out = [0.0; NUM_MFCC];
        cep.apply(&[std::f32::consts::E; MFCC_BANDS], &mut out);
        // ln e = 1 in every band: c0 = sqrt(2/26)·26, all others 0.
        assert!((out[0] - (2.0f32 / 26.0).sqrt() * 26.0).abs() < 1e-4);
        for &c in &out[1..] {
            assert!(c.abs() < 1e-4, "{out:?}");
        }
    }

    #[test]
    fn scale_changes_only_c0() {
        let cep = Cepstrum::new();
        let e: Vec<f32> = (0..MFCC_BANDS).map(|j| 1.0 + j as f32).collect();
        let e2: Vec<f32> = e.iter().map(|x| x * 1000.0).collect();
        let (mut a, mut b) = ([0.0; NUM_MFCC], [0.0; NUM_MFCC]);
        cep.apply(&e, &mut a);
        cep.apply(&e2, &mut b);
        assert!((b[0] - a[0]).abs() > 1.0);
        for i in 1..NUM_MFCC {
            assert!((a[i] - b[i]).abs() < 1e-3, "c{i}: {} vs {}", a[i], b[i]);
        }
    }

    #[test]
    fn deltas_of_a_ramp_are_its_slope() {
        // Two columns: ramp with slope 2 per frame, constant.
        let x: Vec<f32> = (0..10).flat_map(|t| [2.0 * t as f32, 5.0]).collect();
        let d = deltas(&x, 2);
        for t in DELTA_WINDOW..10 - DELTA_WINDOW {
            assert!((d[t * 2] - 2.0).abs() < 1e-5);
            assert!(d[t * 2 + 1].abs() < 1e-6);
        }
        let dd = deltas(&d, 2);
        for t in 2 * DELTA_WINDOW..10 - 2 * DELTA_WINDOW {
            assert!(dd[t * 2].abs() < 1e-5);
        }
    }
}
