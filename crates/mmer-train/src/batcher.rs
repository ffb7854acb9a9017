//! From dialogues to padded tensor batches.
//!
//! [`FeatureLayout`] fixes which modalities the model reads, their widths,
//! whether it reads frame sequences or mean-pooled vectors, and the z-score
//! statistics — fitted on the training split only and saved with the
//! checkpoint, so valid/test/predict inputs are scaled exactly as training
//! inputs were.

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

fn utterance_modality(u: &Utterance, m: Modality) -> Result<&mmer_core::Features> {
    u.features.get(&m).ok_or_else(|| Error::MissingModality {
        utterance: u.id.clone(),
        modality: m,
        available: u
            .features
            .keys()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

impl FeatureLayout {
    /// Fits widths and statistics on training dialogues.
    ///
    /// # Errors
    /// No modalities requested, no training utterance, a missing modality,
    /// an empty sequence or a non-finite value.
    pub fn fit(train: &[Dialogue], modalities: &[Modality], sequences: bool) -> Result<Self> {
        if modalities.is_empty() {
            return Err(Error::Data("no input modalities configured".into()));
        }
        let first = train
            .iter()
            .flat_map(|d| d.utterances.first())
            .next()
            .ok_or_else(|| Error::Data("the training split has no utterances".into()))?;
        let widths = modalities
            .iter()
            .map(|&m| Ok((m, utterance_modality(first, m)?.dim)))
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
        for u in train.iter().flat_map(|d| &d.utterances) {
            if sequences {
                let mut offset = 0;
                for (k, frames) in layout.raw_frames(u)?.into_iter().enumerate() {
                    let width = layout.modalities[k].1;
                    for frame in frames.chunks(width) {
                        add(offset, frame);
                    }
                    counts[k] += frames.len() / width;
                    offset += width;
                }
            } else {
                add(0, &layout.raw_vector(u)?);
                counts.iter_mut().for_each(|c| *c += 1);
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

    /// Checked raw features of each modality of `u`, in layout order.
    fn checked_features<'u>(&self, u: &'u Utterance) -> Result<Vec<&'u mmer_core::Features>> {
        self.modalities
            .iter()
            .map(|&(m, width)| {
                let f = utterance_modality(u, m)?;
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
                Ok(f)
            })
            .collect()
    }

    /// Raw frames of every modality, each flattened `[frames * width]`.
    fn raw_frames<'u>(&self, u: &'u Utterance) -> Result<Vec<&'u [f32]>> {
        Ok(self
            .checked_features(u)?
            .into_iter()
            .map(|f| f.data.as_slice())
            .collect())
    }

    /// Width of the concatenated input.
    pub fn d_input(&self) -> usize {
        self.modalities.iter().map(|(_, w)| w).sum()
    }

    fn raw_vector(&self, u: &Utterance) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.d_input());
        for f in self.checked_features(u)? {
            out.extend(f.mean_pooled());
        }
        Ok(out)
    }

    /// The normalised frames of each modality of one utterance, each
    /// flattened `[frames * width]`.
    ///
    /// # Errors
    /// As [`FeatureLayout::vector`], plus empty sequences.
    pub fn frames(&self, u: &Utterance) -> Result<Vec<Vec<f32>>> {
        let mut offset = 0;
        let mut out = Vec::with_capacity(self.modalities.len());
        for (raw, &(_, width)) in self.raw_frames(u)?.into_iter().zip(&self.modalities) {
            let mean = &self.mean[offset..offset + width];
            let std = &self.std[offset..offset + width];
            out.push(
                raw.chunks(width)
                    .flat_map(|frame| {
                        frame
                            .iter()
                            .zip(mean)
                            .zip(std)
                            .map(|((x, m), s)| (x - m) / s)
                    })
                    .collect(),
            );
            offset += width;
        }
        Ok(out)
    }

    /// Width of each modality, in model order.
    pub fn widths(&self) -> Vec<usize> {
        self.modalities.iter().map(|&(_, w)| w).collect()
    }

    /// The normalised model input of one utterance.
    ///
    /// # Errors
    /// A missing modality or a width that differs from training.
    pub fn vector(&self, u: &Utterance) -> Result<Vec<f32>> {
        let mut v = self.raw_vector(u)?;
        for ((x, m), s) in v.iter_mut().zip(&self.mean).zip(&self.std) {
            *x = (*x - m) / s;
        }
        Ok(v)
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
    /// Speaker index per turn (order of first appearance).
    pub speakers: Vec<usize>,
    /// Gold class per turn, when labelled.
    pub labels: Vec<Option<usize>>,
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
/// Empty dialogues, missing modalities, mismatched widths, multi-label labels.
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
            let mut speakers = Vec::with_capacity(d.utterances.len());
            let mut labels = Vec::with_capacity(d.utterances.len());
            for u in &d.utterances {
                if layout.sequences {
                    frames.push(layout.frames(u)?);
                } else {
                    inputs.extend(layout.vector(u)?);
                }
                speakers.push(names.iter().position(|s| *s == u.speaker).unwrap_or(0));
                labels.push(match &u.label {
                    None => None,
                    Some(Label::Single(c)) => Some(*c),
                    Some(Label::Multi(_)) => {
                        return Err(Error::Data(format!(
                            "utterance {} has a multi-label target; this model is single-label",
                            u.id
                        )));
                    }
                });
            }
            Ok(EncodedDialogue {
                id: d.id.clone(),
                inputs,
                frames,
                speakers,
                labels,
            })
        })
        .collect()
}

/// A padded batch plus the rows that carry labels.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Model input.
    pub input: DialogueBatch,
    /// Flat `[b * turns]` rows of labelled turns.
    pub labelled_rows: Tensor<1, Int>,
    /// Their gold classes.
    pub targets: Tensor<1, Int>,
    /// Number of labelled turns.
    pub num_labelled: usize,
}

/// Pads `dialogues` into one batch read as `layout` says.
pub fn make_batch(
    dialogues: &[&EncodedDialogue],
    layout: &FeatureLayout,
    device: &Device,
) -> Batch {
    let turns = dialogues.iter().map(|d| d.len()).max().unwrap_or(1).max(1);
    let b = dialogues.len();
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (i, d) in dialogues.iter().enumerate() {
        for (t, label) in d.labels.iter().enumerate() {
            if let Some(c) = label {
                rows.push((i * turns + t) as i64);
                targets.push(*c as i64);
            }
        }
    }
    let input = if layout.sequences {
        sequence_input(dialogues, turns, layout, device)
    } else {
        let d_input = layout.d_input();
        let mut features = vec![0f32; b * turns * d_input];
        for (i, d) in dialogues.iter().enumerate() {
            let start = i * turns * d_input;
            features[start..start + d.inputs.len()].copy_from_slice(&d.inputs);
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
        targets: Tensor::from_data(TensorData::new(targets, [n]), device),
        num_labelled: n,
    }
}

/// Per-modality frame tensors of the real turns, in dialogue order, and the
/// grid index that places them in the padded `[batch, turns]` layout.
fn sequence_input(
    dialogues: &[&EncodedDialogue],
    turns: usize,
    layout: &FeatureLayout,
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
    UtteranceInput::Sequences {
        modalities,
        grid_rows: Tensor::from_data(TensorData::new(grid_rows, [n]), device),
    }
}
