//! Spectral-shape descriptors of one power spectrum (eGeMAPS' spectral
//! parameters, Eyben et al., "The Geneva Minimalistic Acoustic Parameter Set",
//! IEEE Trans. Affective Computing 7(2), 2016, §3.1).
//!
//! - **Alpha ratio**: `10·log10(E[1–5 kHz] / E[50 Hz–1 kHz])`, band energies
//!   summed over power-spectrum bins. (The paper words it as low over high; the
//!   openSMILE implementation — and so published eGeMAPS numbers, typically
//!   −10 dB — is high over low, which is what we follow.)
//! - **Hammarberg index**: `10·log10(max P[0–2 kHz] / max P[2–5 kHz])`.
//! - **Spectral slope** in a band: least-squares slope of `10·log10 P(k)` over
//!   the bins' frequencies, dB/Hz (eGeMAPS uses 0–500 Hz and 500–1500 Hz).
//! - **Spectral flux**: `‖m_t − m_{t−1}‖₂ = sqrt(Σ_k (m_t(k) − m_{t−1}(k))²)`
//!   over the bins of 0–5 kHz, with `m_t(k) = |X_t(k)| / FFT_SIZE` the scaled
//!   magnitude spectrum (0 for the first frame). Like eGeMAPS' `spectralFlux`
//!   it is level-dependent (proportional to the input level), so onsets and
//!   loudness changes dominate it.

use crate::stft::NUM_BINS;
use crate::{FFT_SIZE, SAMPLE_RATE};

/// Upper frequency of the flux, alpha-ratio and Hammarberg ranges, Hz (eGeMAPS `freqRange = 0-5000`).
pub const SPECTRAL_FMAX_HZ: f64 = 5000.0;
/// Floor on power before the dB conversion in slopes and ratios.
pub const POWER_FLOOR: f32 = 1e-12;

fn bin_of(hz: f64) -> usize {
    ((hz * FFT_SIZE as f64 / f64::from(SAMPLE_RATE)).round() as usize).min(NUM_BINS - 1)
}

fn hz_of(bin: usize) -> f64 {
    bin as f64 * f64::from(SAMPLE_RATE) / FFT_SIZE as f64
}

/// Alpha ratio in dB (see the module doc).
pub fn alpha_ratio_db(power: &[f32]) -> f32 {
    let low: f32 = power[bin_of(50.0)..bin_of(1000.0)].iter().sum();
    let high: f32 = power[bin_of(1000.0)..=bin_of(SPECTRAL_FMAX_HZ)]
        .iter()
        .sum();
    10.0 * (high.max(POWER_FLOOR) / low.max(POWER_FLOOR)).log10()
}

/// Hammarberg index in dB (see the module doc).
pub fn hammarberg_index_db(power: &[f32]) -> f32 {
    let max = |s: &[f32]| s.iter().fold(0.0f32, |m, &v| m.max(v));
    let low = max(&power[..bin_of(2000.0)]);
    let high = max(&power[bin_of(2000.0)..=bin_of(SPECTRAL_FMAX_HZ)]);
    10.0 * (low.max(POWER_FLOOR) / high.max(POWER_FLOOR)).log10()
}

/// Least-squares slope of the dB spectrum between `lo_hz` and `hi_hz`, dB/Hz.
pub fn spectral_slope(power: &[f32], lo_hz: f64, hi_hz: f64) -> f32 {
    let (lo, hi) = (bin_of(lo_hz), bin_of(hi_hz));
    let n = (hi + 1 - lo) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0);
    for (k, &p) in power.iter().enumerate().take(hi + 1).skip(lo) {
        let (x, y) = (hz_of(k), 10.0 * f64::from(p.max(POWER_FLOOR)).log10());
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    let den = n * sxx - sx * sx;
    if den.abs() < 1e-12 {
        0.0
    } else {
        ((n * sxy - sx * sy) / den) as f32
    }
}

/// Scaled magnitude spectrum over 0–5 kHz, the input of [`spectral_flux`].
pub fn flux_magnitudes(power: &[f32]) -> Vec<f32> {
    let scale = 1.0 / FFT_SIZE as f32;
    power[..=bin_of(SPECTRAL_FMAX_HZ)]
        .iter()
        .map(|p| p.sqrt() * scale)
        .collect()
}

/// Spectral flux between two [`flux_magnitudes`] vectors.
pub fn spectral_flux(prev: &[f32], cur: &[f32]) -> f32 {
    prev.iter()
        .zip(cur)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f32>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_spectrum_descriptors() {
        let flat = vec![1.0f32; NUM_BINS];
        // 1–5 kHz has ~4.2× the bins of 50 Hz–1 kHz.
        let alpha = alpha_ratio_db(&flat);
        assert!(alpha > 5.0 && alpha < 7.5, "{alpha}");
        assert!(hammarberg_index_db(&flat).abs() < 1e-6);
        assert!(spectral_slope(&flat, 0.0, 500.0).abs() < 1e-9);
        let m = flux_magnitudes(&flat);
        assert!(spectral_flux(&m, &m).abs() < 1e-9);
    }

    #[test]
    fn slope_of_a_db_ramp() {
        // 10·log10 P = 0.02·f → slope 0.02 dB/Hz.
        let p: Vec<f32> = (0..NUM_BINS)
            .map(|k| 10f32.powf(0.002 * hz_of(k) as f32))
            .collect();
        assert!((spectral_slope(&p, 500.0, 1500.0) - 0.02).abs() < 1e-4);
    }

    #[test]
    fn flux_is_the_norm_of_the_magnitude_change() {
        let mut a = vec![0.0f32; NUM_BINS];
        let mut b = vec![0.0f32; NUM_BINS];
        a[10] = (3.0 * FFT_SIZE as f32).powi(2);
        b[10] = (1.0 * FFT_SIZE as f32).powi(2);
        b[20] = (2.0 * FFT_SIZE as f32).powi(2);
        // sqrt((3 − 1)² + (0 − 2)²) = sqrt(8); bins above 5 kHz are ignored.
        b[NUM_BINS - 1] = 1e6;
        let flux = spectral_flux(&flux_magnitudes(&a), &flux_magnitudes(&b));
        assert!((flux - 8f32.sqrt()).abs() < 1e-4, "{flux}");
    }
}
