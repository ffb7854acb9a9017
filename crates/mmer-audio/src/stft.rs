//! Framing and the short-time power spectrum.
//!
//! Frame `t` covers samples `[t·HOP_LENGTH, t·HOP_LENGTH + WINDOW_LENGTH)` (no
//! centring pad, like HTK and openSMILE's `frameCenterSpecial = left`); a
//! partial last frame is dropped, except that input shorter than one window
//! gives one zero-padded frame. Each frame is multiplied by a symmetric
//! Hamming window (HTK, eGeMAPS) and transformed with a [`FFT_SIZE`]-point
//! real FFT; the power spectrum is `|X(k)|²`, unnormalised, for
//! `k = 0..=FFT_SIZE/2`.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

use crate::{FFT_SIZE, HOP_LENGTH, WINDOW_LENGTH};

/// Number of FFT bins in a power spectrum: `FFT_SIZE / 2 + 1` = 257.
pub const NUM_BINS: usize = FFT_SIZE / 2 + 1;

/// Number of analysis frames for `num_samples` samples (at least 1).
pub fn frame_count(num_samples: usize) -> usize {
    if num_samples <= WINDOW_LENGTH {
        1
    } else {
        1 + (num_samples - WINDOW_LENGTH) / HOP_LENGTH
    }
}

/// The samples of frame `t`, zero-padded to [`WINDOW_LENGTH`] at the end of
/// the signal.
pub fn frame(samples: &[f32], t: usize) -> [f32; WINDOW_LENGTH] {
    let mut out = [0.0; WINDOW_LENGTH];
    let start = (t * HOP_LENGTH).min(samples.len());
    let end = (start + WINDOW_LENGTH).min(samples.len());
    out[..end - start].copy_from_slice(&samples[start..end]);
    out
}

/// Symmetric Hamming window of length `n`: `0.54 − 0.46·cos(2πi/(n−1))`.
pub fn hamming(n: usize) -> Vec<f32> {
    if n < 2 {
        return vec![1.0; n];
    }
    (0..n)
        .map(|i| {
            let x = 2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64;
            (0.54 - 0.46 * x.cos()) as f32
        })
        .collect()
}

/// Power spectra of all frames.
///
/// # Shapes
/// `power`: `[num_frames, NUM_BINS]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerSpectrogram {
    /// Number of frames.
    pub num_frames: usize,
    /// `|X(k)|²`, `[num_frames, NUM_BINS]`.
    pub power: Vec<f32>,
}

impl PowerSpectrogram {
    /// Power spectrum of frame `t` (`NUM_BINS` values).
    pub fn frame(&self, t: usize) -> &[f32] {
        &self.power[t * NUM_BINS..(t + 1) * NUM_BINS]
    }
}

/// Computes Hamming-windowed [`FFT_SIZE`]-point power spectra.
pub struct Stft {
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft").field("fft_size", &FFT_SIZE).finish()
    }
}

impl Default for Stft {
    fn default() -> Self {
        Self::new()
    }
}

impl Stft {
    /// Plans the FFT and builds the window.
    pub fn new() -> Self {
        Self {
            window: hamming(WINDOW_LENGTH),
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(FFT_SIZE),
        }
    }

    /// Power spectra of every frame of `samples` (see the module doc).
    pub fn power(&self, samples: &[f32]) -> PowerSpectrogram {
        let num_frames = frame_count(samples.len());
        let mut power = Vec::with_capacity(num_frames * NUM_BINS);
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        for t in 0..num_frames {
            let f = frame(samples, t);
            input.fill(0.0);
            for ((dst, &x), &w) in input.iter_mut().zip(&f).zip(&self.window) {
                *dst = x * w;
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("buffers come from the plan, so their lengths match");
            power.extend(spectrum.iter().map(|c| c.norm_sqr()));
        }
        PowerSpectrogram { num_frames, power }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counts() {
        assert_eq!(frame_count(0), 1);
        assert_eq!(frame_count(WINDOW_LENGTH), 1);
        assert_eq!(frame_count(WINDOW_LENGTH + HOP_LENGTH - 1), 1);
        assert_eq!(frame_count(WINDOW_LENGTH + HOP_LENGTH), 2);
        assert_eq!(frame_count(32_000), 198);
    }

    #[test]
    fn sine_peaks_at_its_bin() {
        // 1 kHz = bin 32 of a 512-point FFT at 16 kHz.
        let x: Vec<f32> = (0..1600)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let spec = Stft::new().power(&x);
        assert_eq!(spec.num_frames, frame_count(1600));
        let row = spec.frame(3);
        let argmax = (0..NUM_BINS)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .expect("non-empty");
        assert_eq!(argmax, 32);
    }

    #[test]
    fn hamming_is_symmetric() {
        let w = hamming(WINDOW_LENGTH);
        assert!((w[0] - 0.08).abs() < 1e-6);
        for i in 0..WINDOW_LENGTH {
            assert!((w[i] - w[WINDOW_LENGTH - 1 - i]).abs() < 1e-6);
        }
    }
}
