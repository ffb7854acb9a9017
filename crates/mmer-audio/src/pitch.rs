//! F0, voicing and harmonics-to-noise ratio: YIN candidates, Viterbi path,
//! two-pass speaker range.
//!
//! **Per frame** (de Cheveigné & Kawahara, "YIN, a fundamental frequency
//! estimator for speech and music", JASA 111(4), 2002): every 10 ms, centred on
//! the centre of the 25 ms analysis frame, over a buffer of `W + τ_max` samples
//! (`W` = [`YIN_WINDOW`], `τ_max` from [`F0_MIN_HZ`]):
//!
//! ```text
//! d(τ)  = Σ_{j<W} (x_j − x_{j+τ})² = e_0 + e_τ − 2·r(τ)        (YIN step 2, r via FFT)
//! d'(τ) = d(τ) · τ / Σ_{k=1..τ} d(k),   d'(0) = 1              (step 3)
//! ```
//!
//! The plain YIN pick is the first `τ` with `d'(τ) <` [`YIN_THRESHOLD`], moved
//! to the bottom of its dip (step 4; the global minimum when no dip crosses);
//! `1 − d'` there is the frame's `periodicity`. Period candidates are that pick
//! plus the deepest other local minima of `d'` below
//! [`CANDIDATE_MAX_APERIODICITY`] ([`MAX_CANDIDATES`] in all), each refined by a
//! parabola through three points (step 5). Frames quieter than [`SILENCE_RMS`]
//! have no candidates.
//!
//! **Path**: a Viterbi search over "candidate k" and "unvoiced" states (the
//! scheme of Boersma's Praat pitch tracker, IFA Proceedings 17, 1993): a
//! candidate costs `d'(τ) + OCTAVE_COST·log2(f_top / f)` (`f_top` = the frame's
//! highest candidate, so that, as in YIN, the shortest good period wins ties
//! with its multiples), "unvoiced" costs [`VOICING_THRESHOLD`]; moving between
//! voiced states costs [`OCTAVE_JUMP_COST`] per octave, switching voicing
//! [`VOICED_UNVOICED_COST`].
//!
//! **Two passes** (De Looze & Hirst, "Detecting changes in key and range for the
//! automatic modelling and coding of intonation", Speech Prosody 2008): the
//! first pass searches 55–1000 Hz; the second restricts candidates to
//! `[0.75·q25, 2·q75]` of the first pass's voiced F0 (q = quartiles; the
//! ceiling is an octave above q75 rather than Hirst's 1.5·q75 to leave room for
//! emotional excursions). This removes the spurious high runs that fricatives
//! and creaky onsets produce. Finally voiced runs shorter than
//! [`MIN_VOICED_FRAMES`] are dropped.
//!
//! **HNR** after Boersma ("Accurate short-term analysis of the fundamental
//! frequency and the harmonics-to-noise ratio of a sampled sound", IFA
//! Proceedings 17, 1993, eq. 9): `ρ = (r_x(τ)/r_x(0)) / (r_w(τ)/r_w(0))`, the
//! autocorrelation of the Hann-windowed buffer at the chosen period divided by
//! the window's own, then `HNR = 10·log10(ρ / (1 − ρ))` dB with `ρ` clipped to
//! [[`HNR_RHO_MIN`], [`HNR_RHO_MAX`]] (−20 … +30 dB). eGeMAPS' `HNRdBACF`
//! skips the division by `r_w`, which biases HNR down more the longer the
//! period (a pure 200 Hz tone scores ≈ 10 dB, a 100 Hz one less), tying it to
//! F0; we keep the corrected form and accept the lower parity (see
//! `docs/audio-features.md`).
//!
//! The search range 55–1000 Hz is eGeMAPS' (`cPitchShs minPitch`, `maxPitch`).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::stft::frame_count;
use crate::{HOP_LENGTH, SAMPLE_RATE, WINDOW_LENGTH};

/// Lowest F0 searched, Hz (eGeMAPS `minPitch`).
pub const F0_MIN_HZ: f32 = 55.0;
/// Highest F0 searched, Hz (eGeMAPS `maxPitch`).
pub const F0_MAX_HZ: f32 = 1000.0;
/// YIN integration window `W`, samples (25 ms).
pub const YIN_WINDOW: usize = WINDOW_LENGTH;
/// YIN absolute threshold on `d'` for the first-dip pick (YIN paper: 0.1).
pub const YIN_THRESHOLD: f32 = 0.1;
/// Cost of the unvoiced state: a frame is voiced, other things equal, when its
/// best candidate has `d' <` this (chosen on EmoDB for voicing agreement with
/// eGeMAPS; YIN's own voicing examples use 0.1–0.5).
pub const VOICING_THRESHOLD: f32 = 0.5;
/// Smallest RMS of a voiced frame: −60 dBFS (eGeMAPS gates F0 with RMS ≥ 0.001).
pub const SILENCE_RMS: f32 = 0.001;
/// Largest `d'` of a period candidate.
pub const CANDIDATE_MAX_APERIODICITY: f32 = 0.6;
/// Period candidates per frame (the YIN pick and the deepest other dips).
pub const MAX_CANDIDATES: usize = 5;
/// Cost per octave below the frame's highest candidate.
pub const OCTAVE_COST: f32 = 0.05;
/// Path cost per octave of F0 change between frames (Praat's default 0.35).
pub const OCTAVE_JUMP_COST: f32 = 0.35;
/// Path cost of a voiced/unvoiced switch (Praat uses 0.14 on its own
/// strength scale; 0.3 here suppresses flicker on the `d'` scale).
pub const VOICED_UNVOICED_COST: f32 = 0.3;
/// Shortest voiced run kept, frames (30 ms).
pub const MIN_VOICED_FRAMES: usize = 3;
/// Fewest first-pass voiced frames needed to adapt the range in pass two.
pub const MIN_RANGE_FRAMES: usize = 10;
/// Second-pass floor as a fraction of the first pass's F0 lower quartile (Hirst: 0.75).
pub const RANGE_FLOOR_FACTOR: f32 = 0.75;
/// Second-pass ceiling as a multiple of the first pass's F0 upper quartile.
pub const RANGE_CEILING_FACTOR: f32 = 2.0;
/// Lower clip of the normalised autocorrelation in the HNR (→ −20 dB).
pub const HNR_RHO_MIN: f32 = 0.01;
/// Upper clip of the normalised autocorrelation in the HNR (→ +30 dB).
pub const HNR_RHO_MAX: f32 = 0.999;

const FFT_LEN: usize = 1024;

/// Frame-level pitch analysis.
///
/// # Shapes
/// Every field is `[num_frames]`, aligned with the 25 ms / 10 ms frames.
#[derive(Debug, Clone, PartialEq)]
pub struct PitchTrack {
    /// F0 in Hz; 0 in unvoiced frames.
    pub f0_hz: Vec<f32>,
    /// Voicing decision.
    pub voiced: Vec<bool>,
    /// Periodicity `1 − d'` at the plain YIN pick, in [0, 1] (every frame).
    pub periodicity: Vec<f32>,
    /// Harmonics-to-noise ratio in dB (every frame; meaningful where voiced).
    pub hnr_db: Vec<f32>,
}

/// YIN pitch tracker with its FFT plans.
pub struct PitchTracker {
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    tau_min: usize,
    tau_max: usize,
    /// Hann window over the `YIN_WINDOW + tau_max` buffer (for the HNR).
    hann: Vec<f32>,
    /// Normalised autocorrelation of `hann`, `τ = 0..=tau_max`.
    hann_acf: Vec<f32>,
}

impl std::fmt::Debug for PitchTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PitchTracker")
            .field("tau_min", &self.tau_min)
            .field("tau_max", &self.tau_max)
            .finish()
    }
}

impl Default for PitchTracker {
    fn default() -> Self {
        Self::new()
    }
}

/// One period hypothesis of a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    f0_hz: f32,
    /// `d'(τ)`.
    aperiodicity: f32,
    /// Windowed autocorrelation at `τ`, normalised by lag 0.
    rho: f32,
}

/// What one frame keeps for the two decoding passes.
#[derive(Debug, Clone, PartialEq)]
struct FrameAnalysis {
    rms: f32,
    /// `d'(τ)`, `τ = 0..=tau_max`.
    dprime: Vec<f32>,
    /// Normalised windowed autocorrelation, `τ = 0..=tau_max`.
    acf: Vec<f32>,
}

impl PitchTracker {
    /// Plans the FFTs.
    pub fn new() -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let sr = SAMPLE_RATE as f32;
        let tau_min = (sr / F0_MAX_HZ).floor() as usize;
        let tau_max = (sr / F0_MIN_HZ).ceil() as usize;
        let len = YIN_WINDOW + tau_max;
        debug_assert!(len + tau_max <= FFT_LEN);
        let hann: Vec<f32> = (0..len)
            .map(|j| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * j as f32 / (len - 1) as f32).cos())
            .collect();
        let zero: f64 = hann.iter().map(|&h| f64::from(h) * f64::from(h)).sum();
        let hann_acf = (0..=tau_max)
            .map(|tau| {
                let r: f64 = (0..len - tau)
                    .map(|j| f64::from(hann[j]) * f64::from(hann[j + tau]))
                    .sum();
                (r / zero) as f32
            })
            .collect();
        Self {
            forward: planner.plan_fft_forward(FFT_LEN),
            inverse: planner.plan_fft_inverse(FFT_LEN),
            tau_min,
            tau_max,
            hann,
            hann_acf,
        }
    }

    /// Tracks F0 over 16 kHz `samples` (see the module doc).
    pub fn track(&self, samples: &[f32]) -> PitchTrack {
        let num_frames = frame_count(samples.len());
        let mut work = Work::new(self);
        let frames: Vec<FrameAnalysis> = (0..num_frames)
            .map(|t| self.analyse(samples, t, &mut work))
            .collect();
        let (lo, hi) = (self.tau_min.max(1), self.tau_max - 1);
        let first = decode(&frames, lo, hi);
        let (lo2, hi2) = self.speaker_range(&first).unwrap_or((lo, hi));
        let path = decode(&frames, lo2, hi2);
        let mut track = PitchTrack {
            f0_hz: Vec::with_capacity(num_frames),
            voiced: Vec::with_capacity(num_frames),
            periodicity: Vec::with_capacity(num_frames),
            hnr_db: Vec::with_capacity(num_frames),
        };
        for (frame, chosen) in frames.iter().zip(path) {
            let pick = yin_pick(&frame.dprime, lo, hi);
            track.f0_hz.push(chosen.map_or(0.0, |c| c.f0_hz));
            track.voiced.push(chosen.is_some());
            track
                .periodicity
                .push((1.0 - frame.dprime[pick]).clamp(0.0, 1.0));
            let rho = chosen
                .map_or(frame.acf[pick], |c| c.rho)
                .clamp(HNR_RHO_MIN, HNR_RHO_MAX);
            track.hnr_db.push(10.0 * (rho / (1.0 - rho)).log10());
        }
        drop_short_runs(&mut track);
        track
    }

    /// Second-pass lag range from the first pass's voiced F0 quartiles.
    fn speaker_range(&self, first: &[Option<Candidate>]) -> Option<(usize, usize)> {
        let mut f0: Vec<f32> = first.iter().flatten().map(|c| c.f0_hz).collect();
        if f0.len() < MIN_RANGE_FRAMES {
            return None;
        }
        f0.sort_by(f32::total_cmp);
        let q = |p: f32| f0[((f0.len() - 1) as f32 * p).round() as usize];
        let floor = (RANGE_FLOOR_FACTOR * q(0.25)).max(F0_MIN_HZ);
        let ceiling = (RANGE_CEILING_FACTOR * q(0.75)).min(F0_MAX_HZ);
        let sr = SAMPLE_RATE as f32;
        let lo = ((sr / ceiling).floor() as usize).max(self.tau_min.max(1));
        let hi = ((sr / floor).ceil() as usize).min(self.tau_max - 1);
        (lo + 2 < hi).then_some((lo, hi))
    }

    /// `d'` and the windowed autocorrelation of frame `t`.
    fn analyse(&self, samples: &[f32], t: usize, w: &mut Work) -> FrameAnalysis {
        let len = YIN_WINDOW + self.tau_max;
        let centre = (t * HOP_LENGTH + WINDOW_LENGTH / 2) as isize;
        let start = centre - (len / 2) as isize;
        w.buf.fill(0.0);
        for (j, dst) in w.buf.iter_mut().take(len).enumerate() {
            let k = start + j as isize;
            if k >= 0 && (k as usize) < samples.len() {
                *dst = samples[k as usize];
            }
        }
        // Prefix sums of squares (f64: differences of large sums).
        w.cum[0] = 0.0;
        for j in 0..len {
            w.cum[j + 1] = w.cum[j] + f64::from(w.buf[j]).powi(2);
        }
        let rms = ((w.cum[len] / len as f64).sqrt()) as f32;
        // r(τ) = Σ_{j<W} a_j b_{j+τ}: a = first W samples, b = whole buffer.
        w.a.fill(0.0);
        w.a[..YIN_WINDOW].copy_from_slice(&w.buf[..YIN_WINDOW]);
        w.b.copy_from_slice(&w.buf);
        self.forward
            .process_with_scratch(&mut w.a, &mut w.spec_a, &mut w.scratch_f)
            .expect("buffers come from the plan");
        self.forward
            .process_with_scratch(&mut w.b, &mut w.spec_b, &mut w.scratch_f)
            .expect("buffers come from the plan");
        for (pa, pb) in w.spec_a.iter_mut().zip(&w.spec_b) {
            *pa = pa.conj() * pb;
        }
        let last = w.spec_a.len() - 1;
        w.spec_a[0].im = 0.0;
        w.spec_a[last].im = 0.0;
        self.inverse
            .process_with_scratch(&mut w.spec_a, &mut w.corr, &mut w.scratch_i)
            .expect("buffers come from the plan");
        let scale = 1.0 / FFT_LEN as f64;
        let e0 = w.cum[YIN_WINDOW];
        let mut dprime = vec![1.0f32; self.tau_max + 1];
        let mut running = 0.0f64;
        for (tau, dst) in dprime.iter_mut().enumerate().skip(1) {
            let e_tau = w.cum[tau + YIN_WINDOW] - w.cum[tau];
            let d = (e0 + e_tau - 2.0 * f64::from(w.corr[tau]) * scale).max(0.0);
            running += d;
            if running > 1e-20 {
                *dst = (d * tau as f64 / running) as f32;
            }
        }
        // Autocorrelation of the Hann-windowed buffer: IFFT(|FFT|²).
        w.a.fill(0.0);
        for ((dst, &x), &h) in w.a.iter_mut().zip(&w.buf[..len]).zip(&self.hann) {
            *dst = x * h;
        }
        self.forward
            .process_with_scratch(&mut w.a, &mut w.spec_a, &mut w.scratch_f)
            .expect("buffers come from the plan");
        for c in w.spec_a.iter_mut() {
            *c = Complex::new(c.norm_sqr(), 0.0);
        }
        self.inverse
            .process_with_scratch(&mut w.spec_a, &mut w.corr, &mut w.scratch_i)
            .expect("buffers come from the plan");
        let zero = w.corr[0];
        let acf = (0..=self.tau_max)
            .map(|tau| {
                let r = if zero > 0.0 { w.corr[tau] / zero } else { 0.0 };
                r / self.hann_acf[tau].max(1e-6)
            })
            .collect();
        FrameAnalysis { rms, dprime, acf }
    }
}

/// Plain YIN pick within `[lo, hi]`: first dip under the threshold, moved to
/// its bottom; else the global minimum.
fn yin_pick(dp: &[f32], lo: usize, hi: usize) -> usize {
    let mut tau = lo;
    while tau <= hi {
        if dp[tau] < YIN_THRESHOLD {
            while tau < hi && dp[tau + 1] < dp[tau] {
                tau += 1;
            }
            return tau;
        }
        tau += 1;
    }
    (lo..=hi)
        .min_by(|&a, &b| dp[a].total_cmp(&dp[b]))
        .unwrap_or(lo)
}

/// Candidates of a frame with lags in `[lo, hi]` (`1 ≤ lo`, `hi < dp.len() − 1`).
fn candidates(frame: &FrameAnalysis, lo: usize, hi: usize) -> Vec<Candidate> {
    if frame.rms < SILENCE_RMS {
        return Vec::new();
    }
    let dp = &frame.dprime;
    let make = |tau: usize| -> Candidate {
        let mut period = tau as f32;
        let (y0, y1, y2) = (dp[tau - 1], dp[tau], dp[tau + 1]);
        let den = y0 - 2.0 * y1 + y2;
        if den > 1e-12 {
            period += (0.5 * (y0 - y2) / den).clamp(-0.5, 0.5);
        }
        Candidate {
            f0_hz: SAMPLE_RATE as f32 / period,
            aperiodicity: dp[tau],
            rho: frame.acf[tau],
        }
    };
    let pick = yin_pick(dp, lo, hi);
    let mut dips: Vec<usize> = (lo..=hi)
        .filter(|&k| {
            k != pick
                && dp[k] < dp[k - 1]
                && dp[k] <= dp[k + 1]
                && dp[k] < CANDIDATE_MAX_APERIODICITY
        })
        .collect();
    dips.sort_by(|&a, &b| dp[a].total_cmp(&dp[b]));
    dips.truncate(MAX_CANDIDATES - 1);
    let mut out = Vec::with_capacity(MAX_CANDIDATES);
    if dp[pick] < CANDIDATE_MAX_APERIODICITY {
        out.push(make(pick));
    }
    out.extend(dips.into_iter().map(make));
    out
}

/// Viterbi decoding with candidates restricted to lags `[lo, hi]`.
fn decode(frames: &[FrameAnalysis], lo: usize, hi: usize) -> Vec<Option<Candidate>> {
    let cands: Vec<Vec<Candidate>> = frames.iter().map(|f| candidates(f, lo, hi)).collect();
    viterbi(&cands)
        .into_iter()
        .zip(&cands)
        .map(|(state, c)| state.map(|k| c[k]))
        .collect()
}

/// Local costs of a frame's states: each candidate, then "unvoiced".
fn local_costs(cands: &[Candidate]) -> Vec<f32> {
    let top = cands.iter().fold(0.0f32, |m, c| m.max(c.f0_hz));
    let mut costs: Vec<f32> = cands
        .iter()
        .map(|c| c.aperiodicity + OCTAVE_COST * (top / c.f0_hz).log2())
        .collect();
    costs.push(VOICING_THRESHOLD);
    costs
}

fn transition_cost(prev: Option<&Candidate>, cur: Option<&Candidate>) -> f32 {
    match (prev, cur) {
        (Some(a), Some(b)) => OCTAVE_JUMP_COST * (a.f0_hz / b.f0_hz).log2().abs(),
        (None, None) => 0.0,
        _ => VOICED_UNVOICED_COST,
    }
}

/// Cheapest state sequence; `Some(k)` = candidate `k`, `None` = unvoiced.
fn viterbi(cands: &[Vec<Candidate>]) -> Vec<Option<usize>> {
    let Some(first) = cands.first() else {
        return Vec::new();
    };
    let mut cost = local_costs(first);
    let mut back: Vec<Vec<usize>> = vec![vec![0; cost.len()]];
    for t in 1..cands.len() {
        let (prev, cur) = (&cands[t - 1], &cands[t]);
        let local = local_costs(cur);
        let mut next = vec![f32::INFINITY; local.len()];
        let mut from = vec![0usize; local.len()];
        for (j, lc) in local.iter().enumerate() {
            for (i, pc) in cost.iter().enumerate() {
                let c = pc + transition_cost(prev.get(i), cur.get(j)) + lc;
                if c < next[j] {
                    next[j] = c;
                    from[j] = i;
                }
            }
        }
        cost = next;
        back.push(from);
    }
    let mut state = (0..cost.len())
        .min_by(|&a, &b| cost[a].total_cmp(&cost[b]))
        .unwrap_or(0);
    let mut path = vec![None; cands.len()];
    for t in (0..cands.len()).rev() {
        path[t] = (state < cands[t].len()).then_some(state);
        state = back[t][state];
    }
    path
}

struct Work {
    buf: Vec<f32>,
    cum: Vec<f64>,
    a: Vec<f32>,
    b: Vec<f32>,
    spec_a: Vec<Complex<f32>>,
    spec_b: Vec<Complex<f32>>,
    corr: Vec<f32>,
    scratch_f: Vec<Complex<f32>>,
    scratch_i: Vec<Complex<f32>>,
}

impl Work {
    fn new(p: &PitchTracker) -> Self {
        Self {
            buf: vec![0.0; FFT_LEN],
            cum: vec![0.0; FFT_LEN + 1],
            a: p.forward.make_input_vec(),
            b: p.forward.make_input_vec(),
            spec_a: p.forward.make_output_vec(),
            spec_b: p.forward.make_output_vec(),
            corr: p.inverse.make_output_vec(),
            scratch_f: p.forward.make_scratch_vec(),
            scratch_i: p.inverse.make_scratch_vec(),
        }
    }
}

/// Maximal runs of `true` as half-open frame ranges.
pub fn voiced_runs(voiced: &[bool]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = None;
    for (t, &v) in voiced.iter().enumerate() {
        match (v, start) {
            (true, None) => start = Some(t),
            (false, Some(s)) => {
                runs.push(s..t);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(s..voiced.len());
    }
    runs
}

fn drop_short_runs(track: &mut PitchTrack) {
    for run in voiced_runs(&track.voiced) {
        if run.len() < MIN_VOICED_FRAMES {
            for t in run {
                track.voiced[t] = false;
                track.f0_hz[t] = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freqs: &[(f32, f32)], secs: f32) -> Vec<f32> {
        let n = (secs * SAMPLE_RATE as f32) as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE as f32;
                freqs
                    .iter()
                    .map(|&(f, a)| a * (2.0 * std::f32::consts::PI * f * t).sin())
                    .sum()
            })
            .collect()
    }

    #[test]
    fn sine_200hz_is_voiced_at_200hz() {
        let track = PitchTracker::new().track(&tone(&[(200.0, 0.5)], 1.0));
        let n = track.f0_hz.len();
        for t in 3..n - 3 {
            assert!(track.voiced[t], "frame {t} unvoiced");
            assert!(
                (track.f0_hz[t] - 200.0).abs() < 1.0,
                "frame {t}: {}",
                track.f0_hz[t]
            );
            assert!(track.hnr_db[t] > 20.0, "frame {t}: HNR {}", track.hnr_db[t]);
        }
    }

    #[test]
    fn harmonic_complex_gives_its_fundamental() {
        // A weak fundamental under strong harmonics (a voice-like spectrum).
        let x = tone(
            &[(120.0, 0.1), (240.0, 0.4), (360.0, 0.3), (480.0, 0.2)],
            1.0,
        );
        let track = PitchTracker::new().track(&x);
        for t in 5..track.f0_hz.len() - 5 {
            assert!(
                (track.f0_hz[t] - 120.0).abs() < 1.5,
                "frame {t}: {}",
                track.f0_hz[t]
            );
        }
    }

    #[test]
    fn silence_and_noise_are_unvoiced() {
        let track = PitchTracker::new().track(&vec![0.0; 16_000]);
        assert!(track.voiced.iter().all(|&v| !v));
        assert!(track.f0_hz.iter().all(|&f| f == 0.0));
        // Deterministic white-ish noise (xorshift).
        let mut s = 0x2545_f491_u32;
        let noise: Vec<f32> = (0..16_000)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32 - 0.5) * 0.5
            })
            .collect();
        let track = PitchTracker::new().track(&noise);
        let voiced = track.voiced.iter().filter(|&&v| v).count();
        assert!(
            voiced * 20 < track.voiced.len(),
            "{voiced} noise frames voiced"
        );
    }

    #[test]
    fn runs_are_found() {
        let v = [false, true, true, false, true];
        assert_eq!(voiced_runs(&v), vec![1..3, 4..5]);
    }
}
