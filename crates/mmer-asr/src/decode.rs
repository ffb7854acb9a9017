//! Greedy decoding with timestamps, and the 30 s window loop that turns a
//! recording into timed segments.
//!
//! Follows Whisper's reference decoding as CTranslate2 and faster-whisper run
//! it with beam size 1 and temperature 0, so mmer's transcript equals theirs
//! (the parity test checks token for token):
//! - suppressed tokens (the model's list) at every step, blank and
//!   end-of-text at the first;
//! - timestamp rules (CTranslate2 4.8): the first token is a timestamp no
//!   later than 1 s; timestamps come in pairs except right before
//!   end-of-text; a pair repeats one time (`<|t|><|t|>`), and the timestamp
//!   after a segment's text is later than the one before it; when the
//!   timestamps' total probability beats every text token, a timestamp is
//!   taken;
//! - a window whose no-speech probability exceeds 0.6 while its average log
//!   probability is below −1 is silence and yields no segment;
//! - consecutive timestamps split a window into segments; the next window
//!   starts at the last complete segment's end.
//!
//! Not done (faster-whisper's defaults that need sampling or carry state):
//! temperature fallback on repetitive output, conditioning on the previous
//! window's text, voice-activity filtering. Each window is decoded on its own.

use candle_core::{IndexOp, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mel::{SECONDS_PER_FRAME, WINDOW_FRAMES};
use crate::model::Whisper;
use crate::net::DecoderState;

/// Seconds per timestamp token.
const TIME_PRECISION: f64 = 0.02;
/// Mel frames per encoder position (the second convolution has stride 2).
const INPUT_STRIDE: usize = 2;

/// Decoding settings; the defaults are Whisper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeOptions {
    /// Language code for multilingual models (ignored by `.en` models).
    pub language: String,
    /// Latest time the first timestamp may take, seconds.
    pub max_initial_timestamp_s: f64,
    /// A window is silence when its no-speech probability is above this …
    pub no_speech_threshold: f32,
    /// … and its average token log probability below this.
    pub log_prob_threshold: f32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            language: "en".into(),
            max_initial_timestamp_s: 1.0,
            no_speech_threshold: 0.6,
            log_prob_threshold: -1.0,
        }
    }
}

/// One decoded 30 s window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowDecode {
    /// Generated tokens (text and timestamps), without end-of-text.
    pub tokens: Vec<u32>,
    /// Sum of the chosen tokens' log probabilities, end-of-text included.
    pub sum_logprob: f64,
    /// Probability of the no-speech token at the first step.
    pub no_speech_prob: f32,
}

/// A stretch of speech with its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Start, seconds from the beginning of the recording.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
    /// The recognised text, trimmed.
    pub text: String,
    /// Average log probability of the window's tokens (a confidence).
    pub avg_logprob: f64,
    /// The window's no-speech probability.
    pub no_speech_prob: f32,
}

/// A recording's transcription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The Whisper model that produced it.
    pub model: String,
    /// Duration of the audio, seconds.
    pub duration_s: f64,
    /// Segments in time order.
    pub segments: Vec<Segment>,
    /// 30 s windows judged to be silence (no-speech rule).
    pub silent_windows: usize,
}

impl Whisper {
    /// The log-mel spectrogram of 16 kHz samples (see [`crate::mel`]).
    ///
    /// # Errors
    /// [`Error::NonFiniteSample`] for NaN or infinite samples.
    pub fn log_mel(&self, samples: &[f32]) -> Result<crate::mel::LogMel> {
        if let Some((index, &value)) = samples.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFiniteSample { index, value });
        }
        Ok(self.mel.compute(samples))
    }

    /// Encodes one 30 s window of mel frames.
    ///
    /// # Shapes
    /// `window: [80 × 3000]` (mel-major) → `[1, 1500, d_model]`.
    pub fn encode(&self, window: &[f32]) -> Result<Tensor> {
        let n_mels = window.len() / WINDOW_FRAMES;
        let mel = Tensor::from_slice(window, (1, n_mels, WINDOW_FRAMES), &self.device)?;
        Ok(self.net.encode(&mel)?)
    }

    /// The prompt that starts a window: `<|startoftranscript|>`, then on
    /// multilingual models the language and `<|transcribe|>`.
    pub fn prompt(&self, options: &DecodeOptions) -> Result<Vec<u32>> {
        let mut prompt = vec![self.tokens.sot];
        if let Some(transcribe) = self.tokens.transcribe {
            prompt.push(self.language_token(&options.language)?);
            prompt.push(transcribe);
        }
        Ok(prompt)
    }

    /// Feeds `tokens` and returns the logits after the last one.
    ///
    /// # Shapes
    /// `tokens: [t]` → `[vocab]`.
    fn next_logits(&self, state: &mut DecoderState, tokens: &[u32]) -> Result<Vec<f32>> {
        let hidden = self.net.decode(state, tokens)?;
        let last = hidden.i((0, tokens.len() - 1..))?;
        Ok(self.net.logits(&last)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Greedy decoding of one encoded window, with timestamps.
    pub fn decode_window(&self, audio: &Tensor, options: &DecodeOptions) -> Result<WindowDecode> {
        let prompt = self.prompt(options)?;
        let max_initial = self.tokens.timestamp_begin as usize
            + (options.max_initial_timestamp_s / TIME_PRECISION).round() as usize;
        // Half the decoder's context, as CTranslate2 allows.
        let max_tokens = self.net.config.max_target_positions / 2;
        let mut state = self.net.start(audio)?;
        let mut feed = prompt;
        let mut generated: Vec<u32> = Vec::new();
        let mut sum_logprob = 0.0f64;
        let mut no_speech_prob = 0.0f32;
        for step in 0..max_tokens {
            let mut logits = self.next_logits(&mut state, &feed)?;
            if step == 0 {
                no_speech_prob = softmax_at(&logits, self.tokens.no_speech as usize);
            }
            self.apply_rules(&mut logits, &generated, max_initial);
            let next = argmax(&logits);
            sum_logprob += f64::from(log_softmax_at(&logits, next));
            if next == self.tokens.eot as usize {
                break;
            }
            let next = next as u32;
            generated.push(next);
            feed = vec![next];
        }
        Ok(WindowDecode {
            tokens: generated,
            sum_logprob,
            no_speech_prob,
        })
    }

    /// CTranslate2's logits processing for step `generated.len()`.
    fn apply_rules(&self, logits: &mut [f32], generated: &[u32], max_initial: usize) {
        let t = &self.tokens;
        let (eot, ts_begin) = (t.eot as usize, t.timestamp_begin as usize);
        let end = logits.len().min(self.vocab_size);
        let disable = |range: std::ops::Range<usize>, logits: &mut [f32]| {
            for v in &mut logits[range.start.min(end)..range.end.min(end)] {
                *v = f32::NEG_INFINITY;
            }
        };
        for &id in &self.suppress {
            disable(id as usize..id as usize + 1, logits);
        }
        disable(
            t.no_timestamps as usize..t.no_timestamps as usize + 1,
            logits,
        );
        let step = generated.len();
        if step == 0 {
            for &id in &self.begin_suppress {
                disable(id as usize..id as usize + 1, logits);
            }
            disable(0..ts_begin, logits);
            disable(max_initial + 1..end, logits);
            return;
        }
        let last = generated[step - 1] as usize;
        let mut check_timestamp_mass = true;
        if last >= ts_begin {
            let penultimate = if step >= 2 {
                generated[step - 2] as usize
            } else {
                last
            };
            if penultimate >= ts_begin {
                // A pair just closed: text (or end-of-text) comes next.
                disable(ts_begin..end, logits);
                check_timestamp_mass = false;
            } else {
                // Text then a timestamp: the pair's second timestamp (equal,
                // opening the next segment) or end-of-text.
                disable(0..eot, logits);
                disable(ts_begin..last, logits);
            }
        } else if let Some(&last_ts) = generated.iter().rev().find(|&&id| id as usize >= ts_begin) {
            // After text, time moves on: a segment has non-zero length.
            disable(ts_begin..last_ts as usize + 1, logits);
        }
        if check_timestamp_mass {
            let (text, stamps) = logits[..end].split_at(ts_begin);
            let max_text = text.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if log_sum_exp(stamps) > max_text {
                disable(0..ts_begin, logits);
            }
        }
    }

    /// Teacher-forced probabilities of `text` tokens after
    /// `prompt + <|notimestamps|>`: at each position, the softmax over the
    /// text vocabulary (ids below end-of-text) of the next token. What
    /// CTranslate2's `align` reports; the parity test compares the two.
    pub fn text_token_probs(
        &self,
        audio: &Tensor,
        prompt: &[u32],
        text: &[u32],
    ) -> Result<Vec<f32>> {
        let mut input = prompt.to_vec();
        input.push(self.tokens.no_timestamps);
        input.extend_from_slice(text);
        let mut state = self.net.start(audio)?;
        let hidden = self.net.decode(&mut state, &input)?;
        let logits = self.net.logits(&hidden.squeeze(0)?)?;
        let eot = self.tokens.eot as usize;
        // Row prompt.len() + k (fed <|notimestamps|> or text[k - 1]) predicts text[k].
        let mut probs = Vec::with_capacity(text.len());
        for (k, &target) in text.iter().enumerate() {
            let row = logits.i(prompt.len() + k)?.to_vec1::<f32>()?;
            let text_row = &row[..eot];
            let p = match text_row.get(target as usize) {
                Some(&logit) => (logit - log_sum_exp(text_row)).exp(),
                None => 0.0,
            };
            probs.push(p);
        }
        Ok(probs)
    }

    /// Transcribes 16 kHz mono samples, 30 s window after window.
    /// `on_window(done_s, total_s)` is called after each window.
    pub fn transcribe(
        &self,
        samples: &[f32],
        options: &DecodeOptions,
        on_window: &mut dyn FnMut(f64, f64),
    ) -> Result<Transcript> {
        let mel = self.log_mel(samples)?;
        let content = mel.frames.saturating_sub(1);
        let total_s = content as f64 * SECONDS_PER_FRAME;
        let mut segments = Vec::new();
        let mut silent_windows = 0;
        let mut seek = 0usize;
        while seek < content {
            let size = WINDOW_FRAMES.min(content - seek);
            let audio = self.encode(&mel.window(seek, size))?;
            let window = self.decode_window(&audio, options)?;
            let avg_logprob = window.sum_logprob / (window.tokens.len() + 1) as f64;
            let previous = seek;
            if window.no_speech_prob > options.no_speech_threshold
                && avg_logprob < f64::from(options.log_prob_threshold)
            {
                silent_windows += 1;
                seek += size;
            } else {
                let (pieces, advance) = self.split_by_timestamps(&window.tokens, seek, size);
                for (start_s, end_s, tokens) in pieces {
                    let text = self.detokenize(&tokens)?;
                    if start_s == end_s || text.trim().is_empty() {
                        continue;
                    }
                    segments.push(Segment {
                        start_s,
                        end_s,
                        text: text.trim().to_string(),
                        avg_logprob,
                        no_speech_prob: window.no_speech_prob,
                    });
                }
                seek += advance;
            }
            if seek <= previous {
                // A window must move forward even on degenerate output.
                seek = previous + size;
            }
            on_window(seek.min(content) as f64 * SECONDS_PER_FRAME, total_s);
        }
        Ok(Transcript {
            model: self.kind().to_string(),
            duration_s: samples.len() as f64 / crate::mel::SAMPLE_RATE as f64,
            segments,
            silent_windows,
        })
    }

    /// Splits a window's tokens at consecutive timestamps into
    /// `(start_s, end_s, tokens)` pieces; returns them and how many frames
    /// the next window starts after this one's start.
    fn split_by_timestamps(
        &self,
        tokens: &[u32],
        seek: usize,
        size: usize,
    ) -> (Vec<(f64, f64, Vec<u32>)>, usize) {
        let ts_begin = self.tokens.timestamp_begin;
        let is_ts = |t: u32| t >= ts_begin;
        let offset = seek as f64 * SECONDS_PER_FRAME;
        let n = tokens.len();
        let single_ending = n >= 2 && !is_ts(tokens[n - 2]) && is_ts(tokens[n - 1]);
        let mut cuts: Vec<usize> = (1..n)
            .filter(|&i| is_ts(tokens[i]) && is_ts(tokens[i - 1]))
            .collect();
        let time = |t: u32| offset + f64::from(t - ts_begin) * TIME_PRECISION;
        if cuts.is_empty() {
            let mut duration = size as f64 * SECONDS_PER_FRAME;
            if let Some(&last) = tokens.iter().rev().find(|&&t| is_ts(t))
                && last != ts_begin
            {
                duration = f64::from(last - ts_begin) * TIME_PRECISION;
            }
            return (vec![(offset, offset + duration, tokens.to_vec())], size);
        }
        if single_ending {
            cuts.push(n);
        }
        let mut pieces = Vec::with_capacity(cuts.len());
        let mut last_cut = 0;
        for &cut in &cuts {
            let slice = &tokens[last_cut..cut];
            pieces.push((time(slice[0]), time(slice[slice.len() - 1]), slice.to_vec()));
            last_cut = cut;
        }
        let advance = if single_ending {
            size
        } else {
            (tokens[last_cut - 1] - ts_begin) as usize * INPUT_STRIDE
        };
        (pieces, advance)
    }

    /// Text of the text tokens among `tokens` (timestamps and specials dropped).
    pub fn detokenize(&self, tokens: &[u32]) -> Result<String> {
        let text: Vec<u32> = tokens
            .iter()
            .copied()
            .filter(|&t| t < self.tokens.eot)
            .collect();
        self.tokenizer
            .decode(&text, true)
            .map_err(|e| Error::Detokenize(e.to_string()))
    }
}

fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

fn log_sum_exp(values: &[f32]) -> f32 {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    let sum: f64 = values.iter().map(|&v| f64::from(v - max).exp()).sum();
    max + sum.ln() as f32
}

fn log_softmax_at(values: &[f32], index: usize) -> f32 {
    values[index] - log_sum_exp(values)
}

fn softmax_at(values: &[f32], index: usize) -> f32 {
    log_softmax_at(values, index).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sum_exp_is_stable_and_handles_all_masked() {
        assert!((log_sum_exp(&[1000.0, 1000.0]) - (1000.0 + 2f32.ln())).abs() < 1e-3);
        assert_eq!(log_sum_exp(&[f32::NEG_INFINITY; 3]), f32::NEG_INFINITY);
        assert_eq!(argmax(&[0.0, 2.0, 2.0, 1.0]), 1);
    }
}
