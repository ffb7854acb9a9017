//! Cycle-to-cycle perturbation: local jitter and local shimmer (dB).
//!
//! Glottal cycles are found by waveform matching guided by the F0 track: in
//! each voiced run a chain is anchored on the largest positive peak of the
//! first period; from a mark `p` with local period `T` (from the F0 track), the
//! one-period template centred on `p` is cross-correlated with the signal
//! shifted by `τ ∈ [(1 − r)·T, (1 + r)·T]` (`r` = [`SEARCH_RANGE_REL`]); the
//! best `τ`, refined by a parabola through three correlation values (at 16 kHz
//! one sample is 1.25 % of a 200 Hz period, larger than typical jitter), is the
//! cycle's period `T_i`, and the next mark is `p + τ`. A match below
//! [`MIN_CYCLE_CORRELATION`] breaks the chain, which re-anchors a period later
//! (eGeMAPS' `cPitchJitter` also matches cycles by cross-correlation, with
//! `minCC = 0.5`). A cycle's amplitude `A_i` is the peak of its template.
//!
//! ```text
//! jitter_local     = mean_i |T_i − T_{i−1}| / mean_i T_i
//! shimmer_local_dB = mean_i |20·log10(A_i / A_{i−1})|
//! ```
//!
//! over consecutive cycle pairs of all voiced runs (Boersma's definitions in
//! Praat's voice report; eGeMAPS `jitterLocal`, `shimmerLocalDB`). Pairs whose
//! periods differ by more than [`MAX_PERIOD_FACTOR`] or amplitudes by more than
//! [`MAX_AMPLITUDE_FACTOR`] are skipped (Praat's defaults 1.3 and 1.6).
//! eGeMAPS averages per-frame values over its own voiced frames instead of
//! pooling cycles, so these approximate its numbers (see
//! `docs/audio-features.md`).

use crate::pitch::voiced_runs;
use crate::{HOP_LENGTH, SAMPLE_RATE, WINDOW_LENGTH};

/// Relative half-width of the window searched for the next cycle mark.
pub const SEARCH_RANGE_REL: f32 = 0.15;
/// Largest ratio of consecutive periods in a jitter pair (Praat: 1.3).
pub const MAX_PERIOD_FACTOR: f32 = 1.3;
/// Smallest normalised cross-correlation of two consecutive cycles.
pub const MIN_CYCLE_CORRELATION: f32 = 0.5;
/// Largest ratio of consecutive amplitudes in a shimmer pair (Praat: 1.6).
pub const MAX_AMPLITUDE_FACTOR: f32 = 1.6;

/// Utterance-level perturbation measures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Perturbation {
    /// Local jitter (fraction, e.g. 0.01 = 1 %); 0 when no cycle pair exists.
    pub jitter_local: f32,
    /// Local shimmer in dB; 0 when no cycle pair exists.
    pub shimmer_local_db: f32,
    /// Number of cycle pairs that entered the jitter average.
    pub num_pairs: usize,
}

/// Jitter and shimmer of 16 kHz `samples` given a frame-level F0 track
/// (`f0_hz[t] > 0` where voiced, 10 ms frames).
pub fn perturbation(samples: &[f32], f0_hz: &[f32]) -> Perturbation {
    let voiced: Vec<bool> = f0_hz.iter().map(|&f| f > 0.0).collect();
    let (mut jit_sum, mut period_sum, mut jit_n) = (0.0f64, 0.0f64, 0usize);
    let (mut shim_sum, mut shim_n) = (0.0f64, 0usize);
    for run in voiced_runs(&voiced) {
        for chain in cycles(samples, f0_hz, run) {
            for w in chain.windows(2) {
                let ((t0, a0), (t1, a1)) = (w[0], w[1]);
                if t0.max(t1) / t0.min(t1) <= MAX_PERIOD_FACTOR {
                    jit_sum += f64::from((t1 - t0).abs());
                    period_sum += f64::from(t0 + t1) / 2.0;
                    jit_n += 1;
                }
                if a0 > 0.0 && a1 > 0.0 && a0.max(a1) / a0.min(a1) <= MAX_AMPLITUDE_FACTOR {
                    shim_sum += f64::from((20.0 * (a1 / a0).log10()).abs());
                    shim_n += 1;
                }
            }
        }
    }
    Perturbation {
        jitter_local: if jit_n > 0 && period_sum > 0.0 {
            (jit_sum / period_sum) as f32
        } else {
            0.0
        },
        shimmer_local_db: if shim_n > 0 {
            (shim_sum / shim_n as f64) as f32
        } else {
            0.0
        },
        num_pairs: jit_n,
    }
}

/// Cycles `(period in samples, peak amplitude around its mark)` inside one voiced
/// run, in order; a chain breaks (and restarts) where the waveform match falls
/// below [`MIN_CYCLE_CORRELATION`].
fn cycles(samples: &[f32], f0_hz: &[f32], run: std::ops::Range<usize>) -> Vec<Vec<(f32, f32)>> {
    let centre = |t: usize| (t * HOP_LENGTH + WINDOW_LENGTH / 2) as f32;
    let start = (centre(run.start) - HOP_LENGTH as f32 / 2.0).max(0.0) as usize;
    let end = ((centre(run.end - 1) + HOP_LENGTH as f32 / 2.0) as usize).min(samples.len());
    let period_at = |pos: f32| -> f32 {
        let t = ((pos - (WINDOW_LENGTH / 2) as f32) / HOP_LENGTH as f32).round();
        let t = (t.max(run.start as f32) as usize).min(run.end - 1);
        SAMPLE_RATE as f32 / f0_hz[t]
    };
    let mut chains = Vec::new();
    let mut chain: Vec<(f32, f32)> = Vec::new();
    if start + 2 >= end {
        return chains;
    }
    // (Re-)anchor a chain on the largest sample of the coming period, moving
    // on by a period while that is not a true peak (silence, window edge).
    let anchor = |mut from: f32| -> Option<f32> {
        loop {
            let lo = from.max(1.0) as usize;
            let hi = (lo + period_at(from).ceil() as usize).min(end.saturating_sub(1));
            if lo >= hi {
                return None;
            }
            let i = argmax(samples, lo, hi)?;
            if samples[i] > 0.0 && samples[i] > samples[i - 1] && samples[i] >= samples[i + 1] {
                return Some(i as f32);
            }
            from = hi as f32;
        }
    };
    let Some(mut pos) = anchor(start as f32) else {
        return chains;
    };
    loop {
        let period = period_at(pos);
        let half = (period / 2.0).round() as usize;
        let p = pos.round() as usize;
        let lo = ((1.0 - SEARCH_RANGE_REL) * period).floor() as usize;
        let hi = ((1.0 + SEARCH_RANGE_REL) * period).ceil() as usize;
        if p < half || p + hi + half + 1 > end {
            break;
        }
        let template = &samples[p - half..p + half];
        let e_t: f32 = template.iter().map(|v| v * v).sum();
        let cc = |tau: usize| -> f32 {
            let seg = &samples[p - half + tau..p + half + tau];
            let e_s: f32 = seg.iter().map(|v| v * v).sum();
            let dot: f32 = template.iter().zip(seg).map(|(a, b)| a * b).sum();
            if e_t > 0.0 && e_s > 0.0 {
                dot / (e_t * e_s).sqrt()
            } else {
                0.0
            }
        };
        let scores: Vec<f32> = (lo..=hi + 1).map(cc).collect();
        let Some(best) = (1..scores.len() - 1).max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        else {
            break;
        };
        let tau_int = lo + best;
        if scores[best] < MIN_CYCLE_CORRELATION {
            if !chain.is_empty() {
                chains.push(std::mem::take(&mut chain));
            }
            match anchor(pos + period) {
                Some(next) => pos = next,
                None => break,
            }
            continue;
        }
        let (y0, y1, y2) = (scores[best - 1], scores[best], scores[best + 1]);
        let den = y0 - 2.0 * y1 + y2;
        let tau = if den < -1e-12 {
            tau_int as f32 + (0.5 * (y0 - y2) / den).clamp(-0.5, 0.5)
        } else {
            tau_int as f32
        };
        let peak = template.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        chain.push((tau, peak));
        pos += tau;
    }
    if !chain.is_empty() {
        chains.push(chain);
    }
    chains
}

fn argmax(x: &[f32], lo: usize, hi: usize) -> Option<usize> {
    (lo..hi.min(x.len())).max_by(|&a, &b| x[a].total_cmp(&x[b]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pulse-like periodic signal with given per-cycle periods and amplitudes.
    fn pulse_train(periods: &[f32], amps: &[f32]) -> Vec<f32> {
        let total: f32 = periods.iter().sum();
        let mut x = vec![0.0f32; total as usize + 800];
        let mut pos = 400.0f32;
        for (&p, &a) in periods.iter().zip(amps) {
            // A smooth bump per cycle: raised-cosine of 20 samples.
            for k in -10i32..=10 {
                let i = (pos.round() as i32 + k) as usize;
                let v = 0.5 * (1.0 + (std::f32::consts::PI * (i as f32 - pos) / 10.0).cos());
                x[i] += a * v;
            }
            pos += p;
        }
        x
    }

    #[test]
    fn perfectly_periodic_signal_has_no_jitter_or_shimmer() {
        let x = pulse_train(&[80.0; 150], &[0.5; 150]);
        let f0 = vec![200.0; crate::stft::frame_count(x.len())];
        let p = perturbation(&x, &f0);
        assert!(p.num_pairs > 50, "{p:?}");
        assert!(p.jitter_local < 0.002, "{p:?}");
        assert!(p.shimmer_local_db < 0.05, "{p:?}");
    }

    #[test]
    fn alternating_periods_and_amplitudes_are_measured() {
        // Periods 78/82 (jitter 4/80 = 5 %), amplitudes 0.5/0.45 (0.915 dB).
        let periods: Vec<f32> = (0..150)
            .map(|i| if i % 2 == 0 { 78.0 } else { 82.0 })
            .collect();
        let amps: Vec<f32> = (0..150)
            .map(|i| if i % 2 == 0 { 0.5 } else { 0.45 })
            .collect();
        let x = pulse_train(&periods, &amps);
        let f0 = vec![200.0; crate::stft::frame_count(x.len())];
        let p = perturbation(&x, &f0);
        assert!((p.jitter_local - 0.05).abs() < 0.005, "{p:?}");
        assert!((p.shimmer_local_db - 0.915).abs() < 0.1, "{p:?}");
    }

    #[test]
    fn unvoiced_track_gives_zeros() {
        let p = perturbation(&[0.1; 4000], &[0.0; 23]);
        assert_eq!(p, Perturbation::default());
    }
}
