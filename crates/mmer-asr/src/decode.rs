//! Decoding with timestamps and temperature fallback, and the 30 s window
//! loop that turns a recording into timed segments.
//!
//! Follows Whisper's reference decoding as CTranslate2 4.8 and
//! faster-whisper 1.2.1 run it with beam size 1, so at temperature 0 mmer's
//! transcript equals theirs (the parity test checks token for token):
//! - suppressed tokens (the model's list) at every step, blank and
//!   end-of-text at the first;
//! - timestamp rules (CTranslate2 4.8): the first token is a timestamp no
//!   later than 1 s; timestamps come in pairs except right before
//!   end-of-text; a pair repeats one time (`<|t|><|t|>`), and the timestamp
//!   after a segment's text is later than the one before it; when the
//!   timestamps' total probability beats every text token, a timestamp is
//!   taken;
//! - temperature fallback, off by default ([`DecodeOptions`] says why;
//!   [`DecodeOptions::with_fallback`] turns it on; faster-whisper's
//!   `WhisperModel.generate_with_fallback` and `get_compression_ratio` in
//!   [`faster_whisper/transcribe.py`](https://github.com/SYSTRAN/faster-whisper/blob/v1.2.1/faster_whisper/transcribe.py);
//!   sampling as CTranslate2's `GreedySearch` and `RandomSampler` in
//!   `src/decoding.cc` and `src/sampling.cc`): a window is decoded at each of
//!   [`DecodeOptions::temperatures`] (0, 0.2, …, 1.0 with the fallback) in turn until a decode
//!   is accepted. At 0 the decode is greedy. Above 0,
//!   [`DecodeOptions::best_of`] candidates are sampled, each token from
//!   softmax(logits / t) after the same suppression and timestamp rules, and
//!   the candidate with the highest log probability per token (CTranslate2's
//!   score: sum over the tokens and end-of-text, divided by the token count,
//!   length penalty 1) is kept. Log probabilities are always those of the
//!   untempered softmax. A decode is retried when its text's compression
//!   ratio (UTF-8 bytes over zlib bytes, [`compression_ratio`]) is above 2.4
//!   (a repetition loop) or its average log probability (the sum divided by
//!   tokens + 1) is below −1, unless it looks like silence (no-speech
//!   probability above 0.6 and average log probability below −1), which ends
//!   the fallback. When every temperature fails, the decode with the highest
//!   average log probability among those whose compression ratio is at most
//!   2.4 is kept, or among all of them when none is;
//! - a window whose no-speech probability exceeds 0.6 is silence, and yields
//!   no segment, unless the kept decode's average log probability is above −1;
//! - consecutive timestamps split a window into segments; the next window
//!   starts at the last complete segment's end.
//!
//! Sampling draws from ChaCha8 seeded with [`DecodeOptions::seed`], one
//! stream per window start, so a transcript is a function of the audio, the
//! model and the options. CTranslate2's own random draws are not reproduced:
//! a window decoded above temperature 0 follows faster-whisper's rule, not
//! its tokens. Candidates are decoded one after another from the same
//! post-prompt state (CTranslate2 batches them).
//!
//! Not done (faster-whisper's defaults that carry state between windows):
//! conditioning on the previous window's text (and with it
//! `prompt_reset_on_temperature`), voice-activity filtering. Each window is
//! decoded on its own.

use candle_core::{IndexOp, Tensor};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mel::{SECONDS_PER_FRAME, WINDOW_FRAMES};
use crate::model::Whisper;
use crate::net::DecoderState;

/// Seconds per timestamp token.
const TIME_PRECISION: f64 = 0.02;
/// Mel frames per encoder position (the second convolution has stride 2).
const INPUT_STRIDE: usize = 2;

/// Decoding settings; the defaults are faster-whisper 1.2.1's
/// (`WhisperModel.transcribe`) except one: mmer decodes each window once,
/// greedily (`temperatures = [0.0]`), unless the temperature fallback is
/// asked for ([`DecodeOptions::with_fallback`], faster-whisper's default).
/// Why: on the speech this was measured on the fallback never fired, and
/// where tiny.en loops (six joined CREMA-D clips) every temperature loops
/// too, so faster-whisper's rule keeps the likeliest loop — a seed-dependent
/// result at 26 decodes of the window instead of 1 (docs/RESULTS.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeOptions {
    /// Language code for multilingual models (ignored by `.en` models).
    pub language: String,
    /// Latest time the first timestamp may take, seconds.
    pub max_initial_timestamp_s: f64,
    /// A window is silence when its no-speech probability is above this …
    pub no_speech_threshold: f32,
    /// … and its average token log probability not above this. A decode
    /// whose average is below it is retried at the next temperature.
    pub log_prob_threshold: f32,
    /// Temperatures tried in turn (at least one, each ≥ 0) until a decode
    /// passes the compression-ratio and log-probability checks; 0 is
    /// greedy. `[0.0]` turns the fallback off: one greedy decode per window.
    pub temperatures: Vec<f32>,
    /// A decode whose text's compression ratio (UTF-8 bytes over zlib bytes)
    /// is above this is too repetitive and retried at the next temperature.
    pub compression_ratio_threshold: f64,
    /// Candidates sampled at each temperature above 0; the one with the
    /// highest log probability per token is kept.
    pub best_of: usize,
    /// Seed of the sampling generator (used only above temperature 0).
    pub seed: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            language: "en".into(),
            max_initial_timestamp_s: 1.0,
            no_speech_threshold: 0.6,
            log_prob_threshold: -1.0,
            temperatures: vec![0.0],
            compression_ratio_threshold: 2.4,
            best_of: 5,
            seed: 0,
        }
    }
}

/// faster-whisper's temperatures (`WhisperModel.transcribe`'s default).
pub const FALLBACK_TEMPERATURES: [f32; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];

impl DecodeOptions {
    /// Greedy decoding only (`temperatures = [0.0]`, mmer's default): what
    /// faster-whisper does with `temperature=0.0`.
    pub fn without_fallback(self) -> Self {
        Self {
            temperatures: vec![0.0],
            ..self
        }
    }

    /// faster-whisper's temperature fallback ([`FALLBACK_TEMPERATURES`]).
    pub fn with_fallback(self) -> Self {
        Self {
            temperatures: FALLBACK_TEMPERATURES.to_vec(),
            ..self
        }
    }

    /// Checks the fallback settings.
    ///
    /// # Errors
    /// [`Error::Options`] when there is no temperature, a temperature is
    /// negative or not finite, or `best_of` is 0.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::Options { message });
        if self.temperatures.is_empty() {
            return invalid(
                "`temperatures` is empty; [0.0] decodes greedily without fallback".into(),
            );
        }
        if let Some(t) = self
            .temperatures
            .iter()
            .find(|t| !(t.is_finite() && **t >= 0.0))
        {
            return invalid(format!("temperature {t} is not a finite value ≥ 0"));
        }
        if self.best_of == 0 {
            return invalid("`best_of` is 0; at least one candidate is sampled".into());
        }
        Ok(())
    }
}

/// One decoded 30 s window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowDecode {
    /// Generated tokens (text and timestamps), without end-of-text.
    pub tokens: Vec<u32>,
    /// Sum of the chosen tokens' log probabilities, end-of-text included.
    pub sum_logprob: f64,
    /// `sum_logprob / (tokens + 1)`, faster-whisper's `avg_logprob`.
    pub avg_logprob: f64,
    /// Probability of the no-speech token at the first step.
    pub no_speech_prob: f32,
    /// Compression ratio of the window's text ([`compression_ratio`]).
    pub compression_ratio: f64,
    /// Temperature this decode was made at (0: greedy).
    pub temperature: f32,
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
    /// Temperature the window was decoded at: above 0 after a fallback.
    #[serde(default)]
    pub temperature: f32,
    /// Compression ratio of the window's text (above 2.4: repetitive).
    #[serde(default)]
    pub compression_ratio: f64,
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

/// A window after its prompt: what every decode of it starts from.
struct WindowStart {
    /// Decoder state with the prompt fed.
    state: DecoderState,
    /// Logits of the first generated token, before any rule.
    logits: Vec<f32>,
    /// Probability of the no-speech token there.
    no_speech_prob: f32,
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

    /// Decodes one encoded window with timestamps and the temperature
    /// fallback (see the module doc); with `temperatures = [0.0]`, greedily.
    /// Samples from stream 0 of `options.seed` ([`Whisper::transcribe`] uses
    /// one stream per window start).
    ///
    /// # Errors
    /// [`Error::Options`] for invalid fallback settings; inference and
    /// detokenisation errors.
    pub fn decode_window(&self, audio: &Tensor, options: &DecodeOptions) -> Result<WindowDecode> {
        self.decode_with_fallback(audio, options, &mut window_rng(options.seed, 0), &|| false)
    }

    fn decode_with_fallback(
        &self,
        audio: &Tensor,
        options: &DecodeOptions,
        rng: &mut ChaCha8Rng,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<WindowDecode> {
        let start = self.start_window(audio, options)?;
        generate_with_fallback(options, |temperature| {
            self.decode_at(&start, options, temperature, rng, cancelled)
        })
    }

    /// Feeds the prompt once for all the decodes of a window.
    fn start_window(&self, audio: &Tensor, options: &DecodeOptions) -> Result<WindowStart> {
        let prompt = self.prompt(options)?;
        let mut state = self.net.start(audio)?;
        let logits = self.next_logits(&mut state, &prompt)?;
        let no_speech_prob = softmax_at(&logits, self.tokens.no_speech as usize);
        Ok(WindowStart {
            state,
            logits,
            no_speech_prob,
        })
    }

    /// One decode at `temperature`: greedy at 0, else the best of
    /// `options.best_of` sampled candidates.
    fn decode_at(
        &self,
        start: &WindowStart,
        options: &DecodeOptions,
        temperature: f32,
        rng: &mut ChaCha8Rng,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<WindowDecode> {
        let (tokens, sum_logprob) = if temperature > 0.0 {
            let mut candidates = Vec::with_capacity(options.best_of);
            for _ in 0..options.best_of {
                candidates.push(self.generate(
                    start,
                    options,
                    |logits| sample(logits, temperature, rng),
                    cancelled,
                )?);
            }
            let best = best_candidate(&candidates);
            candidates.swap_remove(best)
        } else {
            self.generate(start, options, argmax, cancelled)?
        };
        let text = self.detokenize(&tokens)?;
        Ok(WindowDecode {
            avg_logprob: sum_logprob / (tokens.len() + 1) as f64,
            compression_ratio: compression_ratio(text.trim()),
            no_speech_prob: start.no_speech_prob,
            temperature,
            tokens,
            sum_logprob,
        })
    }

    /// Generates from `start` until end-of-text or half the decoder's
    /// context (as CTranslate2 allows), taking at each step the token `pick`
    /// chooses among the logits after the rules. Returns the tokens (without
    /// end-of-text) and the sum of their log probabilities (with it), or
    /// [`Error::Cancelled`] as soon as `cancelled()` says so (checked before
    /// every step).
    fn generate(
        &self,
        start: &WindowStart,
        options: &DecodeOptions,
        mut pick: impl FnMut(&[f32]) -> usize,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(Vec<u32>, f64)> {
        let max_initial = self.tokens.timestamp_begin as usize
            + (options.max_initial_timestamp_s / TIME_PRECISION).round() as usize;
        let max_tokens = self.net.config.max_target_positions / 2;
        let mut state = start.state.clone();
        let mut logits = start.logits.clone();
        let mut generated: Vec<u32> = Vec::new();
        let mut sum_logprob = 0.0f64;
        for step in 0..max_tokens {
            if cancelled() {
                return Err(Error::Cancelled);
            }
            if step > 0 {
                logits = self.next_logits(&mut state, &generated[step - 1..])?;
            }
            self.apply_rules(&mut logits, &generated, max_initial);
            let next = pick(&logits);
            sum_logprob += f64::from(log_softmax_at(&logits, next));
            if next == self.tokens.eot as usize {
                break;
            }
            generated.push(next as u32);
        }
        Ok((generated, sum_logprob))
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
    ///
    /// # Errors
    /// [`Error::Options`] for invalid fallback settings,
    /// [`Error::NonFiniteSample`], inference and detokenisation errors.
    pub fn transcribe(
        &self,
        samples: &[f32],
        options: &DecodeOptions,
        on_window: &mut dyn FnMut(f64, f64),
    ) -> Result<Transcript> {
        self.transcribe_until(samples, options, on_window, &|| false)
    }

    /// [`Whisper::transcribe`], giving up with [`Error::Cancelled`] as soon
    /// as `cancelled()` says so: it is asked before each window and each
    /// decoder step, so a transcription that is no longer wanted (a live
    /// turn whose speech went on) frees its thread within a step.
    ///
    /// # Errors
    /// Those of [`Whisper::transcribe`], and [`Error::Cancelled`].
    pub fn transcribe_until(
        &self,
        samples: &[f32],
        options: &DecodeOptions,
        on_window: &mut dyn FnMut(f64, f64),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Transcript> {
        options.validate()?;
        let mel = self.log_mel(samples)?;
        let content = mel.frames.saturating_sub(1);
        let total_s = content as f64 * SECONDS_PER_FRAME;
        let mut segments = Vec::new();
        let mut silent_windows = 0;
        let mut seek = 0usize;
        while seek < content {
            if cancelled() {
                return Err(Error::Cancelled);
            }
            let size = WINDOW_FRAMES.min(content - seek);
            let audio = self.encode(&mel.window(seek, size))?;
            // Each window samples from its own stream: its draws depend on
            // the seed and where it starts, not on the windows before it.
            let mut rng = window_rng(options.seed, seek as u64);
            let window = self.decode_with_fallback(&audio, options, &mut rng, cancelled)?;
            let previous = seek;
            if is_silent(&window, options) {
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
                        avg_logprob: window.avg_logprob,
                        no_speech_prob: window.no_speech_prob,
                        temperature: window.temperature,
                        compression_ratio: window.compression_ratio,
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

/// faster-whisper's `get_compression_ratio`: the UTF-8 length of `text`
/// over the length of `zlib.compress` of it (level 6), computed by a port of
/// zlib's deflate so that the ratio is CPython's to the byte. Repetitive
/// text compresses well, so a high ratio (above 2.4 by default) flags a
/// decoder stuck in a loop.
pub fn compression_ratio(text: &str) -> f64 {
    text.len() as f64 / crate::zlib::compressed_len(text.as_bytes()) as f64
}

/// faster-whisper's `generate_with_fallback` over a decoder: `decode(t)`
/// decodes the window at temperature `t`; the temperatures are tried in turn
/// until [`needs_fallback`] says no, and when all fail,
/// [`pick_after_fallback`] chooses among the decodes.
fn generate_with_fallback(
    options: &DecodeOptions,
    mut decode: impl FnMut(f32) -> Result<WindowDecode>,
) -> Result<WindowDecode> {
    options.validate()?;
    let mut failed = Vec::with_capacity(options.temperatures.len());
    for &temperature in &options.temperatures {
        let result = decode(temperature)?;
        if !needs_fallback(&result, options) {
            return Ok(result);
        }
        failed.push(result);
    }
    Ok(pick_after_fallback(failed, options))
}

/// Whether a decode is retried at the next temperature: its text is too
/// repetitive or its average log probability too low, unless it looks like
/// silence (which the no-speech rule then drops).
fn needs_fallback(decode: &WindowDecode, options: &DecodeOptions) -> bool {
    let repetitive = decode.compression_ratio > options.compression_ratio_threshold;
    let unlikely = decode.avg_logprob < f64::from(options.log_prob_threshold);
    let silence = decode.no_speech_prob > options.no_speech_threshold && unlikely;
    (repetitive || unlikely) && !silence
}

/// When every temperature failed: the decode with the highest average log
/// probability among those not above the compression threshold, or among
/// all when none is; the first on ties (Python's `max`).
///
/// # Panics
/// On an empty `decodes` (there is one per temperature, and
/// [`DecodeOptions::validate`] requires one).
fn pick_after_fallback(mut decodes: Vec<WindowDecode>, options: &DecodeOptions) -> WindowDecode {
    let below: Vec<usize> = (0..decodes.len())
        .filter(|&i| decodes[i].compression_ratio <= options.compression_ratio_threshold)
        .collect();
    let pool = if below.is_empty() {
        (0..decodes.len()).collect()
    } else {
        below
    };
    let mut best = pool[0];
    for &i in &pool[1..] {
        if decodes[i].avg_logprob > decodes[best].avg_logprob {
            best = i;
        }
    }
    decodes.swap_remove(best)
}

/// faster-whisper's no-speech check on the kept decode: the window is
/// skipped when its no-speech probability is above the threshold, unless
/// its average log probability is above the log-probability threshold.
fn is_silent(decode: &WindowDecode, options: &DecodeOptions) -> bool {
    decode.no_speech_prob > options.no_speech_threshold
        && decode.avg_logprob <= f64::from(options.log_prob_threshold)
}

/// Which of the sampled `(tokens, sum_logprob)` candidates CTranslate2
/// returns first: the highest score, the sum of log probabilities divided
/// by the token count (length penalty 1); the first on ties.
fn best_candidate(candidates: &[(Vec<u32>, f64)]) -> usize {
    let score = |(tokens, sum): &(Vec<u32>, f64)| sum / tokens.len().max(1) as f64;
    let mut best = 0;
    for (i, candidate) in candidates.iter().enumerate().skip(1) {
        if score(candidate) > score(&candidates[best]) {
            best = i;
        }
    }
    best
}

/// The generator of one window's draws: ChaCha8 seeded with `seed`, on
/// stream `stream`.
fn window_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Draws an index from softmax(logits / temperature) by inverting its
/// cumulative distribution; masked (−∞) logits are never drawn. Dividing
/// the log-softmax instead, as CTranslate2 does, gives the same distribution.
fn sample(logits: &[f32], temperature: f32, rng: &mut impl RngCore) -> usize {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return argmax(logits);
    }
    let scale = 1.0 / f64::from(temperature);
    let weight = |v: f32| (f64::from(v - max) * scale).exp();
    let total: f64 = logits.iter().map(|&v| weight(v)).sum();
    // 53 random bits: uniform in [0, 1).
    let uniform = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let mut target = uniform * total;
    let mut last = argmax(logits);
    for (i, &v) in logits.iter().enumerate() {
        let w = weight(v);
        if w > 0.0 {
            if target < w {
                return i;
            }
            target -= w;
            last = i;
        }
    }
    // Rounding left `target` past the end: the last drawable index.
    last
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

    /// The sentence tiny.en repeated over six joined CREMA-D clips
    /// (docs/RESULTS.md) against ordinary, varied text.
    const LOOP: &str = "Don't forget to check it. ";
    const NORMAL: &str = "Speech recognition is most of the time; faces cost about three \
        hundredths of a second per second of video at two keyframes per turn.";

    fn decode(text: &str, avg_logprob: f64, no_speech_prob: f32, temperature: f32) -> WindowDecode {
        WindowDecode {
            tokens: vec![1, 2, 3],
            sum_logprob: avg_logprob * 4.0,
            avg_logprob,
            no_speech_prob,
            compression_ratio: compression_ratio(text),
            temperature,
        }
    }

    /// Runs the fallback over `outcomes` (one per temperature tried) and
    /// returns the kept decode and the temperatures asked for.
    fn fallback(
        options: &DecodeOptions,
        outcomes: &[(&str, f64, f32)],
    ) -> (WindowDecode, Vec<f32>) {
        let mut asked = Vec::new();
        let kept = generate_with_fallback(options, |t| {
            let (text, avg, no_speech) = outcomes[asked.len()];
            asked.push(t);
            Ok(decode(text, avg, no_speech, t))
        })
        .expect("fallback");
        (kept, asked)
    }

    #[test]
    fn compression_ratio_flags_repetition() {
        // CPython: len(s) / len(zlib.compress(s)) for the sentence repeated
        // 3 and 4 times (77/37 and 103/37: the threshold lies between) and 7.
        let repeated = |k: usize| LOOP.repeat(k).trim().to_string();
        assert_eq!(compression_ratio(&repeated(3)), 77.0 / 37.0);
        assert_eq!(compression_ratio(&repeated(4)), 103.0 / 37.0);
        assert_eq!(compression_ratio(&repeated(7)), 181.0 / 37.0);
        assert!(compression_ratio(&repeated(4)) > 2.4);
        assert_eq!(compression_ratio(NORMAL), 132.0 / 105.0);
        assert!(compression_ratio(NORMAL) < 2.4);
        assert_eq!(compression_ratio(""), 0.0);
    }

    #[test]
    fn fallback_retries_a_repetition_loop() {
        let looping = LOOP.repeat(7);
        let options = DecodeOptions::default().with_fallback();
        let (kept, asked) = fallback(
            &options,
            &[(looping.trim(), -0.2, 0.01), (NORMAL, -0.4, 0.01)],
        );
        assert_eq!(asked, vec![0.0, 0.2]);
        assert_eq!(kept.temperature, 0.2);
        assert!(!is_silent(&kept, &options));
        // An unlikely decode is retried too.
        let (kept, asked) = fallback(&options, &[(NORMAL, -1.3, 0.01), (NORMAL, -0.4, 0.01)]);
        assert_eq!((kept.temperature, asked.len()), (0.2, 2));
    }

    #[test]
    fn without_fallback_keeps_the_greedy_loop() {
        let looping = LOOP.repeat(7);
        let options = DecodeOptions::default().without_fallback();
        let (kept, asked) = fallback(&options, &[(looping.trim(), -0.2, 0.01)]);
        assert_eq!(asked, vec![0.0]);
        assert!(kept.compression_ratio > 2.4);
    }

    #[test]
    fn when_all_fail_the_likeliest_unrepetitive_decode_is_kept() {
        let looping = LOOP.repeat(7);
        let options = DecodeOptions::default().with_fallback();
        // Repetitive ones have the best averages but are passed over; between
        // the two unrepetitive −1.5s the first wins.
        let outcomes = [
            (looping.trim(), -0.1, 0.01),
            (NORMAL, -1.6, 0.01),
            (NORMAL, -1.5, 0.01),
            (looping.trim(), -0.2, 0.01),
            (NORMAL, -1.5, 0.01),
            (NORMAL, -2.0, 0.01),
        ];
        let (kept, asked) = fallback(&options, &outcomes);
        assert_eq!(asked, options.temperatures);
        assert_eq!(kept.temperature, 0.4);
        // All repetitive: the likeliest of all.
        let outcomes: Vec<(&str, f64, f32)> = [-0.3, -0.1, -0.2, -0.5, -0.4, -0.6]
            .iter()
            .map(|&avg| (looping.trim(), avg, 0.01))
            .collect();
        let (kept, _) = fallback(&options, &outcomes);
        assert_eq!(kept.temperature, 0.2);
    }

    #[test]
    fn silence_ends_the_fallback_and_is_skipped() {
        let options = DecodeOptions::default().with_fallback();
        let (kept, asked) = fallback(&options, &[(NORMAL, -1.5, 0.9)]);
        assert_eq!(asked, vec![0.0]);
        assert!(is_silent(&kept, &options));
        // Likely enough text is kept despite a high no-speech probability.
        let (kept, asked) = fallback(&options, &[(NORMAL, -0.5, 0.9)]);
        assert_eq!(asked.len(), 1);
        assert!(!is_silent(&kept, &options));
        // A repetitive window with a high no-speech probability but a good
        // average is retried, not taken for silence.
        let looping = LOOP.repeat(7);
        let (_, asked) = fallback(
            &options,
            &[(looping.trim(), -0.5, 0.9), (NORMAL, -0.5, 0.9)],
        );
        assert_eq!(asked.len(), 2);
    }

    #[test]
    fn the_best_candidate_is_the_likeliest_per_token() {
        // By sum the single token wins (−1.0 > −2.0); per token the ten do.
        let candidates = [(vec![7; 1], -1.0), (vec![7; 10], -2.0), (vec![7; 5], -1.0)];
        assert_eq!(best_candidate(&candidates), 1);
        assert_eq!(best_candidate(&[(vec![1], -0.5), (vec![2], -0.5)]), 0);
    }

    #[test]
    fn sampling_is_seeded_masked_and_tempered() {
        let logits = [0.0, 3f32.ln(), f32::NEG_INFINITY, -1.0, f32::NEG_INFINITY];
        let draws = |seed: u64, t: f32, n: usize| -> Vec<usize> {
            let mut rng = window_rng(seed, 0);
            (0..n).map(|_| sample(&logits, t, &mut rng)).collect()
        };
        assert_eq!(draws(7, 1.0, 200), draws(7, 1.0, 200));
        assert_ne!(draws(7, 1.0, 200), draws(8, 1.0, 200));
        let mut other_stream = window_rng(7, 1);
        let other: Vec<usize> = (0..200)
            .map(|_| sample(&logits, 1.0, &mut other_stream))
            .collect();
        assert_ne!(draws(7, 1.0, 200), other);
        let n = 20_000;
        let many = draws(3, 1.0, n);
        assert!(many.iter().all(|&i| i != 2 && i != 4));
        // softmax([0, ln 3, −1]) = [1, 3, e⁻¹] / (4 + e⁻¹).
        let z = 4.0 + (-1.0f64).exp();
        for (index, p) in [(0, 1.0 / z), (1, 3.0 / z), (3, (-1.0f64).exp() / z)] {
            let freq = many.iter().filter(|&&i| i == index).count() as f64 / n as f64;
            assert!((freq - p).abs() < 0.015, "token {index}: {freq} vs {p}");
        }
        // Near 0 the draw is the argmax; at t = 2 the odds of 1 over 0 are √3.
        assert!(draws(5, 1e-3, 100).iter().all(|&i| i == 1));
        let flat = draws(5, 2.0, n);
        let count = |k: usize| flat.iter().filter(|&&i| i == k).count() as f64;
        assert!((count(1) / count(0) - 3f64.sqrt()).abs() < 0.1);
    }

    #[test]
    fn options_default_to_greedy_and_old_configs_still_read() {
        let old: DecodeOptions =
            serde_json::from_str(r#"{"language": "en", "no_speech_threshold": 0.6}"#)
                .expect("json");
        assert_eq!(old, DecodeOptions::default());
        assert_eq!(old.temperatures, vec![0.0]);
        assert_eq!(
            old.clone().with_fallback().temperatures,
            vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        );
        assert_eq!(
            (old.compression_ratio_threshold, old.best_of, old.seed),
            (2.4, 5, 0)
        );
        assert!(old.validate().is_ok());
        let off: DecodeOptions = serde_json::from_str(r#"{"temperatures": [0.0]}"#).expect("json");
        assert_eq!(off, DecodeOptions::default().without_fallback());
        for bad in [
            r#"{"temperatures": []}"#,
            r#"{"temperatures": [0.0, -0.2]}"#,
            r#"{"best_of": 0}"#,
        ] {
            let options: DecodeOptions = serde_json::from_str(bad).expect("json");
            assert!(
                matches!(options.validate(), Err(Error::Options { .. })),
                "{bad}"
            );
        }
    }
}
