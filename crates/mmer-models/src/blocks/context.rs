//! Dialogue-level and speaker-level context (AMuSE context, thesis §3.1.4;
//! DESIGN §3): `e_l = s_l ⊕ d_l`, where `d_l = BiLSTM_d` over the whole
//! utterance sequence and `s_l = BiLSTM_s` over the utterances of the
//! speaker of turn `l` only, scattered back to their turns.
//!
//! Not reproduced: the authors' `dcrn.py:215` inverted condition that left
//! the speaker stream all zeros (methods-detail §1.4 bug 1). The
//! `speaker_stream_receives_gradient` test pins the fix.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::bilstm::{MaskedBiLstm, MaskedBiLstmConfig, SequenceIndex};

/// Where each speaker's utterances sit in a padded `[batch, turns]` grid.
///
/// Speaker sequences are gathered from the flattened grid plus one extra
/// all-zero row (index `batch * turns`) that fills their padding, then
/// scattered back with a second gather.
#[derive(Debug, Clone)]
pub struct SpeakerIndex {
    /// `[num_seqs * max_len]` rows of the extended flat grid.
    gather: Tensor<1, Int>,
    /// `[batch * turns]` rows of the flat speaker output per turn.
    scatter: Tensor<1, Int>,
    /// Reversal index of the speaker sequences.
    sequences: SequenceIndex,
}

impl SpeakerIndex {
    /// Builds the index from per-dialogue speaker ids (`speakers[b][t]`,
    /// any integers; equal ids within a dialogue are the same speaker).
    /// Dialogues shorter than `turns` are right-padded.
    pub fn new(speakers: &[Vec<usize>], turns: usize, device: &Device) -> Self {
        let batch = speakers.len();
        let pad_row = (batch * turns) as i64;
        // Each speaker sequence: the flat grid rows of its turns, in order.
        let mut sequences: Vec<Vec<usize>> = Vec::new();
        let mut position = vec![(0usize, 0usize); batch * turns];
        for (b, dialogue) in speakers.iter().enumerate() {
            let mut ids: Vec<usize> = Vec::new();
            let first_seq = sequences.len();
            for (t, &speaker) in dialogue.iter().enumerate().take(turns) {
                let k = match ids.iter().position(|&s| s == speaker) {
                    Some(k) => k,
                    None => {
                        ids.push(speaker);
                        sequences.push(Vec::new());
                        ids.len() - 1
                    }
                };
                let seq = first_seq + k;
                position[b * turns + t] = (seq, sequences[seq].len());
                sequences[seq].push(b * turns + t);
            }
        }
        let max_len = sequences.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut gather = vec![pad_row; sequences.len().max(1) * max_len];
        for (s, rows) in sequences.iter().enumerate() {
            for (k, &row) in rows.iter().enumerate() {
                gather[s * max_len + k] = row as i64;
            }
        }
        let scatter: Vec<i64> = position
            .iter()
            .map(|&(s, k)| (s * max_len + k) as i64)
            .collect();
        let mut lengths: Vec<usize> = sequences.iter().map(Vec::len).collect();
        if lengths.is_empty() {
            lengths.push(0);
        }
        let (g, sc) = (gather.len(), scatter.len());
        Self {
            gather: Tensor::from_data(TensorData::new(gather, [g]), device),
            scatter: Tensor::from_data(TensorData::new(scatter, [sc]), device),
            sequences: SequenceIndex::new(&lengths, max_len, device),
        }
    }

    /// Number of speaker sequences in the batch.
    pub fn num_sequences(&self) -> usize {
        self.sequences.lengths.len()
    }
}

/// Configuration of [`ContextBlock`].
#[derive(Config, Debug)]
pub struct ContextBlockConfig {
    /// Width of the utterance representations fed in.
    pub d_input: usize,
    /// Hidden width per direction of both LSTMs (thesis / code: 100).
    #[config(default = 100)]
    pub d_hidden: usize,
    /// Whether to run the speaker-level stream (off = dialogue context only,
    /// an ablation row).
    #[config(default = true)]
    pub speaker: bool,
}

/// Dialogue + speaker context of AMuSE.
#[derive(Module, Debug)]
pub struct ContextBlock {
    dialogue: MaskedBiLstm,
    speaker: Option<MaskedBiLstm>,
}

impl ContextBlockConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> ContextBlock {
        let lstm = MaskedBiLstmConfig::new(self.d_input, self.d_hidden);
        ContextBlock {
            dialogue: lstm.init(device),
            speaker: self.speaker.then(|| lstm.init(device)),
        }
    }

    /// Output width: `2 * d_hidden` per bidirectional stream.
    pub fn d_output(&self) -> usize {
        if self.speaker {
            4 * self.d_hidden
        } else {
            2 * self.d_hidden
        }
    }
}

impl ContextBlock {
    /// `[dialogue context ; speaker context]` per turn.
    ///
    /// # Shapes
    /// `utterances`: `[batch, turns, d_input]` → `[batch, turns, d_output]`
    pub fn forward(
        &self,
        utterances: Tensor<3>,
        turns: &SequenceIndex,
        speakers: &SpeakerIndex,
    ) -> Tensor<3> {
        let [batch, len, d] = utterances.dims();
        let dialogue_ctx = self.dialogue.forward(utterances.clone(), turns); // [b, t, 2h]
        let Some(speaker) = &self.speaker else {
            return dialogue_ctx;
        };

        let device = utterances.device();
        let flat = Tensor::cat(
            vec![
                utterances.reshape([batch * len, d]),
                Tensor::zeros([1, d], &device),
            ],
            0,
        ); // [b*t + 1, d]
        let seqs = speakers.num_sequences();
        let max_len = speakers.sequences.max_len;
        let speaker_in = flat
            .select(0, speakers.gather.clone())
            .reshape([seqs, max_len, d]); // [s, l, d]
        let speaker_out = speaker.forward(speaker_in, &speakers.sequences); // [s, l, 2h]
        let width = speaker_out.dims()[2];
        let speaker_ctx = speaker_out
            .reshape([seqs * max_len, width])
            .select(0, speakers.scatter.clone())
            .reshape([batch, len, width]); // [b, t, 2h]
        Tensor::cat(vec![dialogue_ctx, speaker_ctx], 2) // [b, t, 4h]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn speaker_context_depends_only_on_own_turns() {
        let device = Device::default();
        device.seed(1);
        let block = ContextBlockConfig::new(3).with_d_hidden(4).init(&device);
        let speakers = vec![vec![0, 1, 0, 1]];
        let x = Tensor::<3>::random([1, 4, 3], Distribution::Normal(0.0, 1.0), &device);
        let turns = SequenceIndex::new(&[4], 4, &device);
        let index = SpeakerIndex::new(&speakers, 4, &device);
        let base = block.forward(x.clone(), &turns, &index);
        // Change speaker 1's turn 3: speaker 0's speaker-context must not move.
        let bumped = x.slice_assign([0..1, 3..4, 0..3], Tensor::ones([1, 1, 3], &device));
        let moved = block.forward(bumped, &turns, &index);
        let spk = |t: Tensor<3>, turn: usize| t.slice([0..1, turn..turn + 1, 8..16]).into_data();
        spk(base.clone(), 0).assert_approx_eq::<f32>(&spk(moved.clone(), 0), Default::default());
        spk(base.clone(), 2).assert_approx_eq::<f32>(&spk(moved.clone(), 2), Default::default());
        let diff: f32 = (base.slice([0..1, 1..2, 8..16]) - moved.slice([0..1, 1..2, 8..16]))
            .abs()
            .sum()
            .into_scalar();
        assert!(
            diff > 1e-6,
            "speaker 1's earlier turn sees its later turn backwards"
        );
    }

    #[test]
    fn speaker_index_shapes_for_uneven_batch() {
        let device = Device::default();
        let index = SpeakerIndex::new(&[vec![0, 0, 1], vec![5]], 3, &device);
        assert_eq!(index.num_sequences(), 3);
        assert_eq!(index.sequences.max_len, 2);
    }
}
