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

use crate::blocks::{ContextBlock, ContextBlockConfig, SequenceIndex, SpeakerIndex};

/// How much conversational context the model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextMode {
    /// Each utterance alone (MLP baseline).
    None,
    /// Dialogue-level Bi-LSTM only (ablation).
    Dialogue,
    /// Dialogue-level + speaker-level Bi-LSTM (AMuSE).
    DialogueSpeaker,
}

/// A padded batch of dialogues, ready for the model.
#[derive(Debug, Clone)]
pub struct DialogueBatch {
    /// Utterance features, right-padded.
    /// Shape `[batch, turns, d_input]`.
    pub features: Tensor<3>,
    /// Dialogue lengths and the within-length reversal.
    pub turns: SequenceIndex,
    /// Speaker sequences for the speaker-level stream.
    pub speakers: SpeakerIndex,
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
}

/// Utterance MLP or AMuSE context model, by [`ContextMode`].
#[derive(Module, Debug)]
pub struct ErcModel {
    input_dropout: Dropout,
    utterance: Linear,
    context: Option<ContextBlock>,
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
    /// `batch.features`: `[batch, turns, d_input]` → `[batch, turns, num_classes]`
    pub fn forward(&self, batch: &DialogueBatch) -> Tensor<3> {
        let x = self.input_dropout.forward(batch.features.clone());
        let utterance_repr = relu(self.utterance.forward(x)); // [b, t, d_model]
        let head_in = match &self.context {
            Some(context) => {
                let ctx = context.forward(utterance_repr.clone(), &batch.turns, &batch.speakers); // [b, t, 4h]
                Tensor::cat(vec![utterance_repr, ctx], 2) // [b, t, d_model + 4h]
            }
            None => utterance_repr,
        };
        let hidden = self
            .hidden_dropout
            .forward(relu(self.hidden.forward(head_in))); // [b, t, d_model]
        self.output.forward(hidden) // [b, t, classes]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{LossKind, classification_loss};
    use burn::module::{ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Distribution, Int, TensorData};

    fn batch(device: &Device) -> DialogueBatch {
        let speakers = vec![vec![0, 1, 0, 1, 1], vec![3, 3, 2]];
        DialogueBatch {
            features: Tensor::random([2, 5, 6], Distribution::Normal(0.0, 1.0), device),
            turns: SequenceIndex::new(&[5, 3], 5, device),
            speakers: SpeakerIndex::new(&speakers, 5, device),
        }
    }

    #[test]
    fn shapes_for_every_context_mode_and_length_one() {
        let device = Device::default();
        for mode in [
            ContextMode::None,
            ContextMode::Dialogue,
            ContextMode::DialogueSpeaker,
        ] {
            let model = ErcModelConfig::new(6, 7).with_context(mode).init(&device);
            assert_eq!(model.forward(&batch(&device)).dims(), [2, 5, 7]);
            let single = DialogueBatch {
                features: Tensor::random([1, 1, 6], Distribution::Default, &device),
                turns: SequenceIndex::new(&[1], 1, &device),
                speakers: SpeakerIndex::new(&[vec![0]], 1, &device),
            };
            assert_eq!(model.forward(&single).dims(), [1, 1, 7]);
        }
    }

    /// Counts parameters whose gradient is missing or all zero.
    struct DeadParams<'a> {
        grads: &'a GradientsParams,
        dead: Vec<String>,
        seen: usize,
    }

    impl ModuleVisitor for DeadParams<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.seen += 1;
            let alive = self
                .grads
                .get::<D>(param.id)
                .map(|g| g.abs().sum().into_scalar::<f32>() > 0.0)
                .unwrap_or(false);
            if !alive {
                self.dead
                    .push(format!("{:?} {:?}", param.id, param.shape()));
            }
        }
    }

    /// methods-detail §1.4 bug 1: the authors' speaker stream never got data.
    #[test]
    fn speaker_stream_receives_gradient() {
        let device = Device::default().autodiff();
        device.seed(3);
        let model = ErcModelConfig::new(6, 4).with_dropout(0.0).init(&device);
        let logits = model.forward(&batch(&device)); // [2, 5, 4]
        let flat = logits.reshape([10, 4]);
        let valid = Tensor::<1, Int>::from_data(
            TensorData::new(vec![0i64, 1, 2, 3, 4, 5, 6, 7], [8]),
            &device,
        );
        let targets = Tensor::<1, Int>::from_data(
            TensorData::new(vec![0i64, 1, 2, 3, 0, 1, 2, 3], [8]),
            &device,
        );
        let loss = classification_loss(flat.select(0, valid), targets, None, LossKind::default());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut visitor = DeadParams {
            grads: &grads,
            dead: Vec::new(),
            seen: 0,
        };
        model.visit(&mut visitor);
        assert!(
            visitor.seen >= 12,
            "only {} parameters visited",
            visitor.seen
        );
        assert!(
            visitor.dead.is_empty(),
            "parameters without gradient: {:?}",
            visitor.dead
        );
    }
}
