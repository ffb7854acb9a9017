//! Pure-Rust speech DSP for mmer's audio stream (DESIGN §2: "16 kHz mono PCM
//! → log-mel / prosody / eGeMAPS-like features").
//!
//! This crate owns: reading WAV files ([`read_wav`], any channel count → mono;
//! [`read_wav_header`] checks a header against itself and the file),
//! band-limited resampling to 16 kHz ([`Resampler`]), frame-level descriptors
//! ([`Analyzer::frames`] → [`FrameFeatures`]: log-mel, MFCC + deltas, loudness,
//! energy, zero-crossing rate, F0/voicing/HNR, spectral shape) and
//! utterance-level functionals ([`functionals()`] → [`Functionals`], named and
//! stable, validated against openSMILE eGeMAPSv02 on EmoDB — see
//! `docs/audio-features.md`). Optional energy-based trimming: [`trim_silence`].
//! Who speaks ([`speakers`]): a [`VoicePrint`] per turn ([`voice_print`]),
//! speaker ids by clustering them ([`cluster_speakers`], [`assign_speakers`],
//! [`estimate_speakers`]) and the accuracy of a labelling
//! ([`speaker_accuracy`]).
//!
//! It leaves to others: decoding video/compressed audio (ffmpeg, in the
//! extraction stage), cutting a recording into turns, storing features
//! (mmer-core's feature store), and any learning. No burn, candle or ffmpeg
//! here, and openSMILE is only a test reference (non-commercial licence,
//! DESIGN §5).
//!
//! All analysis runs at [`SAMPLE_RATE`] on [`WINDOW_LENGTH`]-sample Hamming
//! frames every [`HOP_LENGTH`] samples — the 25 ms / 10 ms framing of HTK
//! (HTK Book §5.2) and Kaldi. (eGeMAPS frames its energy/spectral LLDs at
//! 20 ms and its pitch at 60 ms; our YIN buffer is 25 ms + the longest period.)

pub mod activity;
mod error;
pub mod frames;
pub mod functionals;
pub mod loudness;
pub mod mel;
pub mod mfcc;
pub mod perturbation;
pub mod pitch;
pub mod resample;
pub mod speakers;
pub mod spectral;
pub mod stft;
pub mod wav;
pub mod waveform;

pub use activity::{speech_bounds, trim_silence};
pub use error::{Error, Result};
pub use frames::{Analyzer, FrameFeatures, frame_features, validate};
pub use functionals::{Functionals, functional_names, functionals, summarise};
pub use mel::{MelFilterbank, MelNorm, MelScale};
pub use perturbation::{Perturbation, perturbation};
pub use pitch::{PitchTrack, PitchTracker};
pub use resample::{Resampler, resample};
pub use speakers::{
    DEFAULT_FACE_WEIGHT, SpeakerCount, SpeakerEstimate, VoicePrint, assign_speakers,
    assign_speakers_with_faces, cluster_speakers, estimate_speakers, speaker_accuracy, voice_print,
};
pub use wav::{Audio, WavEncoding, WavHeader, load_16k_mono, read_wav, read_wav_header};

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
