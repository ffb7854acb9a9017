//! Whisper's log-mel spectrogram, computed as faster-whisper computes it.
//!
//! 16 kHz samples, 160 zero samples appended, 400-point periodic Hann window,
//! hop 160, frames centred with reflect padding, power spectrum, the Slaney
//! mel filter bank (librosa's `filters.mel(sr=16000, n_fft=400, norm="slaney")`),
//! `log10(max(x, 1e-10))`, floored at the recording's maximum − 8 and mapped
//! with `(x + 4) / 4`. The last STFT frame is dropped, as Whisper does.
//!
//! The floor uses the maximum over the whole recording (not per 30 s window),
//! like faster-whisper, so windows of one recording share one scale.

use realfft::RealFftPlanner;

/// Sample rate Whisper expects.
pub const SAMPLE_RATE: usize = 16_000;
/// STFT size.
pub const N_FFT: usize = 400;
/// Hop between frames, samples (10 ms).
pub const HOP: usize = 160;
/// Mel frames in one 30 s window.
pub const WINDOW_FRAMES: usize = 3000;
/// Seconds per mel frame.
pub const SECONDS_PER_FRAME: f64 = HOP as f64 / SAMPLE_RATE as f64;

/// A log-mel spectrogram, mel-major: `data[m * frames + t]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMel {
    /// Number of mel bins (80 for tiny and base).
    pub n_mels: usize,
    /// Number of frames (one per 10 ms of audio).
    pub frames: usize,
    /// The values, `n_mels × frames`.
    pub data: Vec<f32>,
}

impl LogMel {
    /// Frames `start..start + WINDOW_FRAMES` as one 30 s encoder input,
    /// zero-padded past the end (faster-whisper's `pad_or_trim`), mel-major.
    pub fn window(&self, start: usize, len: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; self.n_mels * WINDOW_FRAMES];
        let len = len
            .min(WINDOW_FRAMES)
            .min(self.frames.saturating_sub(start));
        for m in 0..self.n_mels {
            let row = &self.data[m * self.frames..(m + 1) * self.frames];
            out[m * WINDOW_FRAMES..m * WINDOW_FRAMES + len]
                .copy_from_slice(&row[start..start + len]);
        }
        out
    }
}

/// Computes log-mel spectrograms; holds the filter bank and window.
#[derive(Debug, Clone)]
pub struct MelExtractor {
    n_mels: usize,
    /// `n_mels × (N_FFT / 2 + 1)`, row-major.
    filters: Vec<f32>,
    hann: Vec<f32>,
}

impl MelExtractor {
    /// An extractor with `n_mels` bins.
    pub fn new(n_mels: usize) -> Self {
        let hann = (0..N_FFT)
            .map(|i| {
                let x = (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos();
                // np.hanning(401)[:-1] cast to float32.
                (0.5 - 0.5 * x) as f32
            })
            .collect();
        Self {
            n_mels,
            filters: slaney_filters(n_mels),
            hann,
        }
    }

    /// The log-mel spectrogram of 16 kHz mono samples.
    ///
    /// # Shapes
    /// `samples: [n]` → `LogMel { n_mels, frames: (n + 160) / 160 }`.
    pub fn compute(&self, samples: &[f32]) -> LogMel {
        let bins = N_FFT / 2 + 1;
        let mut padded_input: Vec<f32> = samples.to_vec();
        padded_input.extend(std::iter::repeat_n(0.0, HOP));
        let n = padded_input.len();
        // STFT frames over the centred signal, minus the last one.
        let frames = (1 + n / HOP).saturating_sub(1);
        let half = (N_FFT / 2) as isize;
        let mut planner = RealFftPlanner::<f64>::new();
        let fft = planner.plan_fft_forward(N_FFT);
        let mut input = fft.make_input_vec();
        let mut spectrum = fft.make_output_vec();
        let mut power = vec![0.0f32; bins];
        let mut mel = vec![0.0f32; self.n_mels * frames];
        for t in 0..frames {
            let start = (t * HOP) as isize - half;
            for (k, slot) in input.iter_mut().enumerate() {
                let idx = reflect(start + k as isize, n);
                // The windowed frame is float32 in numpy, the FFT float64.
                *slot = f64::from(padded_input[idx] * self.hann[k]);
            }
            fft.process(&mut input, &mut spectrum)
                .expect("buffer sizes come from the same plan");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                // complex64 magnitude squared, as numpy computes it.
                let re = c.re as f32;
                let im = c.im as f32;
                let mag = re.hypot(im);
                *p = mag * mag;
            }
            for m in 0..self.n_mels {
                let row = &self.filters[m * bins..(m + 1) * bins];
                let e: f32 = row.iter().zip(&power).map(|(w, p)| w * p).sum();
                mel[m * frames + t] = e.max(1e-10).log10();
            }
        }
        let max = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in &mut mel {
            *v = (v.max(max - 8.0) + 4.0) / 4.0;
        }
        LogMel {
            n_mels: self.n_mels,
            frames,
            data: mel,
        }
    }
}

/// numpy's `reflect` padding index for position `i` of a length-`n` signal
/// (repeated reflection when the pad exceeds the signal).
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let mut j = i.rem_euclid(period);
    if j >= n as isize {
        j = period - j;
    }
    j as usize
}

/// librosa's Slaney-scale, Slaney-normalised mel filter bank for 16 kHz and a
/// 400-point FFT, computed in f64 and stored in f32 (as faster-whisper does).
fn slaney_filters(n_mels: usize) -> Vec<f32> {
    let bins = N_FFT / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins)
        .map(|k| k as f64 * SAMPLE_RATE as f64 / N_FFT as f64)
        .collect();
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let log_step = 6.4f64.ln() / 27.0;
    let hz_to_mel = |hz: f64| {
        if hz >= min_log_hz {
            min_log_mel + (hz / min_log_hz).ln() / log_step
        } else {
            hz / f_sp
        }
    };
    let mel_to_hz = |mel: f64| {
        if mel >= min_log_mel {
            min_log_hz * (log_step * (mel - min_log_mel)).exp()
        } else {
            f_sp * mel
        }
    };
    let max_mel = hz_to_mel(SAMPLE_RATE as f64 / 2.0);
    let freqs: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(max_mel * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut out = vec![0.0f32; n_mels * bins];
    for m in 0..n_mels {
        let enorm = 2.0 / (freqs[m + 2] - freqs[m]);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - freqs[m]) / (freqs[m + 1] - freqs[m]);
            let upper = (freqs[m + 2] - f) / (freqs[m + 2] - freqs[m + 1]);
            out[m * bins + k] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_matches_numpy() {
        // np.pad(np.arange(4), 5, mode="reflect")
        let got: Vec<usize> = (-5..9).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]);
    }

    #[test]
    fn frames_follow_the_sample_count() {
        let mel = MelExtractor::new(80).compute(&vec![0.1; 16_000]);
        assert_eq!(mel.frames, 101); // (16_000 + 160) / 160
        assert_eq!(mel.data.len(), 80 * 101);
        // Constant input: one value everywhere after the floor, all finite.
        assert!(mel.data.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn a_tone_lights_its_mel_band() {
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let mel = MelExtractor::new(80).compute(&tone);
        let t = 50;
        let column: Vec<f32> = (0..80).map(|m| mel.data[m * mel.frames + t]).collect();
        let peak = column
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(m, _)| m)
            .unwrap_or_default();
        // 1 kHz is mel 15 on the Slaney scale; bins are 45.25 / 81 apart.
        let centre = (15.0f64 / (45.245_640_471_924_965 / 81.0)).round() as usize - 1;
        assert!(
            peak.abs_diff(centre) <= 1,
            "peak band {peak}, expected ~{centre}"
        );
    }
}
