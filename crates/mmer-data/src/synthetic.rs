//! Seeded synthetic multimodal conversations with a documented planted signal.
//!
//! No public multimodal conversation corpus is available offline, so `mmer
//! demo`, the AMuSE ablation benchmark and the model tests train on
//! conversations generated here. What is planted, exactly:
//!
//! * **Labels** — six emotions placed on a valence × arousal plane:
//!   neutral (0, 0), joy (+1, +1), sadness (−1, −1), anger (−1, +1),
//!   surprise (+1, −1) — "pleasant but calm" — and fear (−1, +2), with class
//!   prior 0.34 / 0.22 / 0.14 / 0.14 / 0.10 / 0.06 (imbalanced, like MELD).
//! * **Sequences** — Audio (24-d), Face (16-d) and Body (8-d) are sequences
//!   of `frames` aligned analysis windows (the same count for the three
//!   within an utterance, 8–16 by default); Text is one 32-d vector per
//!   utterance, like a sentence embedding. Every frame carries the speaker's
//!   fixed offset and Gaussian noise; the signal sits in a few frames.
//! * **Cross-modal, time-bound evidence** — each utterance has a moment of
//!   expression `t*`. At `t*` the voice peaks: Audio gets a salience
//!   direction plus the class's arousal, and Body a weaker copy of the
//!   arousal. The Face shows `1 + face_distractors` expressions at distinct
//!   frames: the class's valence at `t*`, and a random ±1 valence at each
//!   other one (expressions that do not belong to the emotion). So the same
//!   facial evidence means different emotions depending on the prosody *at
//!   that moment*: the face alone is ambiguous, audio alone lacks valence,
//!   and the class needs the face read at the time of the vocal peak.
//! * **Speaker state** — each speaker carries a mood: with probability
//!   `persistence` a turn repeats the speaker's previous emotion, otherwise it
//!   is drawn from the prior. Only a model that reads the speaker's own
//!   earlier turns can use this.
//! * **Weak text** — Text carries a class prototype only on a random
//!   `text_informative` share of turns (elsewhere the neutral prototype).
//! * **Ambiguous turns** — on a `faint` share of turns every modality's
//!   signal is scaled by 0.25, so the turn is hard alone and context helps.
//! * **Label noise** — `label_noise` of labels replaced uniformly at random
//!   after the features were drawn.
//! * **Redundancy** (off by default) — with `redundancy` r > 0 every
//!   modality also carries the class on its own: a class prototype of its
//!   own (a unit direction per modality and class) scaled by `r × signal`
//!   (× 0.25 on faint turns), added to the text vector and to *every* frame
//!   of Audio, Face and Body. Each modality then predicts the class alone
//!   to a degree and the others can stand in for a missing one — the
//!   setting where compensating for missing modalities is possible at all
//!   (in the default, complementary setting the class needs face *and*
//!   audio). Its prototypes come from a stream of their own, so r = 0
//!   gives exactly the corpora of earlier versions.

use std::collections::BTreeMap;

use mmer_core::{Corpus, Dialogue, Features, Label, LabelSpace, Modality, Split, Utterance};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Class names of the synthetic label space.
pub const CLASSES: [&str; 6] = ["neutral", "joy", "sadness", "anger", "surprise", "fear"];
const PRIOR: [f64; 6] = [0.34, 0.22, 0.14, 0.14, 0.10, 0.06];
const VALENCE: [f32; 6] = [0.0, 1.0, -1.0, -1.0, 1.0, -1.0];
const AROUSAL: [f32; 6] = [0.0, 1.0, -1.0, 1.0, -1.0, 2.0];
/// Feature width of each modality.
pub const DIMS: [(Modality, usize); 4] = [
    (Modality::Text, 32),
    (Modality::Audio, 24),
    (Modality::Face, 16),
    (Modality::Body, 8),
];

/// Knobs of the generator; the defaults are what `mmer demo` uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    /// RNG seed: the same seed gives the same corpus.
    pub seed: u64,
    /// Dialogues in train / valid / test.
    pub dialogues: [usize; 3],
    /// Inclusive range of turns per dialogue.
    pub turns: (usize, usize),
    /// Inclusive range of speakers per dialogue.
    pub speakers: (usize, usize),
    /// Inclusive range of frames per utterance (Audio, Face, Body).
    pub frames: (usize, usize),
    /// Face expressions at other frames than the moment of expression.
    pub face_distractors: usize,
    /// Probability that a speaker keeps their previous emotion.
    pub persistence: f64,
    /// Share of turns whose text carries the class prototype.
    pub text_informative: f64,
    /// Share of turns whose signal is scaled down to 0.25.
    pub faint: f64,
    /// Standard deviation of the feature noise.
    pub noise: f32,
    /// Share of labels replaced uniformly at random.
    pub label_noise: f64,
    /// Strength of the per-modality class prototypes that make every
    /// modality informative on its own (0 = off; see the module doc).
    pub redundancy: f32,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            dialogues: [240, 40, 80],
            turns: (4, 16),
            speakers: (2, 3),
            frames: (8, 16),
            face_distractors: 2,
            persistence: 0.6,
            text_informative: 0.4,
            faint: 0.3,
            noise: 0.8,
            label_noise: 0.03,
            redundancy: 0.0,
        }
    }
}

/// The synthetic label space.
pub fn label_space() -> LabelSpace {
    LabelSpace::single("synthetic", &CLASSES)
}

struct Prototypes {
    /// Per-modality class prototypes of the redundant setting, in [`DIMS`]
    /// order (`[modality][class][dim]`).
    redundant: Vec<Vec<Vec<f32>>>,
    text: Vec<Vec<f32>>,
    valence_dir: Vec<f32>,
    arousal_dir: Vec<f32>,
    salience_dir: Vec<f32>,
    body_dir: Vec<f32>,
}

fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    // Box–Muller; avoids a distribution crate for one normal sampler.
    let u1: f32 = rng.random::<f32>().max(1e-7);
    let u2: f32 = rng.random::<f32>();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

fn unit_vector(rng: &mut ChaCha8Rng, dim: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dim).map(|_| gaussian(rng)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.into_iter().map(|x| x / norm).collect()
}

fn draw_class(rng: &mut ChaCha8Rng) -> usize {
    let mut r: f64 = rng.random();
    for (c, p) in PRIOR.iter().enumerate() {
        if r < *p {
            return c;
        }
        r -= p;
    }
    PRIOR.len() - 1
}

/// Generates a corpus; deterministic in `config.seed`.
pub fn generate(config: &SyntheticConfig) -> Corpus {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let signal = 2.0f32;
    // A stream of its own, so the main stream (and every corpus without
    // redundancy) is unchanged.
    let mut redundant_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x2ED0_DA17_C1A5_5E55);
    let protos = Prototypes {
        redundant: DIMS
            .iter()
            .map(|&(_, dim)| {
                (0..CLASSES.len())
                    .map(|_| unit_vector(&mut redundant_rng, dim))
                    .collect()
            })
            .collect(),
        text: (0..CLASSES.len())
            .map(|_| unit_vector(&mut rng, 32))
            .collect(),
        valence_dir: unit_vector(&mut rng, 16),
        arousal_dir: unit_vector(&mut rng, 24),
        salience_dir: unit_vector(&mut rng, 24),
        body_dir: unit_vector(&mut rng, 8),
    };
    let mut splits = BTreeMap::new();
    for (split, &count) in Split::ALL.iter().zip(&config.dialogues) {
        let dialogues = (0..count)
            .map(|d| {
                let id = format!("{split}/syn{d}");
                generate_dialogue(&mut rng, config, &protos, signal, id)
            })
            .collect();
        splits.insert(*split, dialogues);
    }
    Corpus {
        name: "synthetic".into(),
        labels: label_space(),
        splits,
    }
}

fn generate_dialogue(
    rng: &mut ChaCha8Rng,
    config: &SyntheticConfig,
    protos: &Prototypes,
    signal: f32,
    id: String,
) -> Dialogue {
    let turns = rng.random_range(config.turns.0..=config.turns.1.max(config.turns.0));
    let num_speakers = rng
        .random_range(config.speakers.0..=config.speakers.1.max(config.speakers.0))
        .max(1);
    let offsets: Vec<BTreeMap<Modality, Vec<f32>>> = (0..num_speakers)
        .map(|_| {
            DIMS.iter()
                .map(|&(m, d)| (m, (0..d).map(|_| 0.3 * gaussian(rng)).collect()))
                .collect()
        })
        .collect();
    let mut mood: Vec<Option<usize>> = vec![None; num_speakers];
    let mut previous_speaker = usize::MAX;
    let mut utterances = Vec::with_capacity(turns);
    for t in 0..turns {
        // Alternate speakers mostly, sometimes the same speaker continues.
        let speaker = if num_speakers == 1
            || (previous_speaker != usize::MAX && rng.random::<f64>() < 0.15)
        {
            previous_speaker.min(num_speakers - 1)
        } else {
            let mut s = rng.random_range(0..num_speakers);
            if s == previous_speaker {
                s = (s + 1) % num_speakers;
            }
            s
        };
        previous_speaker = speaker;
        let class = match mood[speaker] {
            Some(c) if rng.random::<f64>() < config.persistence => c,
            _ => draw_class(rng),
        };
        mood[speaker] = Some(class);
        let strength = if rng.random::<f64>() < config.faint {
            0.25 * signal
        } else {
            signal
        };
        let text_class = if rng.random::<f64>() < config.text_informative {
            class
        } else {
            0
        };
        let frames =
            rng.random_range(config.frames.0.max(1)..=config.frames.1.max(config.frames.0).max(1));
        // The moment of expression, then the face's distractor frames.
        let mut moments: Vec<usize> = (0..frames).collect();
        moments.shuffle(rng);
        let (peak, distractors) = (
            moments[0],
            &moments[1..=config.face_distractors.min(frames - 1)],
        );
        let mut features = BTreeMap::new();
        for (k, &(modality, dim)) in DIMS.iter().enumerate() {
            let offset = &offsets[speaker][&modality];
            let count = if modality == Modality::Text {
                1
            } else {
                frames
            };
            let mut data: Vec<f32> = (0..count * dim)
                .map(|i| offset[i % dim] + config.noise * gaussian(rng))
                .collect();
            let mut add = |frame: usize, dir: &[f32], scale: f32| {
                for (x, v) in data[frame * dim..(frame + 1) * dim].iter_mut().zip(dir) {
                    *x += v * scale;
                }
            };
            match modality {
                Modality::Text => add(0, &protos.text[text_class], strength),
                Modality::Audio => {
                    add(peak, &protos.salience_dir, strength);
                    add(peak, &protos.arousal_dir, strength * AROUSAL[class]);
                }
                Modality::Face => {
                    add(peak, &protos.valence_dir, strength * VALENCE[class]);
                    for &frame in distractors {
                        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                        add(frame, &protos.valence_dir, strength * sign);
                    }
                }
                Modality::Body => add(peak, &protos.body_dir, 0.5 * strength * AROUSAL[class]),
            }
            if config.redundancy > 0.0 {
                for frame in 0..count {
                    add(
                        frame,
                        &protos.redundant[k][class],
                        config.redundancy * strength,
                    );
                }
            }
            let features_of =
                Features::sequence(count, dim, data).expect("count * dim values were generated");
            features.insert(modality, features_of);
        }
        let label = if rng.random::<f64>() < config.label_noise {
            rng.random_range(0..CLASSES.len())
        } else {
            class
        };
        let mut u = Utterance::new(format!("{id}_u{t}"), t, format!("S{speaker}"));
        u.label = Some(Label::Single(label));
        u.features = features;
        utterances.push(u);
    }
    Dialogue { id, utterances }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_under_seed_and_valid() {
        let config = SyntheticConfig {
            dialogues: [5, 2, 2],
            ..Default::default()
        };
        let a = generate(&config);
        assert_eq!(a, generate(&config));
        assert_ne!(a, generate(&SyntheticConfig { seed: 1, ..config }));
        a.validate().unwrap();
        assert_eq!(a.modalities(), Modality::ALL.to_vec());
    }

    #[test]
    fn redundancy_adds_a_class_signal_to_every_modality_and_nothing_else() {
        let plain = SyntheticConfig {
            dialogues: [3, 1, 1],
            ..Default::default()
        };
        let redundant = SyntheticConfig {
            redundancy: 0.5,
            ..plain.clone()
        };
        let (a, b) = (generate(&plain), generate(&redundant));
        let turns = |c: &Corpus| -> Vec<Utterance> {
            c.splits
                .values()
                .flatten()
                .flat_map(|d| d.utterances.clone())
                .collect()
        };
        for (u, v) in turns(&a).iter().zip(turns(&b)) {
            assert_eq!((&u.id, &u.label), (&v.id, &v.label));
            for m in Modality::ALL {
                let (x, y) = (&u.features[&m], &v.features[&m]);
                assert_eq!(x.frames, y.frames);
                // Every frame moved, by the same vector.
                let diff: Vec<f32> = x.data.iter().zip(&y.data).map(|(p, q)| q - p).collect();
                let first = &diff[..x.dim];
                assert!(first.iter().any(|d| d.abs() > 1e-3), "{m}");
                for frame in diff.chunks(x.dim) {
                    for (p, q) in frame.iter().zip(first) {
                        assert!((p - q).abs() < 1e-4);
                    }
                }
            }
        }
    }

    #[test]
    fn class_prior_is_imbalanced_as_documented() {
        let corpus = generate(&SyntheticConfig::default());
        let mut counts = [0usize; 6];
        for d in corpus.split(Split::Train) {
            for u in &d.utterances {
                if let Some(Label::Single(c)) = u.label {
                    counts[c] += 1;
                }
            }
        }
        let total: usize = counts.iter().sum();
        let neutral = counts[0] as f64 / total as f64;
        let fear = counts[5] as f64 / total as f64;
        assert!(neutral > 0.25 && neutral < 0.45, "neutral share {neutral}");
        assert!(fear < 0.12, "fear share {fear}");
    }
}
