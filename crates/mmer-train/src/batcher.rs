//! From dialogues to padded tensor batches.
//!
//! [`FeatureLayout`] fixes which modalities the model reads, their widths,
//! whether it reads frame sequences or mean-pooled vectors, and the z-score
//! statistics — fitted on the training split only and saved with the
//! checkpoint, so valid/test/predict inputs are scaled exactly as training
//! inputs were.
//!
//! Any turn may lack any of the model's modalities, in training or at test
//! time (DESIGN §1: missing is data, not zeros). The batch carries which
//! modalities each turn has: for the sequence fusions as the `present`
//! mask of [`UtteranceInput::Sequences`], which every fusion reads; for
//! early fusion, whose fusion *is* the concatenation made here, by zeroing
//! the absent blocks and scaling the present ones by `M / present`
//! ([`mmer_models::multimodal::fuse_present`]'s rule). A turn with none of
//! the model's modalities is an error naming it ([`Error::NoModality`]).

use burn::tensor::{Device, Int, Tensor, TensorData};
use mmer_core::{Dialogue, Label, Modality, Utterance};
use mmer_models::blocks::{SequenceIndex, SpeakerIndex};
use mmer_models::multimodal::ModalityFrames;
use mmer_models::{DialogueBatch, UtteranceInput};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Input layout of a model: modalities, widths and normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureLayout {
    /// Modalities in model order with their widths.
    pub modalities: Vec<(Modality, usize)>,
    /// Per-dimension training mean (modalities concatenated).
    pub mean: Vec<f32>,
    /// Per-dimension training standard deviation (floored at 1e-6).
    pub std: Vec<f32>,
    /// Frame sequences per modality (statistics over frames) instead of one
    /// mean-pooled, concatenated vector per utterance.
    #[serde(default)]
    pub sequences: bool,
}

/// A model's modality names, for messages.
fn names(modalities: &[(Modality, usize)]) -> String {
    modalities
        .iter()
        .map(|(m, _)| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FeatureLayout {
    /// Fits widths and statistics on training dialogues.
    ///
    /// Each modality's width is that of the first training turn that has
    /// it; its statistics are over the turns (or frames) that have it.
    ///
    /// # Errors
    /// No modalities requested, no training utterance, a modality that no
    /// training turn has, a turn with none of them, an empty sequence or a
    /// non-finite value.
    pub fn fit(train: &[Dialogue], modalities: &[Modality], sequences: bool) -> Result<Self> {
        if modalities.is_empty() {
            return Err(Error::Data("no input modalities configured".into()));
        }
        if train.iter().all(|d| d.utterances.is_empty()) {
            return Err(Error::Data("the training split has no utterances".into()));
        }
        let widths = modalities
            .iter()
            .map(|&m| {
                train
                    .iter()
                    .flat_map(|d| &d.utterances)
                    .find_map(|u| u.features.get(&m))
                    .map(|f| (m, f.dim))
                    .ok_or_else(|| Error::Data(format!("no training turn has {m} features")))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut layout = Self {
            mean: Vec::new(),
            std: Vec::new(),
            modalities: widths,
            sequences,
        };
        let d = layout.d_input();
        let (mut sum, mut sq) = (vec![0f64; d], vec![0f64; d]);
        let mut counts = vec![0usize; layout.modalities.len()];
        let mut add = |offset: usize, values: &[f32]| {
            for (i, x) in values.iter().enumerate() {
                sum[offset + i] += *x as f64;
                sq[offset + i] += (*x as f64) * (*x as f64);
            }
        };
        for d in train {
            for u in &d.utterances {
                let features = layout.checked_features(d, u)?;
                let mut offset = 0;
                for (k, f) in features.into_iter().enumerate() {
                    let width = layout.modalities[k].1;
                    if let Some(f) = f {
                        if sequences {
                            for frame in f.data.chunks(width) {
                                add(offset, frame);
                            }
                            counts[k] += f.frames;
                        } else {
                            add(offset, &f.mean_pooled());
                            counts[k] += 1;
                        }
                    }
                    offset += width;
                }
            }
        }
        let per_dim_count: Vec<f64> = layout
            .modalities
            .iter()
            .zip(&counts)
            .flat_map(|(&(_, w), &c)| std::iter::repeat_n(c.max(1) as f64, w))
            .collect();
        layout.mean = sum
            .iter()
            .zip(&per_dim_count)
            .map(|(s, n)| (s / n) as f32)
            .collect();
        layout.std = sum
            .iter()
            .zip(&sq)
            .zip(&per_dim_count)
            .map(|((s, q), n)| ((q / n - (s / n).powi(2)).max(0.0).sqrt() as f32).max(1e-6))
            .collect();
        Ok(layout)
    }

    /// Checked raw features of each modality of `u` (turn of `d`), in
    /// layout order; `None` where the turn lacks the modality.
    ///
    /// # Errors
    /// [`Error::NoModality`] when it has none of them; a width that differs
    /// from the layout's, an empty sequence, a non-finite value.
    fn checked_features<'u>(
        &self,
        d: &Dialogue,
        u: &'u Utterance,
    ) -> Result<Vec<Option<&'u mmer_core::Features>>> {
        let features: Vec<Option<&mmer_core::Features>> = self
            .modalities
            .iter()
            .map(|(m, _)| u.features.get(m))
            .collect();
        if features.iter().all(Option::is_none) {
            return Err(Error::NoModality {
                dialogue: d.id.clone(),
                turn: d
                    .utterances
                    .iter()
                    .position(|x| std::ptr::eq(x, u))
                    .unwrap_or_default(),
                utterance: u.id.clone(),
                modalities: names(&self.modalities),
                available: u
                    .features
                    .keys()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        self.modalities
            .iter()
            .zip(features)
            .map(|(&(m, width), f)| {
                let Some(f) = f else { return Ok(None) };
                if f.dim != width {
                    return Err(Error::WidthMismatch {
                        utterance: u.id.clone(),
                        modality: m,
                        expected: width,
                        got: f.dim,
                    });
                }
                if f.frames == 0 || f.data.is_empty() {
                    return Err(Error::Data(format!(
                        "utterance {}: the {m} sequence is empty",
                        u.id
                    )));
                }
                if let Some(i) = f.first_non_finite() {
                    return Err(Error::Data(format!(
                        "utterance {}: {m} value {i} (frame {}, dim {}) is {}",
                        u.id,
                        i / width.max(1),
                        i % width.max(1),
                        f.data[i]
                    )));
                }
                Ok(Some(f))
            })
            .collect()
    }

    /// Width of the concatenated input.
    pub fn d_input(&self) -> usize {
        self.modalities.iter().map(|(_, w)| w).sum()
    }

    /// The normalised frames of each modality of one utterance (turn of
    /// `d`), each flattened `[frames * width]`; empty where it lacks the
    /// modality.
    ///
    /// # Errors
    /// As [`FeatureLayout::vector`], plus empty sequences.
    pub fn frames(&self, d: &Dialogue, u: &Utterance) -> Result<Vec<Vec<f32>>> {
        let mut offset = 0;
        let mut out = Vec::with_capacity(self.modalities.len());
        for (f, &(_, width)) in self
            .checked_features(d, u)?
            .into_iter()
            .zip(&self.modalities)
        {
            let mean = &self.mean[offset..offset + width];
            let std = &self.std[offset..offset + width];
            out.push(f.map_or_else(Vec::new, |f| {
                f.data
                    .chunks(width)
                    .flat_map(|frame| {
                        frame
                            .iter()
                            .zip(mean)
                            .zip(std)
                            .map(|((x, m), s)| (x - m) / s)
                    })
                    .collect()
            }));
            offset += width;
        }
        Ok(out)
    }

    /// Width of each modality, in model order.
    pub fn widths(&self) -> Vec<usize> {
        self.modalities.iter().map(|&(_, w)| w).collect()
    }

    /// The normalised model input of one utterance (turn of `d`): its
    /// mean-pooled modalities concatenated, and which of them it has. An
    /// absent modality's block is a placeholder (zeros) that
    /// [`make_batch`] masks.
    ///
    /// # Errors
    /// A turn with none of the modalities or a width that differs from
    /// training.
    pub fn vector(&self, d: &Dialogue, u: &Utterance) -> Result<(Vec<f32>, Vec<bool>)> {
        let mut v = Vec::with_capacity(self.d_input());
        let mut present = Vec::with_capacity(self.modalities.len());
        let mut offset = 0;
        for (f, &(_, width)) in self
            .checked_features(d, u)?
            .into_iter()
            .zip(&self.modalities)
        {
            match f {
                Some(f) => {
                    let mean = &self.mean[offset..offset + width];
                    let std = &self.std[offset..offset + width];
                    v.extend(
                        f.mean_pooled()
                            .iter()
                            .zip(mean)
                            .zip(std)
                            .map(|((x, m), s)| (x - m) / s),
                    );
                }
                None => v.extend(std::iter::repeat_n(0.0, width)),
            }
            present.push(f.is_some());
            offset += width;
        }
        Ok((v, present))
    }
}

/// A dialogue reduced to what the model reads.
#[derive(Debug, Clone)]
pub struct EncodedDialogue {
    /// Dialogue id.
    pub id: String,
    /// Pooled layouts: normalised input per turn, flattened `[turns * d_input]`.
    pub inputs: Vec<f32>,
    /// Sequence layouts: per turn, per modality, normalised frames
    /// flattened `[frames * width]`.
    pub frames: Vec<Vec<Vec<f32>>>,
    /// Which of the layout's modalities each turn has, flattened
    /// `[turns * M]`.
    pub present: Vec<bool>,
    /// Speaker index per turn (order of first appearance).
    pub speakers: Vec<usize>,
    /// Gold class (or, in a multi-label set, classes) per turn, when
    /// labelled.
    pub labels: Vec<Option<Label>>,
}

impl EncodedDialogue {
    /// Number of turns.
    pub fn len(&self) -> usize {
        self.speakers.len()
    }

    /// True when the dialogue has no turns.
    pub fn is_empty(&self) -> bool {
        self.speakers.is_empty()
    }
}

/// Encodes dialogues with a fitted layout.
///
/// # Errors
/// Empty dialogues, a turn with none of the layout's modalities,
/// mismatched widths.
pub fn encode(dialogues: &[Dialogue], layout: &FeatureLayout) -> Result<Vec<EncodedDialogue>> {
    dialogues
        .iter()
        .map(|d| {
            if d.utterances.is_empty() {
                return Err(Error::Data(format!("dialogue {} has no utterances", d.id)));
            }
            let names = d.speakers();
            let mut inputs = Vec::new();
            let mut frames = Vec::new();
            let mut present = Vec::new();
            let mut speakers = Vec::with_capacity(d.utterances.len());
            let mut labels = Vec::with_capacity(d.utterances.len());
            for u in &d.utterances {
                if layout.sequences {
                    let turn = layout.frames(d, u)?;
                    present.extend(turn.iter().map(|f| !f.is_empty()));
                    frames.push(turn);
                } else {
                    let (vector, has) = layout.vector(d, u)?;
                    inputs.extend(vector);
                    present.extend(has);
                }
                speakers.push(names.iter().position(|s| *s == u.speaker).unwrap_or(0));
                labels.push(u.label.clone());
            }
            Ok(EncodedDialogue {
                id: d.id.clone(),
                inputs,
                frames,
                present,
                speakers,
                labels,
            })
        })
        .collect()
}

/// The gold labels of a batch's labelled turns.
#[derive(Debug, Clone)]
pub enum Targets {
    /// One class index per turn, `[n]`.
    Classes(Tensor<1, Int>),
    /// One 0/1 bit per turn and class (multi-label), `[n, C]`.
    Bits(Tensor<2>),
}

impl Targets {
    /// The targets of the labelled turns `labels`, all of one kind.
    fn new<'l>(labels: impl Iterator<Item = &'l Label>, device: &Device) -> Self {
        let (mut classes, mut bits, mut width) = (Vec::new(), Vec::new(), 0);
        for label in labels {
            match label {
                Label::Single(c) => classes.push(*c as i64),
                Label::Multi(b) => {
                    width = b.len();
                    bits.extend(b.iter().map(|&on| if on { 1.0f32 } else { 0.0 }));
                }
            }
        }
        match bits.len().checked_div(width) {
            Some(n) => Targets::Bits(Tensor::from_data(TensorData::new(bits, [n, width]), device)),
            None => {
                let n = classes.len();
                Targets::Classes(Tensor::from_data(TensorData::new(classes, [n]), device))
            }
        }
    }
}

/// A padded batch plus the rows that carry labels.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Model input.
    pub input: DialogueBatch,
    /// Flat `[b * turns]` rows of labelled turns.
    pub labelled_rows: Tensor<1, Int>,
    /// Their gold labels.
    pub targets: Targets,
    /// Number of labelled turns.
    pub num_labelled: usize,
    /// Which modalities each labelled turn has, `[num_labelled, M]`, 1/0;
    /// `None` when every turn has every modality.
    pub labelled_present: Option<Tensor<2>>,
    /// Per modality, the labelled rows whose turn has it and their gold
    /// labels (for the per-modality heads); `None` when every turn has
    /// every modality (then they are `labelled_rows` and `targets`).
    pub labelled_by_modality: Option<Vec<(Tensor<1, Int>, Targets)>>,
    /// Gold class of every real turn of a single-label set, in the order
    /// the sequence layouts lay them out (dialogue by dialogue); `None` for
    /// unlabelled turns and multi-label sets.
    pub turn_labels: Vec<Option<usize>>,
}

impl EncodedDialogue {
    /// Whether turn `t` has modality `m` (of `modalities`).
    fn has(&self, t: usize, m: usize, modalities: usize) -> bool {
        self.present[t * modalities + m]
    }
}

/// Pads `dialogues` into one batch read as `layout` says.
pub fn make_batch(
    dialogues: &[&EncodedDialogue],
    layout: &FeatureLayout,
    device: &Device,
) -> Batch {
    let turns = dialogues.iter().map(|d| d.len()).max().unwrap_or(1).max(1);
    let b = dialogues.len();
    let modalities = layout.modalities.len();
    let complete = dialogues.iter().all(|d| d.present.iter().all(|&p| p));
    let mut rows = Vec::new();
    let mut targets: Vec<&Label> = Vec::new();
    let mut presence = Vec::new();
    let mut by_modality: Vec<(Vec<i64>, Vec<&Label>)> = vec![(Vec::new(), Vec::new()); modalities];
    for (i, d) in dialogues.iter().enumerate() {
        for (t, label) in d.labels.iter().enumerate() {
            if let Some(label) = label {
                let row = (i * turns + t) as i64;
                rows.push(row);
                targets.push(label);
                for (m, (rows, targets)) in by_modality.iter_mut().enumerate() {
                    let has = d.has(t, m, modalities);
                    presence.push(if has { 1.0f32 } else { 0.0 });
                    if has {
                        rows.push(row);
                        targets.push(label);
                    }
                }
            }
        }
    }
    let labelled_by_modality = (!complete).then(|| {
        by_modality
            .into_iter()
            .map(|(rows, targets)| {
                let n = rows.len();
                (
                    Tensor::from_data(TensorData::new(rows, [n]), device),
                    Targets::new(targets.into_iter(), device),
                )
            })
            .collect()
    });
    let labelled_present = (!complete).then(|| {
        let n = rows.len();
        Tensor::from_data(TensorData::new(presence, [n, modalities]), device)
    });
    let input = if layout.sequences {
        sequence_input(dialogues, turns, layout, !complete, device)
    } else {
        let d_input = layout.d_input();
        let widths = layout.widths();
        let mut features = vec![0f32; b * turns * d_input];
        for (i, d) in dialogues.iter().enumerate() {
            let start = i * turns * d_input;
            features[start..start + d.inputs.len()].copy_from_slice(&d.inputs);
            if complete {
                continue;
            }
            // Early fusion's mask: absent blocks are zero already; scale
            // the present ones by M / present (`fuse_present`'s rule).
            for t in 0..d.len() {
                let count = (0..modalities).filter(|&m| d.has(t, m, modalities)).count();
                let scale = modalities as f32 / count.max(1) as f32;
                let mut offset = start + t * d_input;
                for (m, &width) in widths.iter().enumerate() {
                    if d.has(t, m, modalities) {
                        features[offset..offset + width]
                            .iter_mut()
                            .for_each(|x| *x *= scale);
                    }
                    offset += width;
                }
            }
        }
        UtteranceInput::Pooled(Tensor::from_data(
            TensorData::new(features, [b, turns, d_input]),
            device,
        ))
    };
    let lengths: Vec<usize> = dialogues.iter().map(|d| d.len()).collect();
    let speakers: Vec<Vec<usize>> = dialogues.iter().map(|d| d.speakers.clone()).collect();
    let n = rows.len();
    Batch {
        input: DialogueBatch {
            input,
            turns: SequenceIndex::new(&lengths, turns, device),
            speakers: SpeakerIndex::new(&speakers, turns, device),
        },
        labelled_rows: Tensor::from_data(TensorData::new(rows, [n]), device),
        targets: Targets::new(targets.into_iter(), device),
        num_labelled: n,
        labelled_present,
        labelled_by_modality,
        turn_labels: dialogues
            .iter()
            .flat_map(|d| d.labels.iter().map(|l| l.as_ref().and_then(Label::single)))
            .collect(),
    }
}

/// Per-modality frame tensors of the real turns, in dialogue order, the
/// grid index that places them in the padded `[batch, turns]` layout, and
/// (when `masked`) which modalities each turn has.
fn sequence_input(
    dialogues: &[&EncodedDialogue],
    turns: usize,
    layout: &FeatureLayout,
    masked: bool,
    device: &Device,
) -> UtteranceInput {
    let real: usize = dialogues.iter().map(|d| d.len()).sum();
    let mut grid_rows = vec![real as i64; dialogues.len() * turns];
    let mut next = 0i64;
    for (i, d) in dialogues.iter().enumerate() {
        for t in 0..d.len() {
            grid_rows[i * turns + t] = next;
            next += 1;
        }
    }
    let modalities = layout
        .widths()
        .into_iter()
        .enumerate()
        .map(|(m, width)| {
            let utterances: Vec<&[f32]> = dialogues
                .iter()
                .flat_map(|d| d.frames.iter().map(move |turn| turn[m].as_slice()))
                .collect();
            ModalityFrames::new(&utterances, width, device)
        })
        .collect();
    let n = grid_rows.len();
    let present = masked.then(|| {
        let mask: Vec<f32> = dialogues
            .iter()
            .flat_map(|d| d.present.iter().map(|&p| if p { 1.0 } else { 0.0 }))
            .collect();
        let m = layout.modalities.len();
        Tensor::from_data(TensorData::new(mask, [real, m]), device)
    });
    UtteranceInput::Sequences {
        modalities,
        grid_rows: Tensor::from_data(TensorData::new(grid_rows, [n]), device),
        present,
    }
}
