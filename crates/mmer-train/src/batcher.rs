//! From dialogues to padded tensor batches.
//!
//! [`FeatureLayout`] fixes which modalities are concatenated, their widths
//! and the z-score statistics — fitted on the training split only and saved
//! with the checkpoint, so valid/test/predict inputs are scaled exactly as
//! training inputs were.

use burn::tensor::{Device, Int, Tensor, TensorData};
use mmer_core::{Dialogue, Label, Modality, Utterance};
use mmer_models::DialogueBatch;
use mmer_models::blocks::{SequenceIndex, SpeakerIndex};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Input layout of a model: modalities, widths and normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureLayout {
    /// Modalities in concatenation order with their widths.
    pub modalities: Vec<(Modality, usize)>,
    /// Per-dimension training mean.
    pub mean: Vec<f32>,
    /// Per-dimension training standard deviation (floored at 1e-6).
    pub std: Vec<f32>,
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
    /// No modalities requested, no training utterance, or a missing modality.
    pub fn fit(train: &[Dialogue], modalities: &[Modality]) -> Result<Self> {
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
        };
        let d = layout.d_input();
        let (mut sum, mut sq, mut n) = (vec![0f64; d], vec![0f64; d], 0usize);
        for u in train.iter().flat_map(|d| &d.utterances) {
            let v = layout.raw_vector(u)?;
            for (i, x) in v.iter().enumerate() {
                sum[i] += *x as f64;
                sq[i] += (*x as f64) * (*x as f64);
            }
            n += 1;
        }
        let n = n.max(1) as f64;
        layout.mean = sum.iter().map(|s| (s / n) as f32).collect();
        layout.std = sum
            .iter()
            .zip(&sq)
            .map(|(s, q)| ((q / n - (s / n).powi(2)).max(0.0).sqrt() as f32).max(1e-6))
            .collect();
        Ok(layout)
    }

    /// Width of the concatenated input.
    pub fn d_input(&self) -> usize {
        self.modalities.iter().map(|(_, w)| w).sum()
    }

    fn raw_vector(&self, u: &Utterance) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.d_input());
        for &(m, width) in &self.modalities {
            let f = utterance_modality(u, m)?;
            if f.dim != width {
                return Err(Error::WidthMismatch {
                    utterance: u.id.clone(),
                    modality: m,
                    expected: width,
                    got: f.dim,
                });
            }
            out.extend(f.mean_pooled());
        }
        Ok(out)
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
    /// Normalised input per turn, flattened `[turns * d_input]`.
    pub inputs: Vec<f32>,
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
            let mut inputs = Vec::with_capacity(d.utterances.len() * layout.d_input());
            let mut speakers = Vec::with_capacity(d.utterances.len());
            let mut labels = Vec::with_capacity(d.utterances.len());
            for u in &d.utterances {
                inputs.extend(layout.vector(u)?);
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

/// Pads `dialogues` into one batch.
pub fn make_batch(dialogues: &[&EncodedDialogue], d_input: usize, device: &Device) -> Batch {
    let turns = dialogues.iter().map(|d| d.len()).max().unwrap_or(1).max(1);
    let b = dialogues.len();
    let mut features = vec![0f32; b * turns * d_input];
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (i, d) in dialogues.iter().enumerate() {
        let start = i * turns * d_input;
        features[start..start + d.inputs.len()].copy_from_slice(&d.inputs);
        for (t, label) in d.labels.iter().enumerate() {
            if let Some(c) = label {
                rows.push((i * turns + t) as i64);
                targets.push(*c as i64);
            }
        }
    }
    let lengths: Vec<usize> = dialogues.iter().map(|d| d.len()).collect();
    let speakers: Vec<Vec<usize>> = dialogues.iter().map(|d| d.speakers.clone()).collect();
    let n = rows.len();
    Batch {
        input: DialogueBatch {
            features: Tensor::from_data(TensorData::new(features, [b, turns, d_input]), device),
            turns: SequenceIndex::new(&lengths, turns, device),
            speakers: SpeakerIndex::new(&speakers, turns, device),
        },
        labelled_rows: Tensor::from_data(TensorData::new(rows, [n]), device),
        targets: Tensor::from_data(TensorData::new(targets, [n]), device),
        num_labelled: n,
    }
}
