//! Who speaks: a voice print per turn, speaker clustering across the turns
//! of one recording, and the accuracy of a speaker labelling.
//!
//! The recording is already cut into turns (time ranges); this module labels
//! each turn with a speaker id. Three steps:
//!
//! 1. **Voice print** ([`voice_print`], [`Analyzer::voice_print`],
//!    [`voice_print_of_frames`]): a fixed-length vector of
//!    [`VOICE_PRINT_DIM`] voice statistics over the *voiced* frames of a turn
//!    (frames where the [`crate::pitch`] tracker found an F0; they are active
//!    by construction, as it gives no candidates below
//!    [`crate::pitch::SILENCE_RMS`]). Voiced frames are where the vocal tract
//!    and the voice source show; silence, breath and fricatives say little
//!    about who speaks. Dimensions, in order ([`VOICE_PRINT_NAMES`]):
//!
//!    | dims | name | meaning |
//!    |---|---|---|
//!    | 0–11 | `mfcc1_mean` … `mfcc12_mean` | mean of MFCC `c1..c12` (timbre: the long-term spectral envelope, i.e. the vocal tract) |
//!    | 12–23 | `mfcc1_stddev` … `mfcc12_stddev` | their population standard deviations |
//!    | 24 | `f0_semitone_median` | median F0, semitones above 27.5 Hz (register) |
//!    | 25 | `f0_semitone_iqr` | F0 interquartile range `p75 − p25`, semitones (pitch spread) |
//!    | 26 | `alpha_ratio_db_mean` | mean alpha ratio, dB ([`crate::spectral`]) |
//!    | 27 | `hammarberg_index_db_mean` | mean Hammarberg index, dB |
//!    | 28 | `slope_0_500_mean` | mean spectral slope 0–500 Hz, dB/Hz |
//!    | 29 | `slope_500_1500_mean` | mean spectral slope 500–1500 Hz, dB/Hz |
//!    | 30 | `hnr_db_mean` | mean harmonics-to-noise ratio, dB (breathiness) |
//!
//!    `c0` (the log-energy coefficient) and loudness are left out so that how
//!    loud a turn was — microphone distance, shouting — does not decide who
//!    spoke it; every kept dimension is invariant to the input gain (MFCC
//!    `c1..` because a gain is a constant added to every log band, which the
//!    DCT puts in `c0` only; the spectral measures are ratios or slopes of
//!    dB). A turn with fewer than [`MIN_PRINT_VOICED_FRAMES`] voiced frames (0.3 s)
//!    has no print: a few frames give a mean dominated by the one or two
//!    phones that happen to be voiced.
//!
//! 2. **Clustering** ([`cluster_speakers`], [`assign_speakers`]): each
//!    dimension is standardised (z-score across the turns of the recording),
//!    the turns are clustered agglomeratively with average linkage (UPGMA)
//!    under the cosine distance, and the dendrogram is cut at the given number
//!    of speakers or at the number the silhouette chooses
//!    ([`SpeakerCount::Estimate`]). Ids are 0-based in order of first
//!    appearance: the first turn is speaker 0.
//!
//!    *Why cosine:* after z-scoring, a turn's print is its deviation from the
//!    recording's average voice; in a two-speaker recording the two voices
//!    deviate in roughly opposite directions, and cosine compares those
//!    directions whatever their length. Euclidean distance also weighs how
//!    *far* a turn deviates, which emotion changes a lot (an angry turn lies
//!    far from every other turn, its speaker's included), and average linkage
//!    then tends to cut such outliers off as clusters of their own. Cosine
//!    is also the usual scoring of speaker embeddings (i-vectors, x-vectors).
//!    Measured once while writing this, on the 45 EmoDB speaker pairs of
//!    `tests/speakers_emodb.rs` (all emotions, 2 speakers given): accuracy
//!    0.62 with cosine against 0.59 with Euclidean distance, whose 2-cuts
//!    were often one outlier turn against the rest.
//!
//!    *Estimating the count* takes two tests. The silhouette (Rousseeuw,
//!    "Silhouettes: a graphical aid to the interpretation and validation of
//!    cluster analysis", J. Comput. Appl. Math. 20, 1987) of each cut
//!    `k = 2..=max` is measured with the same cosine distance, and the best
//!    `k` is kept only if its silhouette (a) exceeds [`MIN_SILHOUETTE`] and
//!    (b) is at least the median best silhouette of [`NULL_DRAWS`] simulated
//!    one-speaker recordings: Gaussian clouds with the data's own covariance,
//!    z-scored and clustered the same way (the null model of SigClust — Liu,
//!    Hayes, Nobel & Marron, "Statistical significance of clustering for
//!    high-dimension, low-sample size data", JASA 103, 2008 — used here as a
//!    reference level, not as a significance test). Otherwise the recording
//!    has one speaker.
//!
//!    *Why (b):* the silhouette alone cannot say "one". Z-scoring stretches
//!    whatever a single voice varies in to unit spread, and a few turns in
//!    31 dimensions always admit a split: the best cut of 10 turns of one
//!    synthetic voice (varying pitch level, intonation, vowels, effort)
//!    scores 0.25–0.41, above any fixed floor that still lets real pairs of
//!    voices through. What marks two voices is a split *sharper than a
//!    single cloud of the same spread gives*. The median is a deliberately
//!    lenient reference: a single voice that really were a Gaussian cloud
//!    would be split half the time, yet measured single voices fall below it
//!    (12 of 12 synthetic ones — seeds 11–16 of the unit tests' generator —
//!    and 10 of 10 EmoDB speakers' neutral turns), while a 5 % test (the
//!    95th percentile as reference) found the second voice in only 14 of 45
//!    neutral EmoDB pairs, against 35 with the median. The price is
//!    [`NULL_DRAWS`] extra clusterings per estimate, `O(NULL_DRAWS · n² ·
//!    dim)` for `n` turns.
//!
//! 3. **Accuracy** ([`speaker_accuracy`]): the fraction of turns labelled
//!    correctly under the best one-to-one mapping between predicted and true
//!    ids (the Hungarian algorithm — Kuhn, "The Hungarian method for the
//!    assignment problem", Naval Research Logistics Quarterly 2, 1955 — on
//!    the confusion counts). Speaker ids are arbitrary names, so only the
//!    partition is scored.
//!
//! Turns without a print (too little voiced speech) get no speaker:
//! [`assign_speakers`] takes `Option<VoicePrint>`s and returns
//! `Option<usize>`s, clustering only the turns that have a print.
//!
//! This is plain statistics of hand-made features, not a trained speaker
//! embedding. When the speakers keep one speaking style it separates them
//! well; across strongly acted emotions it does not: on EmoDB, a turn's
//! emotion moves these statistics more than its speaker does (spectral tilt,
//! F0 level and spread are arousal cues), so the clustering often splits
//! aroused from calm turns instead of one voice from the other
//! (`tests/speakers_emodb.rs` measures both cases).

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::frames::{Analyzer, FrameFeatures};
use crate::{HOP_LENGTH, NUM_MFCC, SAMPLE_RATE};

/// Fewest voiced frames a turn needs for a voice print: 30 frames of 10 ms,
/// 0.3 s of voiced speech (a few syllables).
pub const MIN_PRINT_VOICED_FRAMES: usize = 30;

/// Cepstra in a voice print: `c1..c12` (all of [`NUM_MFCC`] but `c0`).
pub const NUM_PRINT_MFCC: usize = NUM_MFCC - 1;

/// Length of a [`VoicePrint`].
pub const VOICE_PRINT_DIM: usize = 2 * NUM_PRINT_MFCC + 7;

/// Names of the voice-print dimensions, in order (see the module doc).
pub const VOICE_PRINT_NAMES: [&str; VOICE_PRINT_DIM] = [
    "mfcc1_mean",
    "mfcc2_mean",
    "mfcc3_mean",
    "mfcc4_mean",
    "mfcc5_mean",
    "mfcc6_mean",
    "mfcc7_mean",
    "mfcc8_mean",
    "mfcc9_mean",
    "mfcc10_mean",
    "mfcc11_mean",
    "mfcc12_mean",
    "mfcc1_stddev",
    "mfcc2_stddev",
    "mfcc3_stddev",
    "mfcc4_stddev",
    "mfcc5_stddev",
    "mfcc6_stddev",
    "mfcc7_stddev",
    "mfcc8_stddev",
    "mfcc9_stddev",
    "mfcc10_stddev",
    "mfcc11_stddev",
    "mfcc12_stddev",
    "f0_semitone_median",
    "f0_semitone_iqr",
    "alpha_ratio_db_mean",
    "hammarberg_index_db_mean",
    "slope_0_500_mean",
    "slope_500_1500_mean",
    "hnr_db_mean",
];

/// Silhouette a split into several speakers must exceed for
/// [`SpeakerCount::Estimate`] to believe it; at or below it the recording has
/// one speaker.
///
/// Kaufman & Rousseeuw's reading of the average silhouette ("Finding Groups
/// in Data", Wiley 1990, ch. 2): 0.25 or less means "no substantial structure
/// has been found". For scale: the best cut (k = 2..=4) of 20 z-scored
/// isotropic Gaussian prints of 31 dimensions scores 0.10–0.14 (5th–95th
/// percentile). The floor alone does not make the estimate (see the module
/// doc).
pub const MIN_SILHOUETTE: f64 = 0.25;

/// Simulated one-speaker recordings per estimate, whose median best
/// silhouette a split must reach (see the module doc).
pub const NULL_DRAWS: usize = 40;

/// Seed of the null draws (any fixed value; estimation is deterministic).
const NULL_SEED: u64 = 0x5EA7_5EED;

/// Voice statistics of one turn ([`VOICE_PRINT_NAMES`] says what each
/// dimension is).
///
/// # Shapes
/// `values`: `[VOICE_PRINT_DIM]`, all finite.
#[derive(Debug, Clone, PartialEq)]
pub struct VoicePrint {
    values: [f32; VOICE_PRINT_DIM],
    voiced_frames: usize,
}

impl VoicePrint {
    /// The statistics, aligned with [`VOICE_PRINT_NAMES`].
    pub fn values(&self) -> &[f32; VOICE_PRINT_DIM] {
        &self.values
    }

    /// Number of voiced 10 ms frames the print summarises.
    pub fn voiced_frames(&self) -> usize {
        self.voiced_frames
    }

    /// Seconds of voiced speech the print summarises.
    pub fn voiced_seconds(&self) -> f32 {
        self.voiced_frames as f32 * HOP_LENGTH as f32 / SAMPLE_RATE as f32
    }

    /// The value of dimension `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<f32> {
        VOICE_PRINT_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.values[i])
    }
}

impl AsRef<[f32]> for VoicePrint {
    fn as_ref(&self) -> &[f32] {
        &self.values
    }
}

impl Analyzer {
    /// Voice print of one turn of 16 kHz mono `samples`, or `None` when it
    /// has fewer than [`MIN_PRINT_VOICED_FRAMES`] voiced frames (an empty turn
    /// included).
    ///
    /// # Errors
    /// [`Error::NonFinite`] when a sample is NaN or infinite.
    pub fn voice_print(&self, samples: &[f32]) -> Result<Option<VoicePrint>> {
        if samples.is_empty() {
            return Ok(None);
        }
        let ff = self.frames(samples)?;
        Ok(voice_print_of_frames(&ff))
    }
}

/// [`Analyzer::voice_print`] with a fresh analyzer (build one [`Analyzer`] to
/// process many turns).
///
/// # Errors
/// [`Error::NonFinite`] when a sample is NaN or infinite.
pub fn voice_print(samples_16k: &[f32]) -> Result<Option<VoicePrint>> {
    Analyzer::new().voice_print(samples_16k)
}

/// Voice print of already-computed frame features, or `None` when fewer than
/// [`MIN_PRINT_VOICED_FRAMES`] frames are voiced.
///
/// # Panics
/// When `ff` was not made by [`Analyzer::frames`] and a contour is shorter
/// than `ff.num_frames` (as [`crate::summarise`] does).
pub fn voice_print_of_frames(ff: &FrameFeatures) -> Option<VoicePrint> {
    let voiced: Vec<usize> = (0..ff.num_frames)
        .filter(|&t| ff.voiced[t] && ff.f0_hz[t] > 0.0)
        .collect();
    if voiced.len() < MIN_PRINT_VOICED_FRAMES {
        return None;
    }
    let pick =
        |contour: &[f32]| -> Vec<f64> { voiced.iter().map(|&t| f64::from(contour[t])).collect() };
    let mut values = [0.0f32; VOICE_PRINT_DIM];
    for c in 1..NUM_MFCC {
        let column: Vec<f64> = voiced
            .iter()
            .map(|&t| f64::from(ff.mfcc[t * NUM_MFCC + c]))
            .collect();
        let (mean, std) = mean_std(&column);
        values[c - 1] = mean as f32;
        values[NUM_PRINT_MFCC + c - 1] = std as f32;
    }
    let mut semitones: Vec<f64> = voiced
        .iter()
        .map(|&t| 12.0 * (f64::from(ff.f0_hz[t]) / 27.5).log2())
        .collect();
    semitones.sort_by(f64::total_cmp);
    let base = 2 * NUM_PRINT_MFCC;
    values[base] = quantile(&semitones, 0.5) as f32;
    values[base + 1] = (quantile(&semitones, 0.75) - quantile(&semitones, 0.25)) as f32;
    for (k, contour) in [
        &ff.alpha_ratio_db,
        &ff.hammarberg_index_db,
        &ff.slope_0_500,
        &ff.slope_500_1500,
        &ff.hnr_db,
    ]
    .into_iter()
    .enumerate()
    {
        values[base + 2 + k] = mean_std(&pick(contour)).0 as f32;
    }
    // Frame features are finite for finite audio (the analyser floors its
    // logarithms), so a non-finite value here is a bug, not bad input.
    debug_assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
    Some(VoicePrint {
        values,
        voiced_frames: voiced.len(),
    })
}

/// Population mean and standard deviation (0, 0 for no values).
fn mean_std(x: &[f64]) -> (f64, f64) {
    if x.is_empty() {
        return (0.0, 0.0);
    }
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Quantile `q` of ascending `sorted` values, linear interpolation between
/// ranks (numpy's default); `sorted` must not be empty.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

/// How many speakers to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeakerCount {
    /// Exactly this many (the user knows). More speakers than turns gives
    /// every turn its own speaker.
    Given(usize),
    /// Between 1 and `max`, chosen by the silhouette against simulated
    /// single voices (see the module doc).
    Estimate {
        /// Most speakers to consider.
        max: usize,
    },
}

/// Speaker id of every turn, clustering voice prints (or any fixed-length
/// feature vectors) of the turns of one recording.
///
/// Standardises each dimension across the turns (a dimension that is
/// constant across them is ignored), clusters with average linkage under the
/// cosine distance and cuts the dendrogram at `count` speakers (see the
/// module doc). Ids are 0-based in order of first appearance (the first turn
/// is speaker 0). Deterministic: ties are broken by turn order.
///
/// Edge cases: no turns give no ids; one turn is speaker 0.
/// [`SpeakerCount::Given`]`(n)` with `n` above the number of turns gives
/// every turn its own speaker (the count is clamped). Estimation never
/// returns more than `turns − 1` speakers (the silhouette is undefined for
/// all-singleton clusters), so it needs at least 3 turns to find 2 speakers.
///
/// # Shapes
/// `prints`: `[turns][dim]`; returns `[turns]`.
///
/// # Errors
/// [`Error::ZeroSpeakers`] for `Given(0)` or `Estimate { max: 0 }`;
/// [`Error::VoicePrintLength`] when the prints differ in length;
/// [`Error::NonFiniteVoicePrint`] for a NaN or infinite value.
pub fn cluster_speakers<P: AsRef<[f32]>>(prints: &[P], count: SpeakerCount) -> Result<Vec<usize>> {
    match count {
        SpeakerCount::Given(k) => {
            if k == 0 {
                return Err(Error::ZeroSpeakers);
            }
            let z = standardise(prints)?;
            let Some(tree) = Dendrogram::build(cosine_distances(&z), z.len(), k) else {
                return Ok(Vec::new());
            };
            Ok(tree.cut(k.min(tree.n)).to_vec())
        }
        SpeakerCount::Estimate { max } => Ok(estimate_speakers(prints, max)?.ids),
    }
}

/// The outcome of estimating the number of speakers, with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerEstimate {
    /// Speaker id of every turn, as [`cluster_speakers`] returns them.
    pub ids: Vec<usize>,
    /// Number of speakers found (`max id + 1`; 0 for no turns).
    pub num_speakers: usize,
    /// `(k, mean silhouette)` of the cut into `k` speakers for every
    /// candidate `k = 2..=min(max, turns − 1)`; empty when there is none.
    pub silhouettes: Vec<(usize, f64)>,
    /// Median best silhouette of [`NULL_DRAWS`] simulated one-speaker
    /// recordings with the data's spread (see the module doc): what the best
    /// silhouette must exceed. `None` when there was no candidate split.
    pub null_median: Option<f64>,
}

impl SpeakerEstimate {
    /// The best candidate `(k, silhouette)`, ties to the smaller `k`.
    pub fn best(&self) -> Option<(usize, f64)> {
        best_of(&self.silhouettes)
    }
}

/// [`cluster_speakers`] with [`SpeakerCount::Estimate`]`{ max }`, returning
/// the evidence beside the ids.
///
/// # Shapes
/// `prints`: `[turns][dim]`; `ids`: `[turns]`.
///
/// # Errors
/// As [`cluster_speakers`].
pub fn estimate_speakers<P: AsRef<[f32]>>(prints: &[P], max: usize) -> Result<SpeakerEstimate> {
    if max == 0 {
        return Err(Error::ZeroSpeakers);
    }
    let z = standardise(prints)?;
    Ok(estimate_from(cosine_distances(&z), z.len(), max, |rng| {
        cosine_distances(&standardise_rows(gaussian_like(&z, rng)))
    }))
}

/// The estimate of [`estimate_speakers`] for `n` turns at distances `dist`
/// (`[n, n]`); `null_distances` draws the distances of one simulated
/// one-speaker recording of the same turns.
fn estimate_from(
    dist: Vec<f64>,
    n: usize,
    max: usize,
    mut null_distances: impl FnMut(&mut SplitMix64) -> Vec<f64>,
) -> SpeakerEstimate {
    let Some(tree) = Dendrogram::build(dist, n, max) else {
        return SpeakerEstimate {
            ids: Vec::new(),
            num_speakers: 0,
            silhouettes: Vec::new(),
            null_median: None,
        };
    };
    let silhouettes = tree.silhouettes(max);
    let best = best_of(&silhouettes);
    // What one voice with this spread reaches: the median best silhouette
    // of Gaussian recordings with the data's covariance.
    let null_median = best.map(|_| {
        let mut rng = SplitMix64(NULL_SEED);
        let mut null: Vec<f64> = (0..NULL_DRAWS)
            .map(|_| {
                Dendrogram::build(null_distances(&mut rng), n, max)
                    .and_then(|t| best_of(&t.silhouettes(max)))
                    .map_or(0.0, |(_, s)| s)
            })
            .collect();
        null.sort_by(f64::total_cmp);
        quantile(&null, 0.5)
    });
    // `>=`: a tie happens only when the prints vary along one direction,
    // where cosine makes every split perfect (1.0) — two distinct prints
    // repeated, which is two speakers.
    let k = match (best, null_median) {
        (Some((k, s)), Some(m)) if s > MIN_SILHOUETTE && s >= m => k,
        _ => 1,
    };
    SpeakerEstimate {
        ids: tree.cut(k).to_vec(),
        num_speakers: k,
        silhouettes,
        null_median,
    }
}

/// The best `(k, silhouette)`, ties to the smaller `k`.
fn best_of(silhouettes: &[(usize, f64)]) -> Option<(usize, f64)> {
    silhouettes
        .iter()
        .copied()
        .fold(None, |best, (k, s)| match best {
            Some((_, b)) if b >= s => best,
            _ => Some((k, s)),
        })
}

/// `n` draws from the zero-mean Gaussian whose covariance is the sample
/// covariance of the rows of `z` (`(1/n) Σ z_i z_iᵀ`, `z` centred): each draw
/// is `Σ_i g_i z_i / √n` with `g_i ~ N(0, 1)`, which needs no
/// eigendecomposition and keeps the data's rank.
///
/// # Shapes
/// `z`: `[n][dim]` → `[n][dim]`.
fn gaussian_like(z: &[Vec<f64>], rng: &mut SplitMix64) -> Vec<Vec<f64>> {
    let n = z.len();
    let dim = z.first().map_or(0, Vec::len);
    let scale = 1.0 / (n as f64).sqrt();
    (0..n)
        .map(|_| {
            let mut row = vec![0.0; dim];
            for zi in z {
                let g = rng.normal() * scale;
                for (r, v) in row.iter_mut().zip(zi) {
                    *r += g * v;
                }
            }
            row
        })
        .collect()
}

/// SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014): the null draws' seeded source, so estimation
/// stays deterministic without a dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller, one of the pair).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Average-linkage dendrogram of the turns, with its cuts.
struct Dendrogram {
    /// Number of turns (≥ 1).
    n: usize,
    /// Distances between the turns, `[n, n]`.
    dist: Vec<f64>,
    /// `cuts[k − 1]`: ids of the cut into `k` clusters, in order of first
    /// appearance, for `k = 1..=min(max_k, n)`.
    cuts: Vec<Vec<usize>>,
}

impl Dendrogram {
    /// The dendrogram of `n` turns at distances `dist` (`[n, n]`); `None`
    /// for no turns.
    fn build(dist: Vec<f64>, n: usize, max_k: usize) -> Option<Self> {
        if n == 0 {
            return None;
        }
        let cuts = cuts(&average_linkage(&dist, n), n, max_k.min(n));
        Some(Self { n, dist, cuts })
    }

    /// Ids of the cut into `k` clusters (`1 ≤ k ≤ min(max_k, n)`).
    fn cut(&self, k: usize) -> &[usize] {
        &self.cuts[k - 1]
    }

    /// `(k, mean silhouette)` for `k = 2..=min(max, n − 1)`.
    fn silhouettes(&self, max: usize) -> Vec<(usize, f64)> {
        (2..=max.min(self.n - 1))
            .map(|k| (k, silhouette(&self.dist, self.n, self.cut(k), k)))
            .collect()
    }
}

/// Speaker id of every turn that has a voice print; turns without one
/// (`None`, too little voiced speech) get no speaker and do not take part in
/// the clustering.
///
/// # Errors
/// Those of [`cluster_speakers`] ([`Error::ZeroSpeakers`] only, as voice
/// prints are well-formed).
pub fn assign_speakers(
    prints: &[Option<VoicePrint>],
    count: SpeakerCount,
) -> Result<Vec<Option<usize>>> {
    assign_speakers_with_faces::<[f32; 0]>(prints, &vec![None; prints.len()], 0.0, count)
}

/// Weight of the face cue against the voice in
/// [`assign_speakers_with_faces`] (`mmer analyze`'s default): equal.
pub const DEFAULT_FACE_WEIGHT: f64 = 1.0;

/// Speaker id of every turn from its voice print and, where a face was seen
/// during the turn, its face print (any fixed-length vectors of
/// non-negative values compared by cosine, e.g. `mmer_vision::face_print`).
/// A turn with neither gets no speaker; a turn with only a face gets one.
///
/// The distance between two turns is the weighted mean of the cues both
/// have: the voice's cosine distance after z-scoring the voice prints across
/// the turns that have one (as [`cluster_speakers`]), weight 1, and the
/// cosine distance of the raw face prints, weight `face_weight`. Two turns
/// that share no cue are at distance 1 (orthogonal: no evidence either way).
/// Clustering and the cut are those of [`cluster_speakers`]. Face prints are
/// not z-scored: the camera often shows one person throughout (the speaker
/// or a listener), and z-scoring would blow that person's small
/// frame-to-frame changes up into apparent identities; raw, one face seen in
/// every turn only pulls all distances towards that face's small spread,
/// which hardly moves the voice's ordering. A face therefore binds the turns
/// it is seen in, and does not by itself split them.
///
/// When the count is estimated, the simulated one-speaker recordings draw
/// new voice prints (as [`estimate_speakers`]) and give every face pair the
/// median face distance of the recording: one voice, faces that say nothing.
///
/// `face_weight` 0 (or no faces) gives exactly [`assign_speakers`].
///
/// # Shapes
/// `voices`, `faces`: `[turns]`, each face `[dim]`; returns `[turns]`.
///
/// # Errors
/// [`Error::ZeroSpeakers`] as [`cluster_speakers`];
/// [`Error::SpeakerCueLengths`] when `voices` and `faces` differ in length;
/// [`Error::FacePrint`] for face prints of different lengths or with a
/// negative, NaN or infinite value; [`Error::FaceWeight`] for a negative or
/// non-finite weight.
pub fn assign_speakers_with_faces<F: AsRef<[f32]>>(
    voices: &[Option<VoicePrint>],
    faces: &[Option<F>],
    face_weight: f64,
    count: SpeakerCount,
) -> Result<Vec<Option<usize>>> {
    if voices.len() != faces.len() {
        return Err(Error::SpeakerCueLengths {
            voices: voices.len(),
            faces: faces.len(),
        });
    }
    if !(face_weight.is_finite() && face_weight >= 0.0) {
        return Err(Error::FaceWeight(face_weight));
    }
    let max = match count {
        SpeakerCount::Given(0) | SpeakerCount::Estimate { max: 0 } => {
            return Err(Error::ZeroSpeakers);
        }
        SpeakerCount::Given(k) => k,
        SpeakerCount::Estimate { max } => max,
    };
    let mut face_dim = None;
    for (turn, face) in faces.iter().enumerate() {
        let Some(face) = face else { continue };
        let face = face.as_ref();
        let expected = *face_dim.get_or_insert(face.len());
        if face.len() != expected {
            return Err(Error::FacePrint {
                turn,
                reason: format!(
                    "{} values, expected {expected} (as the first face)",
                    face.len()
                ),
            });
        }
        if let Some(index) = face.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(Error::FacePrint {
                turn,
                reason: format!("value {index} is {}", face[index]),
            });
        }
    }
    let use_faces = face_weight > 0.0;
    // The turns that take part, and where their cues are.
    let turns: Vec<usize> = (0..voices.len())
        .filter(|&i| voices[i].is_some() || (use_faces && faces[i].is_some()))
        .collect();
    let n = turns.len();
    let voiced: Vec<&VoicePrint> = turns.iter().filter_map(|&i| voices[i].as_ref()).collect();
    let z = standardise(&voiced)?;
    let mut next_voice = 0;
    let voice_row: Vec<Option<usize>> = turns
        .iter()
        .map(|&i| {
            voices[i].as_ref().map(|_| {
                next_voice += 1;
                next_voice - 1
            })
        })
        .collect();
    let face_rows: Vec<Option<Vec<f64>>> = turns
        .iter()
        .map(|&i| {
            faces[i]
                .as_ref()
                .filter(|_| use_faces)
                .map(|f| f.as_ref().iter().map(|&v| f64::from(v)).collect())
        })
        .collect();
    let face_norms: Vec<f64> = face_rows
        .iter()
        .map(|f| {
            f.as_ref()
                .map_or(0.0, |f| f.iter().map(|v| v * v).sum::<f64>().sqrt())
        })
        .collect();
    // Face distances of the pairs that both show a face, `[n, n]`.
    let mut face_dist = vec![None; n * n];
    let mut observed = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            if let (Some(fa), Some(fb)) = (&face_rows[a], &face_rows[b]) {
                let d = cosine_distance(fa, fb, face_norms[a], face_norms[b]);
                face_dist[a * n + b] = Some(d);
                face_dist[b * n + a] = Some(d);
                observed.push(d);
            }
        }
    }
    // Turn distances from the voice distances of the voiced turns and a
    // face distance per pair.
    let combine = |voice_dist: &[f64], face: &dyn Fn(usize) -> Option<f64>| {
        let m = z.len();
        let mut d = vec![0.0; n * n];
        for a in 0..n {
            for b in a + 1..n {
                let (mut sum, mut weight) = (0.0, 0.0);
                if let (Some(va), Some(vb)) = (voice_row[a], voice_row[b]) {
                    sum += voice_dist[va * m + vb];
                    weight += 1.0;
                }
                if let Some(f) = face(a * n + b) {
                    sum += face_weight * f;
                    weight += face_weight;
                }
                let v = if weight > 0.0 { sum / weight } else { 1.0 };
                d[a * n + b] = v;
                d[b * n + a] = v;
            }
        }
        d
    };
    let dist = combine(&cosine_distances(&z), &|pair| face_dist[pair]);
    let ids = match count {
        SpeakerCount::Given(k) => match Dendrogram::build(dist, n, k) {
            Some(tree) => tree.cut(k.min(n)).to_vec(),
            None => Vec::new(),
        },
        SpeakerCount::Estimate { .. } => {
            observed.sort_by(f64::total_cmp);
            let median_face = (!observed.is_empty()).then(|| quantile(&observed, 0.5));
            estimate_from(dist, n, max, |rng| {
                let voice = cosine_distances(&standardise_rows(gaussian_like(&z, rng)));
                combine(&voice, &|pair| face_dist[pair].and(median_face))
            })
            .ids
        }
    };
    let mut out = vec![None; voices.len()];
    for (&turn, id) in turns.iter().zip(ids) {
        out[turn] = Some(id);
    }
    Ok(out)
}

/// Z-scored copies of `prints` (population statistics across turns; a
/// dimension whose spread is below float noise becomes 0).
///
/// # Shapes
/// `[turns][dim]` → `[turns][dim]`.
fn standardise<P: AsRef<[f32]>>(prints: &[P]) -> Result<Vec<Vec<f64>>> {
    let Some(first) = prints.first() else {
        return Ok(Vec::new());
    };
    let dim = first.as_ref().len();
    let mut rows = Vec::with_capacity(prints.len());
    for (turn, p) in prints.iter().enumerate() {
        let p = p.as_ref();
        if p.len() != dim {
            return Err(Error::VoicePrintLength {
                turn,
                expected: dim,
                got: p.len(),
            });
        }
        if let Some(index) = p.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteVoicePrint { turn, index });
        }
        rows.push(p.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>());
    }
    Ok(standardise_rows(rows))
}

/// Z-scores the columns of `rows` in place (see [`standardise`]).
fn standardise_rows(mut rows: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let dim = rows.first().map_or(0, Vec::len);
    for d in 0..dim {
        let column: Vec<f64> = rows.iter().map(|r| r[d]).collect();
        let (mean, std) = mean_std(&column);
        let scale = column.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        // Identical f32 values can still give a std of ~1e-16 from the
        // rounding of the mean; anything that small is no spread.
        let constant = std <= 1e-9 * scale.max(f64::MIN_POSITIVE);
        for r in &mut rows {
            r[d] = if constant { 0.0 } else { (r[d] - mean) / std };
        }
    }
    rows
}

/// Pairwise cosine distances, row-major `[n, n]`.
fn cosine_distances(z: &[Vec<f64>]) -> Vec<f64> {
    let n = z.len();
    let norms: Vec<f64> = z
        .iter()
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    let mut d = vec![0.0; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let v = cosine_distance(&z[i], &z[j], norms[i], norms[j]);
            d[i * n + j] = v;
            d[j * n + i] = v;
        }
    }
    d
}

/// `1 − cos θ` in [0, 2]. A zero vector (a turn exactly at the recording's
/// mean) has no direction: it is at distance 0 from another zero vector and
/// 1 (orthogonal) from anything else.
fn cosine_distance(a: &[f64], b: &[f64], norm_a: f64, norm_b: f64) -> f64 {
    match (norm_a > 0.0, norm_b > 0.0) {
        (false, false) => 0.0,
        (true, true) => {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            (1.0 - dot / (norm_a * norm_b)).clamp(0.0, 2.0)
        }
        _ => 1.0,
    }
}

/// One merge of the dendrogram: the clusters holding turns `a` and `b` join
/// at `height`.
#[derive(Debug, Clone, Copy)]
struct Merge {
    a: usize,
    b: usize,
    height: f64,
}

/// Average-linkage (UPGMA) dendrogram of `n` points with distances `dist`
/// (`[n, n]`), by the nearest-neighbour chain (Murtagh, "A survey of recent
/// advances in hierarchical clustering algorithms", The Computer Journal
/// 26(4), 1983; Müllner, "Modern hierarchical, agglomerative clustering
/// algorithms", arXiv:1109.2378, 2011): `O(n²)` time, merges returned in
/// order of height (stable, so equal heights keep the order they were found
/// in, which respects the tree).
fn average_linkage(dist: &[f64], n: usize) -> Vec<Merge> {
    let mut d = dist.to_vec();
    let mut size = vec![1usize; n];
    let mut active = vec![true; n];
    let mut chain: Vec<usize> = Vec::with_capacity(n);
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    while merges.len() + 1 < n {
        if chain.is_empty() {
            // An active cluster exists while fewer than n − 1 merges are done.
            let start = active.iter().position(|&a| a).unwrap_or(0);
            chain.push(start);
        }
        let (a, b) = loop {
            let a = chain[chain.len() - 1];
            let prev = (chain.len() >= 2).then(|| chain[chain.len() - 2]);
            // The previous chain element wins ties: that is what makes the
            // chain end in a pair of reciprocal nearest neighbours.
            let mut best = prev;
            let mut best_d = prev.map_or(f64::INFINITY, |p| d[a * n + p]);
            for j in 0..n {
                if active[j] && j != a && d[a * n + j] < best_d {
                    best = Some(j);
                    best_d = d[a * n + j];
                }
            }
            let b = best.expect("two clusters stay active until the last merge");
            if Some(b) == prev {
                break (a, b);
            }
            chain.push(b);
        };
        chain.truncate(chain.len() - 2);
        let height = d[a * n + b];
        merges.push(Merge { a, b, height });
        // Lance–Williams update for average linkage; the merged cluster
        // lives on in the slot of the smaller index.
        let (keep, gone) = (a.min(b), a.max(b));
        let (sk, sg) = (size[keep] as f64, size[gone] as f64);
        for j in 0..n {
            if active[j] && j != keep && j != gone {
                let v = (sk * d[keep * n + j] + sg * d[gone * n + j]) / (sk + sg);
                d[keep * n + j] = v;
                d[j * n + keep] = v;
            }
        }
        size[keep] += size[gone];
        active[gone] = false;
    }
    merges.sort_by(|x, y| x.height.total_cmp(&y.height));
    merges
}

/// Cluster labels of the cuts into `1..=max_k` clusters: `cuts[k − 1]` has
/// `k` clusters (labels `0..k`, arbitrary order).
///
/// # Shapes
/// Returns `[max_k][n]`.
fn cuts(merges: &[Merge], n: usize, max_k: usize) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut out = vec![Vec::new(); max_k];
    let mut clusters = n;
    let record = |parent: &mut [usize], clusters: usize, out: &mut Vec<Vec<usize>>| {
        if clusters <= max_k {
            let roots: Vec<usize> = (0..n).map(|i| root(parent, i)).collect();
            out[clusters - 1] = first_appearance(&roots);
        }
    };
    record(&mut parent, clusters, &mut out);
    for m in merges {
        let (ra, rb) = (root(&mut parent, m.a), root(&mut parent, m.b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
            clusters -= 1;
            record(&mut parent, clusters, &mut out);
        }
    }
    out
}

/// Mean silhouette of `labels` (`k` clusters, `0..k`) under `dist`; a point
/// alone in its cluster scores 0 (Rousseeuw 1987).
fn silhouette(dist: &[f64], n: usize, labels: &[usize], k: usize) -> f64 {
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    let mut total = 0.0;
    for i in 0..n {
        if sizes[labels[i]] <= 1 {
            continue;
        }
        let mut sums = vec![0.0; k];
        for j in 0..n {
            if j != i {
                sums[labels[j]] += dist[i * n + j];
            }
        }
        let a = sums[labels[i]] / (sizes[labels[i]] - 1) as f64;
        let b = (0..k)
            .filter(|&c| c != labels[i] && sizes[c] > 0)
            .map(|c| sums[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        let denom = a.max(b);
        if denom > 0.0 && denom.is_finite() {
            total += (b - a) / denom;
        }
    }
    total / n as f64
}

/// Relabels arbitrary ids `0, 1, 2, …` in order of first appearance.
fn first_appearance(ids: &[usize]) -> Vec<usize> {
    let mut map: HashMap<usize, usize> = HashMap::new();
    ids.iter()
        .map(|&id| {
            let next = map.len();
            *map.entry(id).or_insert(next)
        })
        .collect()
}

/// Fraction of turns labelled correctly under the best one-to-one mapping
/// between predicted and true speaker ids (ids are arbitrary `usize` names;
/// only the partition counts). A predicted speaker left without a true one
/// (or vice versa) counts all its turns as wrong. Symmetric in its arguments.
///
/// # Errors
/// [`Error::SpeakerLabelLengths`] when the two differ in length,
/// [`Error::NoTurns`] when they are empty.
pub fn speaker_accuracy(truth: &[usize], predicted: &[usize]) -> Result<f64> {
    if truth.len() != predicted.len() {
        return Err(Error::SpeakerLabelLengths {
            truth: truth.len(),
            predicted: predicted.len(),
        });
    }
    if truth.is_empty() {
        return Err(Error::NoTurns);
    }
    let t = first_appearance(truth);
    let p = first_appearance(predicted);
    let size = t.iter().chain(&p).max().map_or(0, |m| m + 1);
    let mut counts = vec![0i64; size * size];
    for (&ti, &pi) in t.iter().zip(&p) {
        counts[ti * size + pi] += 1;
    }
    let cost: Vec<i64> = counts.iter().map(|&c| -c).collect();
    let assignment = min_cost_assignment(&cost, size);
    let correct: i64 = assignment
        .iter()
        .enumerate()
        .map(|(row, &col)| counts[row * size + col])
        .sum();
    Ok(correct as f64 / truth.len() as f64)
}

/// Column assigned to each row minimising the total of a square `[s, s]`
/// row-major `cost`: the Hungarian algorithm with potentials, `O(s³)`.
fn min_cost_assignment(cost: &[i64], s: usize) -> Vec<usize> {
    // 1-based rows and columns; column 0 is the virtual start.
    let inf = i64::MAX / 4;
    let mut u = vec![0i64; s + 1];
    let mut v = vec![0i64; s + 1];
    let mut row_of = vec![0usize; s + 1]; // row_of[col]
    let mut way = vec![0usize; s + 1];
    for row in 1..=s {
        row_of[0] = row;
        let mut col0 = 0;
        let mut min_v = vec![inf; s + 1];
        let mut used = vec![false; s + 1];
        loop {
            used[col0] = true;
            let r0 = row_of[col0];
            let mut delta = inf;
            let mut col1 = 0;
            for col in 1..=s {
                if !used[col] {
                    let cur = cost[(r0 - 1) * s + col - 1] - u[r0] - v[col];
                    if cur < min_v[col] {
                        min_v[col] = cur;
                        way[col] = col0;
                    }
                    if min_v[col] < delta {
                        delta = min_v[col];
                        col1 = col;
                    }
                }
            }
            for col in 0..=s {
                if used[col] {
                    u[row_of[col]] += delta;
                    v[col] -= delta;
                } else {
                    min_v[col] -= delta;
                }
            }
            col0 = col1;
            if row_of[col0] == 0 {
                break;
            }
        }
        loop {
            let col1 = way[col0];
            row_of[col0] = row_of[col1];
            col0 = col1;
            if col0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![0usize; s];
    for col in 1..=s {
        assignment[row_of[col] - 1] = col - 1;
    }
    assignment
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The module's SplitMix64 seeds the synthetic turns too.
    use super::SplitMix64 as Rng;

    impl Rng {
        /// Uniform in [-1, 1).
        fn signed(&mut self) -> f32 {
            (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        }
    }

    /// A synthetic voice: a register and a vocal tract.
    #[derive(Clone, Copy)]
    struct Voice {
        /// Mean F0, Hz.
        f0_hz: f32,
        /// Vocal-tract scale: formants are [`VOWELS`] times this (shorter
        /// tracts have higher formants).
        tract: f32,
        /// Spectral tilt of the source, dB per octave.
        tilt_db_per_octave: f32,
    }

    /// F1–F3 of five vowels, Hz (Peterson & Barney 1952, men: /i/, /ɛ/,
    /// /ɑ/, /ɔ/, /u/).
    const VOWELS: [[f32; 3]; 5] = [
        [270.0, 2290.0, 3010.0],
        [530.0, 1840.0, 2480.0],
        [730.0, 1090.0, 2440.0],
        [570.0, 840.0, 2410.0],
        [300.0, 870.0, 2240.0],
    ];
    /// Formant bandwidths, Hz.
    const BANDWIDTHS: [f32; 3] = [80.0, 120.0, 160.0];

    const LOW: Voice = Voice {
        f0_hz: 110.0,
        tract: 1.0,
        tilt_db_per_octave: -12.0,
    };
    const HIGH: Voice = Voice {
        f0_hz: 220.0,
        tract: 1.18,
        tilt_db_per_octave: -8.0,
    };

    /// One turn of `voice`, `seconds` long: syllables of 150–250 ms, each a
    /// random vowel on a gliding F0 (±2 semitones of intonation), a harmonic
    /// source under the vowel's formants with a syllable-shaped envelope,
    /// plus white noise. Turns of one voice differ as real turns do, in many
    /// small independent ways: what is said (the vowels), the intonation,
    /// the turn's pitch level (±1 semitone), vocal effort (tilt ±1.5 dB per
    /// octave), articulation (formants ±2 %) and the noise (30–40 dB down).
    fn turn(voice: Voice, seconds: f32, rng: &mut Rng) -> Vec<f32> {
        let sr = SAMPLE_RATE as f32;
        let n = (seconds * sr) as usize;
        let level = rng.signed();
        let tilt = voice.tilt_db_per_octave + 1.5 * rng.signed();
        let tract = voice.tract * (1.0 + 0.02 * rng.signed());
        let noise = 0.3 * 10f32.powf(-(35.0 + 5.0 * rng.signed()) / 20.0);
        let mut out = Vec::with_capacity(n);
        let mut phase = 0.0f64;
        let mut st = 2.0 * rng.signed();
        while out.len() < n {
            let len = ((0.2 + 0.05 * rng.signed()) * sr) as usize;
            let vowel = VOWELS[(rng.next_u64() % VOWELS.len() as u64) as usize];
            let st_end = (st + 1.5 * rng.signed()).clamp(-2.0, 2.0);
            let f_mid = voice.f0_hz * 2f32.powf((level + (st + st_end) / 2.0) / 12.0);
            let num_harmonics = (7000.0 / f_mid) as usize;
            let amps: Vec<f32> = (1..=num_harmonics)
                .map(|h| {
                    let f = h as f32 * f_mid;
                    let source = (f / voice.f0_hz).powf(tilt / 6.02);
                    let resonance: f32 = vowel
                        .iter()
                        .zip(BANDWIDTHS)
                        .map(|(&c, bw)| 1.0 / (1.0 + ((f - c * tract) / bw).powi(2)))
                        .sum();
                    source * (0.02 + resonance)
                })
                .collect();
            for i in 0..len.min(n - out.len()) {
                let x = i as f32 / len as f32;
                let semis = level + st + (st_end - st) * x;
                let f0 = voice.f0_hz * 2f32.powf(semis / 12.0);
                phase += f64::from(f0 / sr);
                let p = 2.0 * std::f64::consts::PI * phase;
                let env = 0.15 + 0.85 * (std::f32::consts::PI * x).sin();
                let s: f32 = amps
                    .iter()
                    .enumerate()
                    .map(|(h, a)| a * ((h + 1) as f64 * p).sin() as f32)
                    .sum();
                out.push(env * s);
            }
            st = st_end;
        }
        let peak = out.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for v in &mut out {
            *v = 0.3 * *v / peak + noise * rng.signed();
        }
        out
    }

    fn prints_of(voices: &[Voice], seed: u64) -> Vec<VoicePrint> {
        let analyzer = Analyzer::new();
        let mut rng = Rng(seed);
        voices
            .iter()
            .map(|&v| {
                let x = turn(v, 2.5, &mut rng);
                analyzer
                    .voice_print(&x)
                    .expect("finite audio")
                    .expect("a voiced turn has a print")
            })
            .collect()
    }

    /// A sustained harmonic tone at `f0` Hz (harmonics at 1/h amplitude).
    fn sustained(f0: f32, seconds: f32) -> Vec<f32> {
        let sr = SAMPLE_RATE as f32;
        let raw: Vec<f32> = (0..(seconds * sr) as usize)
            .map(|i| {
                let t = i as f32 / sr;
                (1..=(6000.0 / f0) as usize)
                    .map(|h| (2.0 * std::f32::consts::PI * h as f32 * f0 * t).sin() / h as f32)
                    .sum()
            })
            .collect();
        let peak = raw.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        raw.iter().map(|v| 0.3 * v / peak).collect()
    }

    #[test]
    fn voice_print_describes_the_voice() {
        assert_eq!(VOICE_PRINT_NAMES.len(), VOICE_PRINT_DIM);
        let analyzer = Analyzer::new();
        // 110 Hz is two octaves above 27.5 Hz: 24 semitones; 220 Hz is 36.
        for (f0, semitones) in [(110.0, 24.0), (220.0, 36.0)] {
            let p = analyzer
                .voice_print(&sustained(f0, 1.0))
                .expect("finite")
                .expect("voiced");
            assert!(p.values().iter().all(|v| v.is_finite()));
            let median = p.get("f0_semitone_median").expect("named");
            assert!((median - semitones).abs() < 0.1, "{f0} Hz: {median}");
            let iqr = p.get("f0_semitone_iqr").expect("named");
            assert!(iqr < 0.1, "{f0} Hz: {iqr}");
            assert!(p.voiced_seconds() > 0.9, "{}", p.voiced_seconds());
            assert_eq!(
                p.voiced_frames(),
                (p.voiced_seconds() * 100.0).round() as usize
            );
        }
        assert_eq!(
            voice_print(&sustained(110.0, 1.0))
                .expect("finite")
                .and_then(|p| p.get("mfcc0_mean")),
            None,
            "c0 is not part of a print"
        );
    }

    #[test]
    fn voice_print_ignores_gain() {
        let analyzer = Analyzer::new();
        let x = turn(LOW, 0.8, &mut Rng(3));
        let quiet: Vec<f32> = x.iter().map(|v| 0.25 * v).collect();
        let a = analyzer.voice_print(&x).expect("finite").expect("voiced");
        let b = analyzer
            .voice_print(&quiet)
            .expect("finite")
            .expect("voiced");
        for (name, (u, v)) in VOICE_PRINT_NAMES
            .iter()
            .zip(a.values().iter().zip(b.values()))
        {
            assert!(
                (u - v).abs() <= 0.02 * u.abs().max(1.0),
                "{name}: {u} at full level vs {v} at -12 dB"
            );
        }
    }

    #[test]
    fn too_little_voiced_speech_has_no_print() {
        let analyzer = Analyzer::new();
        assert_eq!(analyzer.voice_print(&[]).expect("empty is fine"), None);
        assert_eq!(
            analyzer.voice_print(&vec![0.0; 16_000]).expect("silence"),
            None
        );
        let noise: Vec<f32> = {
            let mut rng = Rng(5);
            (0..16_000).map(|_| 0.3 * rng.signed()).collect()
        };
        assert_eq!(analyzer.voice_print(&noise).expect("noise"), None);
        // 0.2 s of voice: under MIN_PRINT_VOICED_FRAMES (0.3 s).
        let short = turn(LOW, 0.2, &mut Rng(6));
        assert_eq!(analyzer.voice_print(&short).expect("short"), None);
        let enough = turn(LOW, 0.5, &mut Rng(6));
        let p = analyzer.voice_print(&enough).expect("finite");
        assert!(p.is_some_and(|p| p.voiced_frames() >= MIN_PRINT_VOICED_FRAMES));
        let mut bad = enough.clone();
        bad[100] = f32::NAN;
        assert!(matches!(
            analyzer.voice_print(&bad),
            Err(Error::NonFinite { index: 100 })
        ));
    }

    #[test]
    fn two_synthetic_voices_separate() {
        let order = [
            LOW, HIGH, HIGH, LOW, HIGH, LOW, LOW, HIGH, LOW, HIGH, HIGH, LOW,
        ];
        let truth: Vec<usize> = order
            .iter()
            .map(|v| usize::from(v.f0_hz == HIGH.f0_hz))
            .collect();
        let prints = prints_of(&order, 7);
        for count in [SpeakerCount::Given(2), SpeakerCount::Estimate { max: 4 }] {
            let ids = cluster_speakers(&prints, count).expect("clusters");
            assert_eq!(ids, truth, "{count:?}");
            assert_eq!(speaker_accuracy(&truth, &ids).expect("scores"), 1.0);
        }
    }

    #[test]
    fn one_synthetic_voice_is_one_speaker() {
        for seed in [11, 12] {
            for voice in [LOW, HIGH] {
                let prints = prints_of(&[voice; 10], seed);
                let estimate = estimate_speakers(&prints, 4).expect("ok");
                assert_eq!(estimate.ids, vec![0; 10], "seed {seed}: {estimate:?}");
                assert_eq!(estimate.num_speakers, 1);
                // A single voice always admits some split; what says "one"
                // is that it is no sharper than a Gaussian cloud's.
                let (_, best) = estimate.best().expect("10 turns have candidates");
                assert!(
                    best <= estimate.null_median.expect("compared"),
                    "{estimate:?}"
                );
            }
        }
    }

    #[test]
    fn identical_turns_share_a_speaker() {
        let a = vec![1.0f32, 2.0, 3.0, -1.0];
        let b = vec![-2.0f32, 0.5, 3.5, 4.0];
        let prints = vec![a.clone(), a.clone(), b.clone(), a.clone(), b.clone()];
        for count in [SpeakerCount::Given(2), SpeakerCount::Estimate { max: 3 }] {
            assert_eq!(
                cluster_speakers(&prints, count).expect("ok"),
                vec![0, 0, 1, 0, 1],
                "{count:?}"
            );
        }
        // All identical: nothing to split.
        let same = vec![a; 6];
        assert_eq!(
            cluster_speakers(&same, SpeakerCount::Estimate { max: 4 }).expect("ok"),
            vec![0; 6]
        );
    }

    #[test]
    fn edge_cases_are_clear() {
        let none: [Vec<f32>; 0] = [];
        assert_eq!(
            cluster_speakers(&none, SpeakerCount::Given(2)).expect("ok"),
            Vec::<usize>::new()
        );
        let one = [vec![1.0f32, 2.0]];
        assert_eq!(
            cluster_speakers(&one, SpeakerCount::Given(3)).expect("ok"),
            vec![0]
        );
        assert_eq!(
            cluster_speakers(&one, SpeakerCount::Estimate { max: 3 }).expect("ok"),
            vec![0]
        );
        let three = [vec![0.0f32, 1.0], vec![5.0, 1.0], vec![0.1, 1.0]];
        // More speakers than turns: every turn its own speaker.
        assert_eq!(
            cluster_speakers(&three, SpeakerCount::Given(5)).expect("ok"),
            vec![0, 1, 2]
        );
        assert_eq!(
            cluster_speakers(&three, SpeakerCount::Given(1)).expect("ok"),
            vec![0, 0, 0]
        );
        // Empty prints carry nothing: one speaker.
        let blank: [Vec<f32>; 3] = [vec![], vec![], vec![]];
        assert_eq!(
            cluster_speakers(&blank, SpeakerCount::Estimate { max: 3 }).expect("ok"),
            vec![0, 0, 0]
        );
        // Two turns: too few to estimate more than one speaker.
        assert_eq!(
            cluster_speakers(&three[..2], SpeakerCount::Estimate { max: 4 }).expect("ok"),
            vec![0, 0]
        );
        for count in [SpeakerCount::Given(0), SpeakerCount::Estimate { max: 0 }] {
            assert!(matches!(
                cluster_speakers(&three, count),
                Err(Error::ZeroSpeakers)
            ));
        }
        let ragged = [vec![0.0f32, 1.0], vec![1.0, 2.0], vec![1.0]];
        assert!(matches!(
            cluster_speakers(&ragged, SpeakerCount::Given(2)),
            Err(Error::VoicePrintLength {
                turn: 2,
                expected: 2,
                got: 1
            })
        ));
        let nan = [vec![0.0f32, 1.0], vec![1.0, f32::NAN]];
        assert!(matches!(
            cluster_speakers(&nan, SpeakerCount::Given(2)),
            Err(Error::NonFiniteVoicePrint { turn: 1, index: 1 })
        ));
    }

    #[test]
    fn turns_without_a_print_get_no_speaker() {
        let prints = prints_of(&[LOW, HIGH, LOW, HIGH], 21);
        let mut turns: Vec<Option<VoicePrint>> = prints.into_iter().map(Some).collect();
        turns.insert(1, None);
        turns.push(None);
        let ids = assign_speakers(&turns, SpeakerCount::Given(2)).expect("ok");
        assert_eq!(ids, vec![Some(0), None, Some(1), Some(0), Some(1), None]);
        assert_eq!(
            assign_speakers(&[None, None], SpeakerCount::Given(2)).expect("ok"),
            vec![None, None]
        );
    }

    /// A face print near `base` (unit axis `base` of 8, plus seeded noise).
    fn face(base: usize, rng: &mut Rng) -> Vec<f32> {
        let mut f: Vec<f32> = (0..8).map(|_| 0.1 * (rng.signed() + 1.0)).collect();
        f[base] += 1.0;
        f
    }

    #[test]
    fn faces_bind_the_turns_they_are_seen_in() {
        // One synthetic voice throughout: the voice alone cannot tell the
        // two people apart; their faces can.
        let voices: Vec<Option<VoicePrint>> =
            prints_of(&[LOW; 10], 31).into_iter().map(Some).collect();
        let mut rng = Rng(5);
        let truth = [0, 1, 0, 0, 1, 1, 0, 1, 0, 1];
        let faces: Vec<Option<Vec<f32>>> = truth.iter().map(|&t| Some(face(t, &mut rng))).collect();
        let voice_only = assign_speakers(&voices, SpeakerCount::Given(2)).expect("ok");
        let voice_only: Vec<usize> = voice_only.into_iter().flatten().collect();
        assert!(speaker_accuracy(&truth, &voice_only).expect("scores") < 1.0);
        for count in [SpeakerCount::Given(2), SpeakerCount::Estimate { max: 4 }] {
            let ids = assign_speakers_with_faces(&voices, &faces, DEFAULT_FACE_WEIGHT, count)
                .expect("ok");
            let ids: Vec<usize> = ids.into_iter().flatten().collect();
            assert_eq!(
                speaker_accuracy(&truth, &ids).expect("scores"),
                1.0,
                "{count:?}"
            );
        }
        // Weight 0 is the voice alone, exactly.
        assert_eq!(
            assign_speakers_with_faces(&voices, &faces, 0.0, SpeakerCount::Given(2)).expect("ok"),
            assign_speakers(&voices, SpeakerCount::Given(2)).expect("ok")
        );
    }

    #[test]
    fn one_face_seen_throughout_keeps_the_voice_split() {
        // Two voices, and the same face (a listener on camera) in every turn.
        let voices: Vec<Option<VoicePrint>> = prints_of(&[LOW, HIGH, LOW, HIGH, HIGH, LOW], 41)
            .into_iter()
            .map(Some)
            .collect();
        let mut rng = Rng(9);
        let faces: Vec<Option<Vec<f32>>> = (0..6).map(|_| Some(face(3, &mut rng))).collect();
        let ids =
            assign_speakers_with_faces(&voices, &faces, 1.0, SpeakerCount::Given(2)).expect("ok");
        assert_eq!(
            ids,
            assign_speakers(&voices, SpeakerCount::Given(2)).expect("ok")
        );
    }

    #[test]
    fn a_turn_with_only_a_face_gets_a_speaker() {
        let mut voices: Vec<Option<VoicePrint>> = prints_of(&[LOW, HIGH, LOW, HIGH], 21)
            .into_iter()
            .map(Some)
            .collect();
        voices.push(None);
        voices.push(None);
        let mut rng = Rng(3);
        let faces = vec![
            Some(face(0, &mut rng)),
            None,
            Some(face(0, &mut rng)),
            None,
            Some(face(0, &mut rng)),
            None,
        ];
        let ids =
            assign_speakers_with_faces(&voices, &faces, 1.0, SpeakerCount::Given(2)).expect("ok");
        assert_eq!(ids[..4], [Some(0), Some(1), Some(0), Some(1)]);
        assert_eq!(ids[4], Some(0), "the face of speaker 0's turns");
        assert_eq!(ids[5], None, "neither voice nor face");

        let bad = |faces: &[Option<Vec<f32>>], weight: f64| {
            assign_speakers_with_faces(&voices, faces, weight, SpeakerCount::Given(2))
        };
        assert!(matches!(
            bad(&faces[..5], 1.0),
            Err(Error::SpeakerCueLengths {
                voices: 6,
                faces: 5
            })
        ));
        assert!(matches!(bad(&faces, -1.0), Err(Error::FaceWeight(_))));
        let mut ragged = faces.clone();
        ragged[2] = Some(vec![0.5; 3]);
        assert!(matches!(
            bad(&ragged, 1.0),
            Err(Error::FacePrint { turn: 2, .. })
        ));
        let mut nan = faces;
        nan[4] = Some(vec![f32::NAN; 8]);
        assert!(matches!(
            bad(&nan, 1.0),
            Err(Error::FacePrint { turn: 4, .. })
        ));
    }

    #[test]
    fn accuracy_examples() {
        let acc = |t: &[usize], p: &[usize]| speaker_accuracy(t, p).expect("scores");
        assert_eq!(acc(&[0, 0, 1, 1], &[7, 7, 3, 3]), 1.0);
        assert_eq!(acc(&[0, 0, 1, 1], &[0, 1, 1, 1]), 0.75);
        // One predicted speaker can match only one true speaker.
        assert_eq!(acc(&[0, 0, 0, 1, 1, 2], &[0; 6]), 0.5);
        // Every turn its own speaker: one turn per true speaker counts.
        assert_eq!(acc(&[0, 0, 1, 1], &[0, 1, 2, 3]), 0.5);
        // The greedy choice (0→0, the biggest cell) is not the best one.
        assert_eq!(acc(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 0, 2, 2]), 4.0 / 6.0);
        assert!(matches!(
            speaker_accuracy(&[0, 1], &[0]),
            Err(Error::SpeakerLabelLengths {
                truth: 2,
                predicted: 1
            })
        ));
        assert!(matches!(speaker_accuracy(&[], &[]), Err(Error::NoTurns)));
    }

    /// Accuracy by trying every mapping of predicted onto true ids.
    fn brute_force_accuracy(truth: &[usize], predicted: &[usize]) -> f64 {
        fn best(p_ids: &[usize], used: &mut Vec<usize>, t: &[usize], p: &[usize]) -> usize {
            let Some((&first, rest)) = p_ids.split_first() else {
                return 0;
            };
            // Leave `first` unmapped, or map it to any free true id.
            let mut top = best(rest, used, t, p);
            let true_ids: Vec<usize> = {
                let mut v = t.to_vec();
                v.sort_unstable();
                v.dedup();
                v
            };
            for tid in true_ids {
                if used.contains(&tid) {
                    continue;
                }
                let hits = t
                    .iter()
                    .zip(p)
                    .filter(|&(&a, &b)| a == tid && b == first)
                    .count();
                used.push(tid);
                top = top.max(hits + best(rest, used, t, p));
                used.pop();
            }
            top
        }
        let mut p_ids = predicted.to_vec();
        p_ids.sort_unstable();
        p_ids.dedup();
        best(&p_ids, &mut Vec::new(), truth, predicted) as f64 / truth.len() as f64
    }

    /// Average linkage the slow, obvious way: merge the closest pair of
    /// clusters by mean pairwise distance; labels of the cut at each `k`.
    fn naive_cuts(dist: &[f64], n: usize, max_k: usize) -> Vec<Vec<usize>> {
        let mut clusters: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
        let mut out = vec![Vec::new(); max_k];
        loop {
            if clusters.len() <= max_k {
                let mut labels = vec![0; n];
                for (c, members) in clusters.iter().enumerate() {
                    for &m in members {
                        labels[m] = c;
                    }
                }
                out[clusters.len() - 1] = first_appearance(&labels);
            }
            if clusters.len() == 1 {
                return out;
            }
            let mut best = (f64::INFINITY, 0, 0);
            for a in 0..clusters.len() {
                for b in a + 1..clusters.len() {
                    let mut sum = 0.0;
                    for &i in &clusters[a] {
                        for &j in &clusters[b] {
                            sum += dist[i * n + j];
                        }
                    }
                    let d = sum / (clusters[a].len() * clusters[b].len()) as f64;
                    if d < best.0 {
                        best = (d, a, b);
                    }
                }
            }
            let merged = clusters.remove(best.2);
            clusters[best.1].extend(merged);
        }
    }

    fn points() -> impl Strategy<Value = Vec<Vec<f32>>> {
        (1usize..14)
            .prop_flat_map(|n| prop::collection::vec(prop::collection::vec(-10.0f32..10.0, 3), n))
    }

    proptest! {
        #[test]
        fn relabelling_never_changes_accuracy(
            pairs in prop::collection::vec((0usize..4, 0usize..5), 1..30),
            shift in 0usize..1000,
        ) {
            let (truth, predicted): (Vec<usize>, Vec<usize>) = pairs.into_iter().unzip();
            let base = speaker_accuracy(&truth, &predicted).expect("scores");
            // An injective relabelling of the predicted ids.
            let renamed: Vec<usize> = predicted.iter().map(|&p| (4 - p) * 31 + shift).collect();
            prop_assert_eq!(speaker_accuracy(&truth, &renamed).expect("scores"), base);
            // The measure is symmetric, and is the best mapping there is.
            prop_assert_eq!(speaker_accuracy(&predicted, &truth).expect("scores"), base);
            let brute = brute_force_accuracy(&truth, &predicted);
            prop_assert!((base - brute).abs() < 1e-12, "hungarian {} vs brute force {}", base, brute);
            prop_assert!(base > 0.0 && base <= 1.0);
        }

        #[test]
        fn nn_chain_matches_naive_average_linkage(pts in points()) {
            let z = standardise(&pts).expect("well-formed");
            let n = z.len();
            let dist = cosine_distances(&z);
            let fast = cuts(&average_linkage(&dist, n), n, n);
            prop_assert_eq!(fast, naive_cuts(&dist, n, n));
        }

        #[test]
        fn clustering_contract(pts in points(), k in 1usize..6, scale in -3i32..4) {
            let n = pts.len();
            for count in [SpeakerCount::Given(k), SpeakerCount::Estimate { max: k }] {
                let ids = cluster_speakers(&pts, count).expect("well-formed");
                prop_assert_eq!(ids.len(), n);
                prop_assert_eq!(ids[0], 0);
                // Ids appear in order: each is at most one above all before it.
                let mut next = 0;
                for &id in &ids {
                    prop_assert!(id <= next);
                    next = next.max(id + 1);
                }
                if let SpeakerCount::Given(k) = count {
                    prop_assert_eq!(next, k.min(n));
                } else {
                    prop_assert!(next <= k.min(n));
                }
                // Deterministic, and blind to the units of a dimension
                // (a power-of-two scale is exact in floating point).
                prop_assert_eq!(&cluster_speakers(&pts, count).expect("ok"), &ids);
                let factor = 2f32.powi(scale);
                let scaled: Vec<Vec<f32>> = pts
                    .iter()
                    .map(|p| vec![p[0] * factor, p[1], p[2]])
                    .collect();
                prop_assert_eq!(&cluster_speakers(&scaled, count).expect("ok"), &ids);
            }
        }
    }
}
