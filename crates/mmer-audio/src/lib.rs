//! Pure-Rust speech DSP for mmer's audio stream (DESIGN §2: "16 kHz mono PCM
//! → log-mel / prosody / eGeMAPS-like features").
//!
//! This crate owns: reading WAV files ([`read_wav`], any channel count → mono),
//! band-limited resampling to 16 kHz ([`Resampler`]), frame-level descriptors
//! ([`Analyzer::frames`] → [`FrameFeatures`]: log-mel, MFCC + deltas, loudness,
//! energy, zero-crossing rate, F0/voicing/HNR, spectral shape) and
//! utterance-level functionals ([`functionals`] → [`Functionals`], named and
//! stable, validated against openSMILE eGeMAPSv02 on EmoDB — see
//! `docs/audio-features.md`). Optional energy-based trimming: [`trim_silence`].
//!
//! It leaves to others: decoding video/compressed audio (ffmpeg, in the
//! extraction stage), storing features (mmer-core's feature store), and any
//! learning. No burn, candle or ffmpeg here, and openSMILE is only a test
//! reference (non-commercial licence, DESIGN §5).
//!
//! All analysis runs at [`SAMPLE_RATE`] on [`WINDOW_LENGTH`]-sample Hamming
//! frames every [`HOP_LENGTH`] samples — the 25 ms / 10 ms framing of HTK
//! (HTK Book §5.2) and Kaldi. (eGeMAPS frames its energy/spectral LLDs at
//! 20 ms and its pitch at 60 ms; our YIN buffer is 25 ms + the longest period.)

mod activity;
mod error;
mod frames;
mod functionals;
mod loudness;
mod mel;
mod mfcc;
mod perturbation;
mod pitch;
mod resample;
mod spectral;
mod stft;
mod waveform;

pub use activity::{ACTIVITY_FLOOR_DB, ACTIVITY_PAD_FRAMES, ACTIVITY_RANGE_DB, speech_bounds, trim_silence};
pub use error::{Error, Result};
pub use frames::{Analyzer, FrameFeatures, frame_features, validate};
pub use functionals::{Functionals, SCALAR_NAMES, functional_names, functionals, summarise};
pub use loudness::{LOUDNESS_EXPONENT, equal_loudness};
pub use mel::{LOG_FLOOR, MelFilterbank, MelNorm, MelScale};
pub use mfcc::{CEP_LIFTER, Cepstrum, DELTA_WINDOW, MFCC_BANDS, MFCC_FMAX_HZ, MFCC_FMIN_HZ, deltas};
pub use perturbation::{MAX_AMPLITUDE_FACTOR, MAX_PERIOD_FACTOR, Perturbation, SEARCH_RANGE_REL, perturbation};
pub use pitch::{
    F0_MAX_HZ, F0_MIN_HZ, HNR_RHO_MAX, HNR_RHO_MIN, MIN_VOICED_FRAMES, PitchTrack, PitchTracker, SILENCE_RMS,
    VOICING_THRESHOLD, YIN_THRESHOLD, YIN_WINDOW, voiced_runs,
};
pub use resample::{MAX_TABLE_PHASES, PASSBAND_EDGE, Resampler, STOPBAND_DB, resample};
pub use spectral::SPECTRAL_FMAX_HZ;
pub use stft::{NUM_BINS, PowerSpectrogram, Stft, frame_count};
pub use wav::{Audio, load_16k_mono, read_wav};

mod wav;

/// Analysis sample rate, Hz (DESIGN §2: 16 kHz mono PCM).
pub const SAMPLE_RATE: u32 = 16_000;
/// Analysis window, samples: 25 ms at 16 kHz.
pub const WINDOW_LENGTH: usize = 400;
/// Frame hop, samples: 10 ms at 16 kHz.
pub const HOP_LENGTH: usize = 160;
/// FFT size, samples: the next power of two above [`WINDOW_LENGTH`] (31.25 Hz bins).
pub const FFT_SIZE: usize = 512;
/// Bands of the log-mel spectrogram (64, as VGGish/PANNs-style audio front ends).
pub const NUM_MEL_BANDS: usize = 64;
/// MFCCs per frame, `c0..c12` (HTK's customary 12 cepstra + c0).
pub const NUM_MFCC: usize = 13;
