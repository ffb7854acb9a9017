//! Frozen sentence encoder: text → one L2-normalised vector per utterance,
//! numerically equal to sentence-transformers' `encode` (checked against
//! `tests/fixtures/st_reference.json`).
//!
//! The pipeline is the one the installed `modules.json` describes:
//! tokenizer (`tokenizer.json`, padding switched off, truncation to
//! `max_seq_length` from `sentence_bert_config.json`) → transformer
//! ([`crate::mpnet`], in its BERT mode for MiniLM) → masked mean pooling →
//! L2 normalisation.
//!
//! Why the batching looks the way it does: texts are tokenized first, sorted
//! by token count and cut into batches padded only to their own longest
//! member, then the vectors are put back in input order. On MELD this halves
//! the padded tokens compared with input order (DESIGN §6), and since the
//! mask hides padding, the result does not depend on the batch a text lands in
//! beyond float rounding.
//!
//! Why two workers: on the 2-core machines this project targets, the forward
//! pass is bound by matrix products running near the cores' FMA peak, and
//! splitting each product and each element-wise op across threads (candle's
//! default) loses a third of that to synchronisation. Running two whole
//! batches at once, each single-threaded, scales instead. Each worker gets a
//! one-thread rayon pool, which keeps candle's matrix products on that worker;
//! candle's element-wise ops still go through its own spinning thread pool
//! unless the process runs with `CANDLE_NUM_THREADS=1` (or
//! `RAYON_NUM_THREADS=1`), which on MiniLM/MELD raised throughput per CPU-second
//! from ~115 to ~170 utterances. A library cannot set that variable safely for
//! its caller, so binaries should document it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::context::{ContextWindow, EncoderInput, Specials, build_inputs};
use crate::fingerprint::weights_sha256;
use crate::model_dir::{ModelDir, Pipeline, read_json};
use crate::mpnet::{self, ModelType, MpnetModel};
use crate::pooling::{l2_normalize, mean_pool};
use crate::{EncoderKind, Error, Result};

/// Version of the encoders' numerics: tokenisation, the forward pass
/// (matrix products, GELU, attention, LayerNorm), pooling. Part of
/// [`SentenceEncoder::fingerprint`], so the feature store re-embeds instead
/// of reusing vectors made by other code. Bump it with any change that
/// moves an output bit; `tests/parity.rs` compares the outputs with
/// `tests/fixtures/numerics.json`, recorded under this version, and fails
/// when they move beyond float noise without a bump.
///
/// History: 1 = scalar-erf GELU (fingerprints without a version);
/// 2 = vectorised GELU, MiniLM on mmer's own encoder (2026-11).
pub const NUMERICS_VERSION: u32 = 2;

/// The special tokens of the tokenizer's pair format (`head A tail mid B
/// tail`), read off its encodings of empty texts.
fn pair_specials(tokenizer: &Tokenizer) -> std::result::Result<Specials, String> {
    let ids = |input: tokenizers::EncodeInput| {
        tokenizer
            .encode(input, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| e.to_string())
    };
    let single = ids("".into())?;
    let pair = ids(("", "").into())?;
    // single = head + tail; pair = head + tail + mid + tail.
    let mismatch =
        || format!("pair encoding {pair:?} does not extend the single encoding {single:?}");
    if single.len() < 2 {
        return Err(mismatch());
    }
    let (head, tail) = single.split_at(1);
    let rest = pair
        .strip_prefix(single.as_slice())
        .and_then(|rest| rest.strip_suffix(tail))
        .ok_or_else(mismatch)?;
    Ok(Specials {
        head: head.to_vec(),
        tail: tail.to_vec(),
        mid: rest.to_vec(),
    })
}

/// Texts per forward pass unless [`SentenceEncoder::with_batch_size`] says
/// otherwise (sentence-transformers' default too).
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// Default number of batches in flight: 2 where at least two CPUs are
/// available, else 1.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

/// What a forward pass returns per input ([`SentenceEncoder::embed_inputs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The pooled (and normalised) sentence vector.
    Sentence,
    /// Every token's state after the first `n` encoder layers (0 = the
    /// embedding layer), pooled or not, flattened `[tokens * dim]`.
    Tokens(usize),
    /// The pooled token states of the embedding layer and of the first `n`
    /// encoder layers, flattened `[(n + 1) * dim]`.
    Layers(usize),
}

/// A frozen sentence-transformers encoder on candle (CPU), loaded from the
/// files `scripts/setup.sh` installs. Offline: nothing is downloaded.
///
/// ```no_run
/// use mmer_text::{EncoderKind, SentenceEncoder, default_models_dir};
///
/// let encoder = SentenceEncoder::load(EncoderKind::MiniLm, &default_models_dir())?;
/// let vectors = encoder.embed(&["Oh my God!", "I'm fine."])?;
/// assert_eq!(vectors[0].len(), encoder.dim());
/// # Ok::<(), mmer_text::Error>(())
/// ```
pub struct SentenceEncoder {
    kind: EncoderKind,
    tokenizer: Tokenizer,
    backbone: MpnetModel,
    config: mpnet::Config,
    device: Device,
    pipeline: Pipeline,
    pad_id: u32,
    specials: Specials,
    fingerprint: String,
    batch_size: usize,
    workers: usize,
}

impl std::fmt::Debug for SentenceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEncoder")
            .field("kind", &self.kind)
            .field("max_seq_length", &self.pipeline.max_seq_length)
            .field("batch_size", &self.batch_size)
            .field("workers", &self.workers)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The checkpoint of `kind` under `models_dir` as its hyper-parameters and
/// its encoder's tensors under MPNet's names ([`mpnet::encoder_tensors`]):
/// what a trainable copy of the encoder loads.
///
/// # Errors
/// As [`SentenceEncoder::load`] for missing or unreadable files.
pub fn load_encoder_tensors(
    kind: EncoderKind,
    models_dir: &Path,
) -> Result<(mpnet::Config, BTreeMap<String, mpnet::HostTensor>)> {
    let dir = ModelDir::new(kind, models_dir);
    dir.check_installed()?;
    let config: mpnet::Config = read_json(&dir.config())?;
    let weights_path = dir.weights();
    let weights_err = |source| Error::Weights {
        path: weights_path.clone(),
        source,
    };
    let tensors =
        candle_core::safetensors::load(&weights_path, &Device::Cpu).map_err(weights_err)?;
    let tensors = mpnet::encoder_tensors(tensors, &config).map_err(weights_err)?;
    Ok((config, tensors))
}

impl SentenceEncoder {
    /// Whether every file [`SentenceEncoder::load`] needs for `kind` exists
    /// under `models_dir`.
    pub fn is_installed(kind: EncoderKind, models_dir: &Path) -> bool {
        ModelDir::new(kind, models_dir).first_missing().is_none()
    }

    /// Loads `kind` from `models_dir/<kind.dir_name()>/`.
    ///
    /// Hashes the weights for [`SentenceEncoder::fingerprint`] the first time
    /// (about a second for MPNet) and caches the digest next to them.
    ///
    /// # Errors
    /// - [`Error::MissingModelFile`] naming the first missing file (run `scripts/setup.sh`);
    /// - [`Error::Io`], [`Error::Json`], [`Error::Tokenizer`] for unreadable files;
    /// - [`Error::UnsupportedPipeline`] if `modules.json` asks for anything but
    ///   mean pooling (+ normalisation), or the sizes disagree;
    /// - [`Error::Weights`] if a tensor is missing or mis-shaped.
    pub fn load(kind: EncoderKind, models_dir: &Path) -> Result<Self> {
        let dir = ModelDir::new(kind, models_dir);
        dir.check_installed()?;
        let pipeline = dir.pipeline()?;
        let device = Device::Cpu;
        let config_path = dir.config();
        let weights_path = dir.weights();
        let unsupported = |reason: String| Error::UnsupportedPipeline {
            path: config_path.clone(),
            reason,
        };

        let tensors = candle_core::safetensors::load(&weights_path, &device).map_err(|source| {
            Error::Weights {
                path: weights_path.clone(),
                source,
            }
        })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let weights_err = |source| Error::Weights {
            path: weights_path.clone(),
            source,
        };
        // MiniLM is a BERT checkpoint; both run on mmer's encoder (crate::mpnet).
        let config: mpnet::Config = read_json(&config_path)?;
        let expected = match kind {
            EncoderKind::MiniLm => ModelType::Bert,
            EncoderKind::Mpnet => ModelType::Mpnet,
        };
        if config.model_type != expected {
            return Err(unsupported(format!(
                "model_type {:?}, {kind} is {expected:?}",
                config.model_type
            )));
        }
        let backbone = MpnetModel::load(vb, &config).map_err(weights_err)?;
        let (hidden_size, pad_id, positions) = (
            config.hidden_size,
            config.pad_token_id,
            config.max_position_embeddings,
        );
        let positions_needed = match config.model_type {
            ModelType::Bert => pipeline.max_seq_length,
            // Positions run from pad + 1 to pad + max_seq_length.
            ModelType::Mpnet => pipeline.max_seq_length + pad_id as usize + 1,
        };
        if hidden_size != pipeline.word_embedding_dimension || hidden_size != kind.dim() {
            return Err(unsupported(format!(
                "hidden_size {hidden_size}, pooling expects {}, {kind} is {} wide",
                pipeline.word_embedding_dimension,
                kind.dim()
            )));
        }
        if positions_needed > positions {
            return Err(unsupported(format!(
                "max_seq_length {} needs {positions_needed} positions, max_position_embeddings is {positions}",
                pipeline.max_seq_length
            )));
        }

        let tokenizer_path = dir.tokenizer();
        let tokenizer_err = |message: String| Error::Tokenizer {
            path: tokenizer_path.clone(),
            message,
        };
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| tokenizer_err(e.to_string()))?;
        // tokenizer.json pads and truncates to a fixed 128; sentence-transformers
        // pads to the longest in the batch and truncates to max_seq_length.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: pipeline.max_seq_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| tokenizer_err(e.to_string()))?;

        let specials = pair_specials(&tokenizer).map_err(tokenizer_err)?;
        let fingerprint = format!(
            "{kind}:{}:numerics-{NUMERICS_VERSION}",
            weights_sha256(&weights_path)?
        );
        tracing::debug!(%kind, dir = %dir.root().display(), %fingerprint, "loaded sentence encoder");
        Ok(Self {
            kind,
            tokenizer,
            backbone,
            config,
            device,
            pipeline,
            pad_id,
            specials,
            fingerprint,
            batch_size: DEFAULT_BATCH_SIZE,
            workers: default_workers(),
        })
    }

    /// Sets the number of texts per forward pass (at least 1; 0 is taken as 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets how many batches run at once (at least 1; default
    /// [`default_workers`]). With 2 or more, each worker runs whole forward
    /// passes with single-threaded matrix products; with 1, candle splits
    /// each product over its own thread count (`RAYON_NUM_THREADS`, default:
    /// physical cores). See the module docs for measurements.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Batches run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Which encoder this is.
    pub fn kind(&self) -> EncoderKind {
        self.kind
    }

    /// Upstream model name, e.g. `all-mpnet-base-v2`.
    pub fn name(&self) -> &'static str {
        self.kind.model_name()
    }

    /// Width of each sentence vector (384 for MiniLM, 768 for MPNet).
    pub fn dim(&self) -> usize {
        self.kind.dim()
    }

    /// Tokens kept per text, special tokens included; longer texts are cut.
    pub fn max_seq_length(&self) -> usize {
        self.pipeline.max_seq_length
    }

    /// Texts per forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// `"<kind>:<sha256 of model.safetensors>:numerics-<N>"`, e.g.
    /// `minilm:53aa5117…:numerics-2`: the weights and the version of the
    /// code that computes with them ([`NUMERICS_VERSION`]). Stable across
    /// runs and machines for the same weights and code; the feature store
    /// keys cached features by it, so features made by other weights or
    /// other numerics are never reused.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Tokens each text becomes after truncation, special tokens included
    /// (what the model sees; at most [`SentenceEncoder::max_seq_length`]).
    ///
    /// # Errors
    /// [`Error::Tokenize`] naming the text's index.
    pub fn count_tokens(&self, texts: &[&str]) -> Result<Vec<usize>> {
        Ok(self.tokenize(texts)?.iter().map(Vec::len).collect())
    }

    /// One vector per text, in input order. Empty or whitespace-only texts are
    /// valid (they embed `[CLS] [SEP]`).
    ///
    /// # Errors
    /// [`Error::Tokenize`] naming the text's index, [`Error::Forward`].
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_with_progress(texts, |_, _| {})
    }

    /// [`SentenceEncoder::embed`], calling `progress(done, total)` after each
    /// batch, e.g. to drive an `indicatif` bar:
    /// `|done, total| { bar.set_length(total as u64); bar.set_position(done as u64) }`.
    ///
    /// # Errors
    /// As [`SentenceEncoder::embed`].
    pub fn embed_with_progress<F>(&self, texts: &[&str], progress: F) -> Result<Vec<Vec<f32>>>
    where
        F: FnMut(usize, usize),
    {
        self.run(texts, Output::Sentence, progress)
    }

    /// The last layer's state of every token of each text (special tokens
    /// included, the tokens that mean pooling averages), flattened
    /// `[tokens * dim]` per text: the input of trainable pooling.
    ///
    /// # Errors
    /// As [`SentenceEncoder::embed`].
    pub fn embed_tokens_with_progress<F>(
        &self,
        texts: &[&str],
        progress: F,
    ) -> Result<Vec<Vec<f32>>>
    where
        F: FnMut(usize, usize),
    {
        self.run(texts, Output::Tokens(self.backbone.num_layers()), progress)
    }

    /// Every real token's state after the first `layer` encoder layers
    /// (0 = the embedding layer; capped at the encoder's depth), flattened
    /// `[tokens * dim]` per text: the input of the layers above it when only
    /// those are fine-tuned.
    ///
    /// # Errors
    /// As [`SentenceEncoder::embed`].
    pub fn embed_layer_tokens_with_progress<F>(
        &self,
        texts: &[&str],
        layer: usize,
        progress: F,
    ) -> Result<Vec<Vec<f32>>>
    where
        F: FnMut(usize, usize),
    {
        self.run(texts, Output::Tokens(layer), progress)
    }

    /// Token ids of each text as the encoder reads them: truncated to
    /// `max_seq_length`, special tokens added, no padding.
    ///
    /// # Errors
    /// [`Error::Tokenize`] naming the text's index.
    pub fn token_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        self.tokenize(texts)
    }

    /// The checkpoint's hyper-parameters (`config.json`).
    pub fn config(&self) -> &mpnet::Config {
        &self.config
    }

    /// The mean-pooled token states of the embedding layer and of the first
    /// `depth` encoder layers of each text (`depth` is capped at the
    /// encoder's depth; deeper layers are not run), flattened
    /// `[(depth + 1) * dim]` per text. With the full depth the last frame is
    /// the sentence vector before its normalisation.
    ///
    /// # Errors
    /// As [`SentenceEncoder::embed`].
    pub fn embed_layers_with_progress<F>(
        &self,
        texts: &[&str],
        depth: usize,
        progress: F,
    ) -> Result<Vec<Vec<f32>>>
    where
        F: FnMut(usize, usize),
    {
        self.run(texts, Output::Layers(depth), progress)
    }

    /// How many layer states [`SentenceEncoder::embed_layers_with_progress`]
    /// returns per text at full depth: the encoder layers plus the
    /// embedding layer (13 for MPNet, 7 for MiniLM).
    pub fn num_layer_states(&self) -> usize {
        self.backbone.num_layers() + 1
    }

    fn run<F>(&self, texts: &[&str], output: Output, progress: F) -> Result<Vec<Vec<f32>>>
    where
        F: FnMut(usize, usize),
    {
        let inputs = self.inputs(texts)?;
        self.embed_inputs(&inputs, output, progress)
    }

    /// Each text as a plain input: truncated, special tokens added, every
    /// token pooled (what [`SentenceEncoder::embed`] encodes).
    ///
    /// # Errors
    /// [`Error::Tokenize`] naming the text's index.
    pub fn inputs(&self, texts: &[&str]) -> Result<Vec<EncoderInput>> {
        Ok(self
            .tokenize(texts)?
            .into_iter()
            .map(EncoderInput::plain)
            .collect())
    }

    /// One input per turn of a conversation, in order, with the speaker's
    /// name and the turns around it as `window` says ([`crate::context`]);
    /// `None` for a turn without a transcript. `turns` are `(speaker,
    /// transcript)`.
    ///
    /// # Errors
    /// [`Error::Tokenize`] naming the turn's index; a window longer than
    /// the encoder's `max_seq_length`, or too short for any token.
    pub fn inputs_in_context(
        &self,
        turns: &[(&str, Option<&str>)],
        window: &ContextWindow,
    ) -> Result<Vec<Option<EncoderInput>>> {
        let min = self.specials.head.len() + self.specials.tail.len() + 1;
        if !(min..=self.max_seq_length()).contains(&window.max_tokens) {
            return Err(Error::Context(format!(
                "max_tokens = {}: {} reads {min} to {} tokens per input",
                window.max_tokens,
                self.kind,
                self.max_seq_length()
            )));
        }
        build_inputs(turns, window, &self.specials, |index, text| {
            self.encode(text, false, index)
        })
    }

    /// Runs the encoder over `inputs` and returns `output` for each, in
    /// input order, calling `progress(done, total)` after each batch.
    /// Pooling averages each input's first `pooled` tokens; layer numbers
    /// beyond the encoder's depth are capped at it.
    ///
    /// # Errors
    /// [`Error::Forward`].
    pub fn embed_inputs<F>(
        &self,
        inputs: &[EncoderInput],
        output: Output,
        mut progress: F,
    ) -> Result<Vec<Vec<f32>>>
    where
        F: FnMut(usize, usize),
    {
        let depth = self.backbone.num_layers();
        let output = match output {
            Output::Tokens(layer) => Output::Tokens(layer.min(depth)),
            Output::Layers(layer) => Output::Layers(layer.min(depth)),
            Output::Sentence => Output::Sentence,
        };
        let _span =
            tracing::debug_span!("embed", kind = %self.kind, inputs = inputs.len()).entered();
        // Longest first, as sentence-transformers does: a batch that does not
        // fit fails at once, and lengths within each batch are close.
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(inputs[i].ids.len()));

        let batches: Vec<&[usize]> = order.chunks(self.batch_size).collect();
        let mut out = vec![Vec::new(); inputs.len()];
        let mut done = 0;
        let mut store = |batch: &[usize], vectors: Vec<Vec<f32>>| {
            for (&i, vector) in batch.iter().zip(vectors) {
                out[i] = vector;
            }
            done += batch.len();
            progress(done, inputs.len());
        };
        let forward_err = |batch: &[usize], source| Error::Forward {
            kind: self.kind,
            batch: batch.len(),
            source,
        };
        let workers = self.workers.min(batches.len()).max(1);
        if workers == 1 {
            for &batch in &batches {
                let vectors = self
                    .embed_batch(inputs, batch, output)
                    .map_err(|e| forward_err(batch, e))?;
                store(batch, vectors);
            }
            return Ok(out);
        }

        // Several batches in flight, each on one thread: inside a one-thread
        // rayon pool, candle's gemm calls run on the worker itself instead of
        // being split across cores (see the module docs).
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let (tx, rx) = mpsc::channel();
        let mut first_err = None;
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let tx = tx.clone();
                let (next, stop, batches) = (&next, &stop, &batches);
                scope.spawn(move || {
                    let work = || {
                        while !stop.load(Ordering::Relaxed) {
                            let index = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&batch) = batches.get(index) else {
                                break;
                            };
                            let result = self.embed_batch(inputs, batch, output);
                            if tx.send((batch, result)).is_err() {
                                break;
                            }
                        }
                    };
                    match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                        Ok(pool) => pool.install(work),
                        Err(_) => work(),
                    }
                });
            }
            drop(tx);
            for (batch, result) in rx {
                match result {
                    Ok(vectors) if first_err.is_none() => store(batch, vectors),
                    Ok(_) => {}
                    Err(source) => {
                        stop.store(true, Ordering::Relaxed);
                        first_err.get_or_insert(forward_err(batch, source));
                    }
                }
            }
        });
        match first_err {
            Some(err) => Err(err),
            None => Ok(out),
        }
    }

    /// Token ids of each text, truncated, special tokens added.
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .enumerate()
            .map(|(index, &text)| self.encode(text, true, index))
            .collect()
    }

    /// Token ids of a text, truncated to `max_seq_length`, with or without
    /// special tokens; `index` names it in an error.
    fn encode(&self, text: &str, special_tokens: bool, index: usize) -> Result<Vec<u32>> {
        let lowered;
        let text = if self.pipeline.do_lower_case {
            lowered = text.to_lowercase();
            lowered.as_str()
        } else {
            text
        };
        self.tokenizer
            .encode(text, special_tokens)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|e| Error::Tokenize {
                kind: self.kind,
                index,
                message: e.to_string(),
            })
    }

    /// Pads the inputs `batch` (indices into `inputs`) to the longest, runs
    /// the model, pools each input's first `pooled` tokens and normalises.
    fn embed_batch(
        &self,
        inputs: &[EncoderInput],
        batch: &[usize],
        output: Output,
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows: Vec<&EncoderInput> = batch.iter().map(|&i| &inputs[i]).collect();
        let batch = rows.len();
        let seq_len = rows.iter().map(|r| r.ids.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(batch * seq_len);
        let mut mask = Vec::with_capacity(batch * seq_len);
        let mut pool = Vec::with_capacity(batch * seq_len);
        for row in &rows {
            let (len, pooled) = (row.ids.len(), row.pooled.min(row.ids.len()));
            ids.extend_from_slice(&row.ids);
            ids.extend(std::iter::repeat_n(self.pad_id, seq_len - len));
            mask.extend(std::iter::repeat_n(1u32, len));
            mask.extend(std::iter::repeat_n(0u32, seq_len - len));
            pool.extend(std::iter::repeat_n(1u32, pooled));
            pool.extend(std::iter::repeat_n(0u32, seq_len - pooled));
        }
        let pool = Tensor::from_vec(pool, (batch, seq_len), &self.device)?;
        let ids = Tensor::from_vec(ids, (batch, seq_len), &self.device)?;
        let mask = Tensor::from_vec(mask, (batch, seq_len), &self.device)?;
        if let Output::Layers(depth) = output {
            let pooled = self
                .backbone
                .forward_layers(&ids, &mask, depth)?
                .iter()
                .map(|states| mean_pool(states, &pool))
                .collect::<candle_core::Result<Vec<_>>>()?; // layers × [b, d]
            let per_text = Tensor::stack(&pooled, 1)?; // [b, layers, d]
            return Ok(per_text
                .to_vec3::<f32>()?
                .into_iter()
                .map(|layers| layers.into_iter().flatten().collect())
                .collect());
        }
        if let Output::Tokens(layer) = output {
            let token_states = self.backbone.forward_depth(&ids, &mask, layer)?; // [b, s, d]
            let states = token_states.to_vec3::<f32>()?;
            return Ok(states
                .into_iter()
                .zip(&rows)
                .map(|(tokens, row)| tokens.into_iter().take(row.ids.len()).flatten().collect())
                .collect());
        }
        let token_states = self.backbone.forward(&ids, &mask)?; // [b, s, d]
        let pooled = mean_pool(&token_states, &pool)?; // [b, d]
        let pooled = if self.pipeline.normalize {
            l2_normalize(&pooled)?
        } else {
            pooled
        };
        pooled.to_vec2::<f32>()
    }
}
