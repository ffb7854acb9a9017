//! Prediction with a trained model: the emotion of every turn of a user's
//! conversation file, keyed by the user's own dialogue ids and turns.

use std::path::{Path, PathBuf};
use std::time::Instant;

use mmer_core::{Dialogue, LabelSpace};
use mmer_models::EmotionModel;
use mmer_train::{Checkpoint, Prediction};
use serde::Serialize;

use crate::data::{TextFeaturizer, checkpoint_encoder};
use crate::error::{Context, Result};

/// A loaded model (`seed-<k>` directory of a run) with the text encoder
/// its checkpoint names, ready to predict conversations.
#[derive(Debug)]
pub struct Predictor {
    dir: PathBuf,
    checkpoint: Checkpoint,
    model: EmotionModel,
    text: Option<TextFeaturizer>,
}

impl Predictor {
    /// Loads the checkpoint in `dir` (its weights verified against their
    /// recorded SHA-256) and, when it reads text, the encoder it was
    /// trained with, from `$MMER_MODELS_DIR` (else `./models`).
    ///
    /// # Errors
    /// A missing or damaged checkpoint, or an encoder that is not installed.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_with(dir, &mmer_text::default_models_dir())
    }

    /// [`Predictor::load`] with the text encoder taken from `models_dir`.
    ///
    /// # Errors
    /// As [`Predictor::load`].
    pub fn load_with(dir: &Path, models_dir: &Path) -> Result<Self> {
        let (checkpoint, model) = Checkpoint::load_model(dir)
            .with_context(|| format!("loading model {}", dir.display()))?;
        let text = checkpoint_encoder(&checkpoint, dir, models_dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            checkpoint,
            model,
            text,
        })
    }

    /// What the model is ([`ModelSummary`]).
    pub fn summary(&self) -> ModelSummary {
        ModelSummary::new(&self.dir, &self.checkpoint)
    }

    /// The model's checkpoint metadata (label space, layout, training config).
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Predicts every turn of a conversation file (`.jsonl` or `.csv`).
    ///
    /// # Errors
    /// A malformed file (naming file and line), or a turn the model cannot
    /// read or gives a non-finite probability.
    pub fn predict_file(&self, path: &Path) -> Result<Vec<Prediction>> {
        let dialogues = mmer_data::conversation::load_conversations(path, &self.checkpoint.labels)?;
        self.predict(dialogues)
    }

    /// Predicts every turn of `dialogues`, embedding their transcripts first
    /// when the model reads text.
    ///
    /// # Errors
    /// As [`Predictor::predict_file`].
    pub fn predict(&self, mut dialogues: Vec<Dialogue>) -> Result<Vec<Prediction>> {
        let started = Instant::now();
        self.embed(&mut dialogues)?;
        let predictions = self.predict_embedded(&dialogues)?;
        tracing::debug!(
            utterances = predictions.len(),
            milliseconds = started.elapsed().as_secs_f64() * 1e3,
            "predicted (after model load)"
        );
        Ok(predictions)
    }

    /// Embeds the transcripts of `dialogues` into the text modality, when
    /// the model reads text (otherwise leaves them as they are).
    ///
    /// # Errors
    /// The encoder fails on a text.
    pub fn embed(&self, dialogues: &mut [Dialogue]) -> Result<()> {
        if let Some(text) = &self.text {
            text.embed(dialogues)?;
        }
        Ok(())
    }

    /// Embeds the transcripts of the turns `turns` of `dialogue` only (a
    /// live conversation's new turn), the turns around them as context
    /// when the model reads the conversation in its input.
    ///
    /// # Errors
    /// The encoder fails on a text.
    pub fn embed_turns(
        &self,
        dialogue: &mut Dialogue,
        turns: std::ops::Range<usize>,
    ) -> Result<()> {
        if let Some(text) = &self.text {
            text.embed_turns(dialogue, turns)?;
        }
        Ok(())
    }

    /// Predicts dialogues whose features are already in place (see
    /// [`Predictor::embed`]).
    ///
    /// # Errors
    /// A turn the model cannot read, or a non-finite probability.
    pub fn predict_embedded(&self, dialogues: &[Dialogue]) -> Result<Vec<Prediction>> {
        self.checkpoint
            .predict(&self.model, dialogues)
            .with_context(|| format!("predicting with {}", self.dir.display()))
    }
}

/// What a loaded model is, as the server's `GET /info` and the Python
/// package's `Predictor.info` say it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// The model directory, as given.
    pub model_dir: String,
    /// SHA-256 of the model's weights, as the checkpoint records it.
    pub model_sha256: Option<String>,
    /// Corpus the model was trained on.
    pub corpus: String,
    /// The seed of this model.
    pub seed: u64,
    /// The label set: name, classes in output order, multi-label or not.
    pub labels: LabelSpace,
    /// The text encoder that embeds transcripts (`minilm`, …), when the
    /// model reads text.
    pub text_encoder: Option<String>,
    /// The modalities the model reads, in model order.
    pub modalities: Vec<&'static str>,
    /// mmer's version.
    pub version: &'static str,
}

impl ModelSummary {
    /// The summary of `checkpoint`, loaded from `dir`.
    pub fn new(dir: &Path, checkpoint: &Checkpoint) -> Self {
        Self {
            model_dir: dir.display().to_string(),
            model_sha256: checkpoint.weights_sha256.clone(),
            corpus: checkpoint.corpus.clone(),
            seed: checkpoint.seed,
            labels: checkpoint.labels.clone(),
            text_encoder: checkpoint.text_encoder.clone(),
            modalities: checkpoint
                .layout
                .modalities
                .iter()
                .map(|(m, _)| m.as_str())
                .collect(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}
