//! Loudness: a psychoacoustic intensity estimate in the PLP tradition.
//!
//! `loudness = Σ_j (E(ω_j) · e_j)^0.33` over the 26 HTK-mel band powers `e_j`
//! (the MFCC filterbank, 20–8000 Hz), with Hermansky's equal-loudness curve at
//! the band centre `ω_j = 2π·f_j`
//!
//! ```text
//! E(ω) = (ω² + 56.8e6)·ω⁴ / ((ω² + 6.3e6)² · (ω² + 0.38e9))
//! ```
//!
//! and Stevens' intensity–loudness power law (exponent 0.33) — Hermansky,
//! "Perceptual linear predictive (PLP) analysis of speech", JASA 87(4), 1990,
//! §II.B–C. This is how eGeMAPS computes `Loudness` (`cPlp doAud = 1,
//! compression = 0.33`, summed over bands); the unit is arbitrary (it scales
//! with the input level to the power 0.33).

use crate::mfcc::MFCC_BANDS;

/// Stevens' power-law exponent.
pub const LOUDNESS_EXPONENT: f32 = 0.33;

/// Hermansky's equal-loudness weight at `freq_hz`.
pub fn equal_loudness(freq_hz: f64) -> f64 {
    let w2 = (2.0 * std::f64::consts::PI * freq_hz).powi(2);
    (w2 + 56.8e6) * w2 * w2 / ((w2 + 6.3e6).powi(2) * (w2 + 0.38e9))
}

/// Loudness of one frame from its [`MFCC_BANDS`] band powers, with the
/// equal-loudness `weights` of the band centres.
pub fn loudness(band_powers: &[f32], weights: &[f32; MFCC_BANDS]) -> f32 {
    band_powers
        .iter()
        .zip(weights)
        .map(|(&e, &w)| (e * w).max(0.0).powf(LOUDNESS_EXPONENT))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_loudness_peaks_in_the_speech_band() {
        let w = |f| equal_loudness(f);
        assert!(w(100.0) < w(1000.0));
        assert!(w(1000.0) < w(3000.0));
        assert!(w(3000.0) > w(8000.0) * 0.5);
        assert!(w(50.0) < 0.01 * w(1000.0));
    }

    #[test]
    fn loudness_follows_the_power_law() {
        let weights = [1.0f32; MFCC_BANDS];
        let a = loudness(&[1.0; MFCC_BANDS], &weights);
        let b = loudness(&[1000.0; MFCC_BANDS], &weights);
        assert!((b / a - 1000f32.powf(LOUDNESS_EXPONENT)).abs() < 1e-3);
    }
}
