//! Time-domain frame descriptors: energy and zero-crossing rate.
//!
//! Computed on the raw (unwindowed) 25 ms frame:
//! - `energy_db = 10·log10(mean(x²) + ENERGY_FLOOR)`, dB re full scale (a
//!   full-scale sine is −3 dB; digital silence −100 dB);
//! - `zcr` = fraction of adjacent sample pairs whose signs differ, in [0, 1]
//!   (a sine of frequency `f` at 16 kHz gives `zcr ≈ 2f/16000`).

/// Floor on mean power before the dB conversion (−100 dB).
pub const ENERGY_FLOOR: f64 = 1e-10;

/// Mean power `mean(x²)` of a frame.
pub fn mean_power(frame: &[f32]) -> f64 {
    if frame.is_empty() {
        return 0.0;
    }
    frame
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        / frame.len() as f64
}

/// Frame energy in dB (see the module doc).
pub fn energy_db(frame: &[f32]) -> f32 {
    (10.0 * (mean_power(frame) + ENERGY_FLOOR).log10()) as f32
}

/// Zero-crossing rate: sign changes per adjacent pair (zero counts as positive).
pub fn zero_crossing_rate(frame: &[f32]) -> f32 {
    if frame.len() < 2 {
        return 0.0;
    }
    let changes = frame
        .windows(2)
        .filter(|w| (w[0] >= 0.0) != (w[1] >= 0.0))
        .count();
    changes as f32 / (frame.len() - 1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_energy_and_zcr() {
        let x: Vec<f32> = (0..400)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * (i as f32 + 0.3) / 16_000.0).sin())
            .collect();
        assert!((energy_db(&x) + 3.01).abs() < 0.05, "{}", energy_db(&x));
        // 1 kHz: 2 crossings per 16 samples.
        assert!((zero_crossing_rate(&x) - 0.125).abs() < 0.01);
        assert!((energy_db(&[0.0; 400]) + 100.0).abs() < 1e-3);
        assert_eq!(zero_crossing_rate(&[0.0; 400]), 0.0);
    }
}
