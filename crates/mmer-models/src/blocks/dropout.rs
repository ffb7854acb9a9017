//! Inverted dropout with a cheap mask generator.
//!
//! burn's `Dropout` samples every mask element through `rand`'s Bernoulli
//! on a ChaCha stream; on the attention weights of the Multimodal Attention
//! Network (millions of elements per step) that alone took about a sixth of
//! a training step (perf, `mmer bench train-epoch` on AMuSE). Here one draw
//! from the backend's seeded generator seeds a SplitMix64 stream that fills
//! the mask, so training stays deterministic under `device.seed`. The module
//! is burn's own `Dropout`: same record, same training flag.
//!
//! Data-parallel training runs the shards of a batch on their own threads,
//! and the backend's generator is global: threads drawing from it in
//! whatever order the scheduler picks would make training irreproducible.
//! Inside [`with_dropout_stream`] every mask on the thread — [`dropout`]'s
//! included — comes from a stream seeded per shard instead.

use std::cell::Cell;

use burn::nn::Dropout;
use burn::tensor::{Device, Distribution, Tensor, TensorData};

/// SplitMix64 (Steele, Lea & Flood 2014): a fast, well-mixed stream for
/// masks; not for anything that needs a cryptographic generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

thread_local! {
    /// This thread's mask stream, set by [`with_dropout_stream`].
    static STREAM: Cell<Option<u64>> = const { Cell::new(None) };
}

/// 48 random bits from the backend's seeded generator (two uniform draws of
/// 24 bits each): a seed that follows `device.seed`.
pub fn backend_seed(device: &Device) -> u64 {
    let draws: Vec<f32> = Tensor::<1>::random([2], Distribution::Uniform(0.0, 1.0), device)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    let bits = |i: usize| (draws.get(i).copied().unwrap_or(0.0) * 16_777_216.0) as u64;
    (bits(0) << 24) | bits(1)
}

/// Runs the shards of a data-parallel batch, each `jobs[k]` on its own
/// scoped thread with its dropout masks drawn from a stream derived from
/// `stream` (a [`backend_seed`] drawn for the batch) and `k`; returns the
/// results in shard order, resuming a shard's panic here. Build the jobs
/// (and the model forks they own) before calling: forking in shard order
/// on this thread keeps a run deterministic under its seed.
pub fn run_shards<T, F>(stream: u64, jobs: Vec<F>) -> Vec<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    std::thread::scope(|scope| {
        let workers: Vec<_> = jobs
            .into_iter()
            .enumerate()
            .map(|(k, job)| {
                let seed = stream ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                scope.spawn(move || with_dropout_stream(seed, job))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Runs `f` with every dropout mask this thread draws seeded from a stream
/// that starts at `seed`, not from the backend's global generator; the
/// previous state is restored afterwards, also on panic.
pub fn with_dropout_stream<R>(seed: u64, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<u64>);
    impl Drop for Restore {
        fn drop(&mut self) {
            STREAM.set(self.0);
        }
    }
    let _restore = Restore(STREAM.replace(Some(seed)));
    f()
}

/// The next mask seed of this thread's stream, if one is set.
fn stream_seed() -> Option<u64> {
    let mut rng = SplitMix64(STREAM.get()?);
    let seed = rng.next();
    STREAM.set(Some(rng.0));
    Some(seed)
}

/// `dropout`'s forward pass: burn's own outside [`with_dropout_stream`] (the
/// masks the text-only results were trained with), [`fast_dropout`]'s
/// inside it.
pub fn dropout<const D: usize>(dropout: &Dropout, input: Tensor<D>) -> Tensor<D> {
    if STREAM.get().is_some() {
        fast_dropout(dropout, input)
    } else {
        dropout.forward(input)
    }
}

/// `dropout`'s forward pass (identity outside training, as burn's), with
/// the mask from `SplitMix64`.
pub fn fast_dropout<const D: usize>(dropout: &Dropout, input: Tensor<D>) -> Tensor<D> {
    let device = input.device();
    if !dropout.training.is_enabled() || !device.is_autodiff() || dropout.prob == 0.0 {
        return input;
    }
    let keep = 1.0 - dropout.prob;
    let mut rng = SplitMix64(stream_seed().unwrap_or_else(|| backend_seed(&device)));
    let threshold = (keep * 4_294_967_296.0) as u64;
    let scale = (1.0 / keep) as f32;
    let shape = input.shape();
    let n = shape.num_elements();
    let mut mask = Vec::with_capacity(n + 1);
    while mask.len() < n {
        let r = rng.next();
        for half in [r & 0xFFFF_FFFF, r >> 32] {
            mask.push(if half < threshold { scale } else { 0.0 });
        }
    }
    mask.truncate(n);
    input * Tensor::<D>::from_data(TensorData::new(mask, shape), &device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::DropoutConfig;
    use burn::tensor::Device;

    #[test]
    fn keeps_the_expected_share_scaled_and_is_seeded() {
        let device = Device::default().autodiff();
        let dropout = DropoutConfig::new(0.25).init();
        let run = |seed| {
            device.seed(seed);
            fast_dropout(&dropout, Tensor::<2>::ones([100, 100], &device))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let a = run(7);
        let kept = a.iter().filter(|&&v| v > 0.0).count();
        assert!((7_200..7_800).contains(&kept), "kept {kept} of 10000");
        assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
        assert_eq!(a, run(7), "same seed, same mask");
        assert_ne!(a, run(8), "another seed, another mask");
    }

    #[test]
    fn a_stream_replaces_the_backend_generator_on_its_thread() {
        let device = Device::default().autodiff();
        let d = DropoutConfig::new(0.5).init();
        let mask = || {
            dropout(&d, Tensor::<1>::ones([256], &device))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let in_stream = |seed| with_dropout_stream(seed, || [mask(), mask()]);
        let a = in_stream(11);
        // The same masks again (the backend generator moved on meanwhile:
        // other tests draw from it), and on another thread.
        assert_eq!(a, in_stream(11));
        let other = std::thread::scope(|s| s.spawn(|| in_stream(11)).join().unwrap());
        assert_eq!(a, other);
        assert_ne!(a[0], a[1], "each mask takes the stream's next seed");
        assert_ne!(a, in_stream(12));
        // Outside the scope the stream is gone (burn's dropout draws again),
        // also after a panic inside it.
        assert!(stream_seed().is_none());
        let panicked = std::panic::catch_unwind(|| with_dropout_stream(5, || panic!("inside")));
        assert!(panicked.is_err() && stream_seed().is_none());
    }

    #[test]
    fn identity_without_autodiff() {
        let device = Device::default();
        let dropout = DropoutConfig::new(0.5).init();
        let x = Tensor::<1>::ones([64], &device);
        let y = fast_dropout(&dropout, x.clone());
        assert_eq!(x.into_data(), y.into_data());
    }
}
