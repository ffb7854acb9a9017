//! Emotion recognition in conversation over utterance feature vectors.
//!
//! `input → dropout → Linear → ReLU` gives an utterance representation `u`;
//! with context, the AMuSE context block (thesis §3.1.4) adds the dialogue
//! and speaker streams, `e = u ⊕ d ⊕ s`; a two-layer head maps `e` to class
//! logits. Without context this is the utterance-only MLP baseline.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::blocks::{ContextBlock, ContextBlockConfig, SequenceIndex, SpeakerIndex, dropout};

/// How much conversational context the model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum ContextMode {
    /// Each utterance alone (MLP baseline).
    None,
    /// Dialogue-level Bi-LSTM only (ablation).
    Dialogue,
    /// Dialogue-level + speaker-level Bi-LSTM (AMuSE).
    #[cfg_attr(feature = "clap", value(alias = "dialogue_speaker"))]
    DialogueSpeaker,
}

/// Configuration of [`ErcModel`].
#[derive(Config, Debug)]
pub struct ErcModelConfig {
    /// Width of the input utterance features.
    pub d_input: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Context streams.
    #[config(default = "ContextMode::DialogueSpeaker")]
    pub context: ContextMode,
    /// Width of the utterance representation and of the head's hidden layer.
    #[config(default = 256)]
    pub d_model: usize,
    /// Hidden width per direction of the context LSTMs (thesis: 100).
    #[config(default = 100)]
    pub d_hidden: usize,
    /// Dropout on the input and hidden layers.
    #[config(default = 0.3)]
    pub dropout: f64,
    /// Dropout on the context streams' output (0 = none, the foundation
    /// model); regularises the context LSTMs, which can memorise small
    /// training sets.
    #[config(default = 0.0)]
    pub context_dropout: f64,
}

/// Utterance MLP or AMuSE context model, by [`ContextMode`].
#[derive(Module, Debug)]
pub struct ErcModel {
    input_dropout: Dropout,
    utterance: Linear,
    context: Option<ContextBlock>,
    context_dropout: Dropout,
    hidden: Linear,
    hidden_dropout: Dropout,
    output: Linear,
}

impl ErcModelConfig {
    fn context_config(&self) -> Option<ContextBlockConfig> {
        let speaker = match self.context {
            ContextMode::None => return None,
            ContextMode::Dialogue => false,
            ContextMode::DialogueSpeaker => true,
        };
        Some(
            ContextBlockConfig::new(self.d_model)
                .with_d_hidden(self.d_hidden)
                .with_speaker(speaker),
        )
    }

    /// Builds the model.
    pub fn init(&self, device: &Device) -> ErcModel {
        let context = self.context_config();
        let d_head_in = self.d_model + context.as_ref().map_or(0, ContextBlockConfig::d_output);
        ErcModel {
            input_dropout: DropoutConfig::new(self.dropout).init(),
            utterance: LinearConfig::new(self.d_input, self.d_model).init(device),
            context: context.map(|c| c.init(device)),
            context_dropout: DropoutConfig::new(self.context_dropout).init(),
            hidden: LinearConfig::new(d_head_in, self.d_model).init(device),
            hidden_dropout: DropoutConfig::new(self.dropout).init(),
            output: LinearConfig::new(self.d_model, self.num_classes).init(device),
        }
    }
}

impl ErcModel {
    /// Class logits for every turn (padded turns included; mask them).
    ///
    /// # Shapes
    /// `utterances`: `[batch, turns, d_input]` → `[batch, turns, num_classes]`
    pub fn forward(
        &self,
        utterances: Tensor<3>,
        turns: &SequenceIndex,
        speakers: &SpeakerIndex,
    ) -> Tensor<3> {
        let x = dropout(&self.input_dropout, utterances);
        let utterance_repr = relu(self.utterance.forward(x)); // [b, t, d_model]
        let head_in = match &self.context {
            Some(context) => {
                let ctx = dropout(
                    &self.context_dropout,
                    context.forward(utterance_repr.clone(), turns, speakers),
                ); // [b, t, 4h]
                Tensor::cat(vec![utterance_repr, ctx], 2) // [b, t, d_model + 4h]
            }
            None => utterance_repr,
        };
        let hidden = dropout(&self.hidden_dropout, relu(self.hidden.forward(head_in))); // [b, t, d_model]
        self.output.forward(hidden) // [b, t, classes]
    }
}
