//! Utterance-level functionals "in the spirit of eGeMAPS" (Eyben et al. 2016).
//!
//! Every contour is first smoothed by a 3-frame moving average (eGeMAPS
//! `sma3`); voiced-only contours are smoothed and summarised over voiced frames
//! only (eGeMAPS `sma3nz`). Then, per contour, in this order:
//!
//! | stat | meaning |
//! |---|---|
//! | `mean` | arithmetic mean |
//! | `stddev` | population standard deviation |
//! | `p20`, `p50`, `p80` | percentiles, linear interpolation between ranks (numpy's default) |
//! | `range20_80` | `p80 − p20` |
//! | `stddev_norm` | `stddev / |mean|` (coefficient of variation; prosodic contours only) |
//! | `rising_slope_mean`, `rising_slope_stddev` | slopes of the rising lines between consecutive turning points, units per second (prosodic contours only) |
//! | `falling_slope_mean`, `falling_slope_stddev` | the same for falling lines, as magnitudes (prosodic contours only) |
//!
//! Turning points are the contour's ends plus every extremum from which it then
//! moves back by at least [`TURNING_POINT_REL`] (10 %) of its range — a
//! hysteresis that ignores small wiggles, like eGeMAPS' `Peaks2.relThresh`.
//!
//! Contours, in output order (name prefix → source):
//!
//! - `loudness` (prosodic) — [`crate::loudness`], all frames;
//! - `f0_semitone` (prosodic, voiced) — `12·log2(F0 / 27.5 Hz)` (eGeMAPS'
//!   `F0semitoneFrom27.5Hz`); slopes only within voiced runs;
//! - `energy_db`, `zcr`, `spectral_flux` — all frames;
//! - `hnr_db`, `alpha_ratio_db`, `hammarberg_index_db`, `slope_0_500`,
//!   `slope_500_1500` — voiced frames;
//! - `mfcc0` … `mfcc12` — all frames;
//! - `mfcc0_delta` … `mfcc12_delta`, `mfcc0_delta2` … `mfcc12_delta2` — all
//!   frames, `stddev` only (their means are ≈ 0 by construction).
//!
//! Then the scalars of [`SCALAR_NAMES`]: `jitter_local`, `shimmer_local_db`
//! ([`mod@crate::perturbation`]); `voiced_fraction`; `voiced_segments_per_sec`;
//! `voiced_segment_length_mean`/`_stddev` and `unvoiced_segment_length_mean`/
//! `_stddev` (seconds; unvoiced segments include leading and trailing ones,
//! as in eGeMAPS — trim silence first with [`crate::trim_silence`] if that is
//! unwanted); `loudness_peaks_per_sec` (maxima of the smoothed loudness that
//! stand out by [`TURNING_POINT_REL`] of its range);
//! `equivalent_sound_level_db` (`10·log10` of the mean frame power, eGeMAPS
//! `equivalentSoundLevel_dBp`).
//!
//! A statistic of an empty set (e.g. F0 of an utterance without voiced frames)
//! is 0, as in eGeMAPS; `voiced_fraction` tells a model when that happened.
//! Names are stable: [`functional_names`] is the contract of the feature store.

use std::sync::LazyLock;

use crate::error::Result;
use crate::frames::{Analyzer, FrameFeatures};
use crate::perturbation::{Perturbation, perturbation};
use crate::pitch::voiced_runs;
use crate::stft::frame;
use crate::waveform::mean_power;
use crate::{HOP_LENGTH, NUM_MFCC, SAMPLE_RATE};

/// Seconds per frame hop.
const FRAME_S: f32 = HOP_LENGTH as f32 / SAMPLE_RATE as f32;

/// Statistics of every contour.
const BASE_STATS: [&str; 6] = ["mean", "stddev", "p20", "p50", "p80", "range20_80"];
/// Extra statistics of the prosodic contours (loudness, F0).
const PROSODIC_STATS: [&str; 5] = [
    "stddev_norm",
    "rising_slope_mean",
    "rising_slope_stddev",
    "falling_slope_mean",
    "falling_slope_stddev",
];

/// Utterance-level scalars appended after the contour statistics, in order.
pub const SCALAR_NAMES: [&str; 10] = [
    "jitter_local",
    "shimmer_local_db",
    "voiced_fraction",
    "voiced_segments_per_sec",
    "voiced_segment_length_mean",
    "voiced_segment_length_stddev",
    "unvoiced_segment_length_mean",
    "unvoiced_segment_length_stddev",
    "loudness_peaks_per_sec",
    "equivalent_sound_level_db",
];

/// Which statistics a contour gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stats {
    /// [`BASE_STATS`] and [`PROSODIC_STATS`].
    Prosodic,
    /// [`BASE_STATS`].
    Base,
    /// `stddev` only.
    Spread,
}

/// Frames a contour is summarised over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frames {
    All,
    Voiced,
}

/// Where a summarised contour comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Loudness,
    F0Semitone,
    EnergyDb,
    Zcr,
    SpectralFlux,
    HnrDb,
    AlphaRatioDb,
    HammarbergIndexDb,
    Slope0To500,
    Slope500To1500,
    Mfcc(usize),
    MfccDelta(usize),
    MfccDelta2(usize),
}

impl Source {
    /// Every contour, in output order.
    fn all() -> Vec<Self> {
        let mut all = vec![
            Self::Loudness,
            Self::F0Semitone,
            Self::EnergyDb,
            Self::Zcr,
            Self::SpectralFlux,
            Self::HnrDb,
            Self::AlphaRatioDb,
            Self::HammarbergIndexDb,
            Self::Slope0To500,
            Self::Slope500To1500,
        ];
        all.extend((0..NUM_MFCC).map(Self::Mfcc));
        all.extend((0..NUM_MFCC).map(Self::MfccDelta));
        all.extend((0..NUM_MFCC).map(Self::MfccDelta2));
        all
    }

    fn name(self) -> String {
        match self {
            Self::Loudness => "loudness".into(),
            Self::F0Semitone => "f0_semitone".into(),
            Self::EnergyDb => "energy_db".into(),
            Self::Zcr => "zcr".into(),
            Self::SpectralFlux => "spectral_flux".into(),
            Self::HnrDb => "hnr_db".into(),
            Self::AlphaRatioDb => "alpha_ratio_db".into(),
            Self::HammarbergIndexDb => "hammarberg_index_db".into(),
            Self::Slope0To500 => "slope_0_500".into(),
            Self::Slope500To1500 => "slope_500_1500".into(),
            Self::Mfcc(i) => format!("mfcc{i}"),
            Self::MfccDelta(i) => format!("mfcc{i}_delta"),
            Self::MfccDelta2(i) => format!("mfcc{i}_delta2"),
        }
    }

    fn stats(self) -> Stats {
        match self {
            Self::Loudness | Self::F0Semitone => Stats::Prosodic,
            Self::MfccDelta(_) | Self::MfccDelta2(_) => Stats::Spread,
            _ => Stats::Base,
        }
    }

    fn frames(self) -> Frames {
        match self {
            Self::F0Semitone
            | Self::HnrDb
            | Self::AlphaRatioDb
            | Self::HammarbergIndexDb
            | Self::Slope0To500
            | Self::Slope500To1500 => Frames::Voiced,
            _ => Frames::All,
        }
    }

    /// The raw contour, `[num_frames]`.
    fn contour(self, ff: &FrameFeatures) -> Vec<f32> {
        let column = |m: &[f32], i: usize| -> Vec<f32> {
            (0..ff.num_frames).map(|t| m[t * NUM_MFCC + i]).collect()
        };
        match self {
            Self::Loudness => ff.loudness.clone(),
            Self::F0Semitone => ff
                .f0_hz
                .iter()
                .map(|&f| {
                    if f > 0.0 {
                        12.0 * (f / 27.5).log2()
                    } else {
                        0.0
                    }
                })
                .collect(),
            Self::EnergyDb => ff.energy_db.clone(),
            Self::Zcr => ff.zcr.clone(),
            Self::SpectralFlux => ff.spectral_flux.clone(),
            Self::HnrDb => ff.hnr_db.clone(),
            Self::AlphaRatioDb => ff.alpha_ratio_db.clone(),
            Self::HammarbergIndexDb => ff.hammarberg_index_db.clone(),
            Self::Slope0To500 => ff.slope_0_500.clone(),
            Self::Slope500To1500 => ff.slope_500_1500.clone(),
            Self::Mfcc(i) => column(&ff.mfcc, i),
            Self::MfccDelta(i) => column(&ff.mfcc_delta, i),
            Self::MfccDelta2(i) => column(&ff.mfcc_delta2, i),
        }
    }
}

fn stat_names(stats: Stats) -> Vec<&'static str> {
    match stats {
        Stats::Prosodic => BASE_STATS.iter().chain(&PROSODIC_STATS).copied().collect(),
        Stats::Base => BASE_STATS.to_vec(),
        Stats::Spread => vec!["stddev"],
    }
}

static OWNED_NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut names = Vec::new();
    for source in Source::all() {
        let contour = source.name();
        for stat in stat_names(source.stats()) {
            names.push(format!("{contour}_{stat}"));
        }
    }
    names.extend(SCALAR_NAMES.iter().map(|s| s.to_string()));
    names
});

static NAMES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| OWNED_NAMES.iter().map(String::as_str).collect());

/// The names of [`Functionals::values`], in order (stable; see the module doc).
pub fn functional_names() -> &'static [&'static str] {
    &NAMES
}

/// A named utterance-level feature vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Functionals {
    /// Feature names ([`functional_names`]).
    pub names: &'static [&'static str],
    /// Values, aligned with `names`; all finite.
    pub values: Vec<f32>,
}

impl Functionals {
    /// The value of feature `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<f32> {
        self.names
            .iter()
            .position(|n| *n == name)
            .map(|i| self.values[i])
    }

    /// `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f32)> + '_ {
        self.names.iter().copied().zip(self.values.iter().copied())
    }
}

impl Analyzer {
    /// Utterance functionals of 16 kHz mono `samples` (see the module doc).
    ///
    /// # Errors
    /// [`crate::Error::Empty`], [`crate::Error::NonFinite`].
    pub fn functionals(&self, samples: &[f32]) -> Result<Functionals> {
        let ff = self.frames(samples)?;
        Ok(summarise(samples, &ff))
    }
}

/// [`Analyzer::functionals`] with a fresh analyzer (build one [`Analyzer`] to
/// process many clips).
///
/// # Errors
/// [`crate::Error::Empty`], [`crate::Error::NonFinite`].
pub fn functionals(samples_16k: &[f32]) -> Result<Functionals> {
    Analyzer::new().functionals(samples_16k)
}

/// Functionals of already-computed frame features of `samples`.
pub fn summarise(samples: &[f32], ff: &FrameFeatures) -> Functionals {
    let n = ff.num_frames;
    let mut values = Vec::with_capacity(functional_names().len());
    for source in Source::all() {
        let raw = source.contour(ff);
        let stats = source.stats();
        let segments: Vec<std::ops::Range<usize>> = match source.frames() {
            Frames::All => std::iter::once(0..n).collect(),
            Frames::Voiced => voiced_runs(&ff.voiced),
        };
        let smoothed: Vec<Vec<f32>> = segments.iter().map(|r| sma3(&raw[r.clone()])).collect();
        let pooled: Vec<f32> = smoothed.iter().flatten().copied().collect();
        let (mean, stddev) = mean_std(&pooled);
        match stats {
            Stats::Spread => values.push(stddev),
            Stats::Base | Stats::Prosodic => {
                let mut sorted = pooled.clone();
                sorted.sort_by(f32::total_cmp);
                let (p20, p50, p80) = (
                    percentile(&sorted, 20.0),
                    percentile(&sorted, 50.0),
                    percentile(&sorted, 80.0),
                );
                values.extend([mean, stddev, p20, p50, p80, p80 - p20]);
                if stats == Stats::Prosodic {
                    let norm = if mean.abs() > 1e-12 {
                        stddev / mean.abs()
                    } else {
                        0.0
                    };
                    let (rising, falling) = slopes(&smoothed);
                    let (rm, rs) = mean_std(&rising);
                    let (fm, fs) = mean_std(&falling);
                    values.extend([norm, rm, rs, fm, fs]);
                }
            }
        }
    }
    values.extend(scalars(samples, ff));
    debug_assert_eq!(values.len(), functional_names().len());
    Functionals {
        names: functional_names(),
        values: values
            .into_iter()
            .map(|v| if v.is_finite() { v } else { 0.0 })
            .collect(),
    }
}

fn scalars(samples: &[f32], ff: &FrameFeatures) -> [f32; SCALAR_NAMES.len()] {
    let Perturbation {
        jitter_local,
        shimmer_local_db,
        ..
    } = perturbation(samples, &ff.f0_hz);
    let n = ff.num_frames;
    let duration_s = (samples.len() as f32 / SAMPLE_RATE as f32).max(FRAME_S);
    let runs = voiced_runs(&ff.voiced);
    let voiced_frames: usize = runs.iter().map(|r| r.len()).sum();
    let voiced_len: Vec<f32> = runs.iter().map(|r| r.len() as f32 * FRAME_S).collect();
    let unvoiced: Vec<bool> = ff.voiced.iter().map(|v| !v).collect();
    let pauses: Vec<f32> = voiced_runs(&unvoiced)
        .iter()
        .map(|r| r.len() as f32 * FRAME_S)
        .collect();
    let (vl_mean, vl_std) = mean_std(&voiced_len);
    let (ul_mean, ul_std) = mean_std(&pauses);
    let loud = sma3(&ff.loudness);
    let peaks = peak_count(&loud);
    let mean_frame_power =
        (0..n).map(|t| mean_power(&frame(samples, t))).sum::<f64>() / n.max(1) as f64;
    [
        jitter_local,
        shimmer_local_db,
        voiced_frames as f32 / n.max(1) as f32,
        runs.len() as f32 / duration_s,
        vl_mean,
        vl_std,
        ul_mean,
        ul_std,
        peaks as f32 / duration_s,
        (10.0 * (mean_frame_power + 1e-10).log10()) as f32,
    ]
}

/// 3-frame centred moving average; the two ends average what exists.
fn sma3(x: &[f32]) -> Vec<f32> {
    (0..x.len())
        .map(|t| {
            let lo = t.saturating_sub(1);
            let hi = (t + 2).min(x.len());
            x[lo..hi].iter().sum::<f32>() / (hi - lo) as f32
        })
        .collect()
}

/// Mean and population standard deviation (0, 0 for an empty set).
fn mean_std(x: &[f32]) -> (f32, f32) {
    if x.is_empty() {
        return (0.0, 0.0);
    }
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean as f32, var.sqrt() as f32)
}

/// Percentile `q` (0–100) of sorted data, linear interpolation (0 when empty).
fn percentile(sorted: &[f32], q: f32) -> f32 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        len => {
            let pos = q / 100.0 * (len - 1) as f32;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(len - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f32)
        }
    }
}

/// Relative hysteresis of turning points: a rise or fall counts once it
/// exceeds this fraction of the contour's range (eGeMAPS `Peaks2.relThresh`).
pub const TURNING_POINT_REL: f32 = 0.1;

/// Turning points of `x` with hysteresis `theta`: index 0, every confirmed
/// local extremum (the contour moved back from it by at least `theta`), and the
/// last index. Returns `(index, is_maximum)`; the end points are not extrema.
fn turning_points(x: &[f32], theta: f32) -> Vec<(usize, Option<bool>)> {
    let mut points = vec![(0, None)];
    if x.len() < 2 {
        return points;
    }
    let mut dir = 0i8;
    let mut ext = 0usize;
    for t in 1..x.len() {
        match dir {
            0 => {
                if x[t] - x[0] >= theta {
                    dir = 1;
                    ext = t;
                } else if x[0] - x[t] >= theta {
                    dir = -1;
                    ext = t;
                }
            }
            1 => {
                if x[t] >= x[ext] {
                    ext = t;
                } else if x[ext] - x[t] >= theta {
                    points.push((ext, Some(true)));
                    dir = -1;
                    ext = t;
                }
            }
            _ => {
                if x[t] <= x[ext] {
                    ext = t;
                } else if x[t] - x[ext] >= theta {
                    points.push((ext, Some(false)));
                    dir = 1;
                    ext = t;
                }
            }
        }
    }
    if dir != 0 && ext != x.len() - 1 {
        points.push((ext, None));
    }
    points.push((x.len() - 1, None));
    points
}

/// Hysteresis threshold of a set of segments: [`TURNING_POINT_REL`] × range.
fn hysteresis(segments: &[Vec<f32>]) -> f32 {
    let (lo, hi) = segments
        .iter()
        .flatten()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if hi > lo {
        TURNING_POINT_REL * (hi - lo)
    } else {
        f32::INFINITY
    }
}

/// Rising and falling slopes (units per second, falling as magnitudes)
/// between consecutive turning points of each segment.
fn slopes(segments: &[Vec<f32>]) -> (Vec<f32>, Vec<f32>) {
    let theta = hysteresis(segments);
    let (mut rising, mut falling) = (Vec::new(), Vec::new());
    for x in segments {
        let points = turning_points(x, theta);
        for w in points.windows(2) {
            let (a, b) = (w[0].0, w[1].0);
            if b <= a {
                continue;
            }
            let slope = (x[b] - x[a]) / ((b - a) as f32 * FRAME_S);
            if slope > 0.0 {
                rising.push(slope);
            } else if slope < 0.0 {
                falling.push(-slope);
            }
        }
    }
    (rising, falling)
}

/// Number of confirmed maxima (see [`turning_points`]) of one contour.
fn peak_count(x: &[f32]) -> usize {
    let theta = hysteresis(&[x.to_vec()]);
    turning_points(x, theta)
        .iter()
        .filter(|(_, kind)| *kind == Some(true))
        .count()
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
    fn names_are_unique_and_aligned() {
        let names = functional_names();
        let mut sorted = names.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate names");
        // 2 prosodic × 11 + 8 × 6 + 13 MFCC × 6 + 26 delta stddevs + 10 scalars.
        assert_eq!(names.len(), 184);
        let f = functionals(&sine(200.0, 0.3, 32_000)).expect("functionals");
        assert_eq!(f.values.len(), names.len());
        assert!(f.values.iter().all(|v| v.is_finite()));
        // The layout documented in the module doc.
        assert_eq!(names[0], "loudness_mean");
        assert_eq!(names[11], "f0_semitone_mean");
        assert!(names.contains(&"mfcc12_range20_80"));
        assert!(names.contains(&"mfcc4_delta2_stddev"));
        assert_eq!(names[names.len() - 1], "equivalent_sound_level_db");
    }

    #[test]
    fn sine_200hz_functionals() {
        let f = functionals(&sine(200.0, 0.3, 32_000)).expect("functionals");
        let st = 12.0 * (200.0f32 / 27.5).log2();
        let get = |n: &str| f.get(n).unwrap_or_else(|| panic!("no {n}"));
        assert!(
            (get("f0_semitone_mean") - st).abs() < 0.1,
            "{}",
            get("f0_semitone_mean")
        );
        assert!(get("f0_semitone_range20_80") < 0.1);
        assert!(get("voiced_fraction") > 0.95);
        assert!((get("voiced_segments_per_sec") - 0.5).abs() < 1e-6);
        assert!(get("jitter_local") < 0.005, "{}", get("jitter_local"));
        assert!(get("shimmer_local_db") < 0.1, "{}", get("shimmer_local_db"));
        assert!(get("hnr_db_mean") > 20.0);
        assert!((get("equivalent_sound_level_db") + 13.47).abs() < 0.2);
    }

    #[test]
    fn silence_functionals() {
        let f = functionals(&vec![0.0; 16_000]).expect("functionals");
        let get = |n: &str| f.get(n).unwrap_or_else(|| panic!("no {n}"));
        assert_eq!(get("voiced_fraction"), 0.0);
        assert_eq!(get("f0_semitone_mean"), 0.0);
        assert!(get("equivalent_sound_level_db") <= -99.0);
        assert!(get("loudness_mean") < 1e-2);
    }

    #[test]
    fn empty_and_nan_are_errors() {
        assert!(matches!(functionals(&[]), Err(crate::Error::Empty)));
        assert!(matches!(
            functionals(&[0.0, f32::NAN]),
            Err(crate::Error::NonFinite { index: 1 })
        ));
    }

    #[test]
    fn percentiles_match_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(percentile(&s, 50.0), 3.0);
        assert!((percentile(&s, 20.0) - 1.8).abs() < 1e-6);
        assert!((percentile(&s, 80.0) - 5.2).abs() < 1e-6);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn slopes_of_a_triangle() {
        // Up 1 per frame for 5 frames, down 2 per frame for 2 frames.
        let x = vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 3.0, 1.0];
        let (r, f) = slopes(&[x]);
        assert_eq!(r.len(), 1);
        assert_eq!(f.len(), 1);
        assert!((r[0] - 100.0).abs() < 1e-3, "{r:?}");
        assert!((f[0] - 200.0).abs() < 1e-3, "{f:?}");
    }

    #[test]
    fn small_wiggles_are_not_turning_points() {
        // Range 10 → threshold 1: the 0.2 dips are ignored, the 3-unit fall counts.
        let x = vec![0.0, 2.0, 1.8, 4.0, 3.8, 10.0, 7.0, 8.0, 9.5];
        let points = turning_points(&x, hysteresis(std::slice::from_ref(&x)));
        let maxima: Vec<usize> = points
            .iter()
            .filter(|p| p.1 == Some(true))
            .map(|p| p.0)
            .collect();
        let minima: Vec<usize> = points
            .iter()
            .filter(|p| p.1 == Some(false))
            .map(|p| p.0)
            .collect();
        assert_eq!(maxima, vec![5]);
        assert_eq!(minima, vec![6]);
        assert_eq!(peak_count(&x), 1);
    }
}
