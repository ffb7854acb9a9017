//! Hostile WAV input ("Nothing lost, nothing silent: strict inputs"): the
//! committed regression corpus, and a property-test harness over arbitrary
//! bytes and mutated valid files.
//!
//! What every case must satisfy: [`read_wav`] never panics; an error names
//! the file; a success has finite samples, exactly as many frames as the
//! bytes present hold (never the header's claim when the data is shorter),
//! and agrees with [`read_wav_header`].
//!
//! The harness runs [`DEFAULT_CASES`] cases per property (a few seconds);
//! `PROPTEST_CASES=100000 cargo test -p mmer-audio --test hostile_wav`
//! searches longer.

use std::path::{Path, PathBuf};

use mmer_audio::{Error, WavEncoding, read_wav, read_wav_header};
use proptest::prelude::*;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 512;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

/// Whether an error is of the expected variant.
type ErrorKind = fn(&Error) -> bool;

/// The files of `tests/corpus/`, each the input a user reported (or its
/// sibling), and the error each must give. See `tests/corpus/README.md`.
#[test]
fn corpus_files_give_their_errors() {
    let cases: [(&str, ErrorKind, &str); 5] = [
        (
            "seven_bit.wav",
            |e| matches!(e, Error::InvalidWav { .. }),
            "7 bits per sample",
        ),
        (
            "header_only.wav",
            |e| matches!(e, Error::EmptyWav { .. }),
            "no audio samples",
        ),
        (
            "truncated.wav",
            |e| {
                matches!(
                    e,
                    Error::TruncatedWav {
                        declared_bytes: 1600,
                        present_bytes: 800,
                        ..
                    }
                )
            },
            "declares 1600 bytes (0.050 s) but only 800 are present (0.025 s)",
        ),
        (
            "block_align.wav",
            |e| matches!(e, Error::InvalidWav { .. }),
            "block align of 2 bytes, but 2 channel(s) of 2 bytes make 4",
        ),
        (
            "bogus_chunk.wav",
            |e| matches!(e, Error::InvalidWav { .. }),
            "past the end of the file",
        ),
    ];
    for (name, is_expected, text) in cases {
        let path = corpus(name);
        for err in [
            read_wav(&path).expect_err(name),
            read_wav_header(&path).expect_err(name),
        ] {
            let msg = err.to_string();
            assert!(is_expected(&err), "{name}: {msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(text), "{name}: {msg}");
        }
    }
}

/// A valid WAV: `frames` frames of `channels` channels, PCM of `bits` bits
/// (or 32-bit float), with a `LIST` chunk before the data when asked.
fn valid_wav(channels: u16, bits: u16, float: bool, frames: usize, list: bool) -> Vec<u8> {
    let width = usize::from(bits / 8);
    let align = usize::from(channels) * width;
    let rate = 16_000u32;
    let mut fmt = Vec::new();
    fmt.extend((if float { 3u16 } else { 1 }).to_le_bytes());
    fmt.extend(channels.to_le_bytes());
    fmt.extend(rate.to_le_bytes());
    fmt.extend((rate * align as u32).to_le_bytes());
    fmt.extend((align as u16).to_le_bytes());
    fmt.extend(bits.to_le_bytes());
    let mut data = Vec::with_capacity(frames * align);
    for i in 0..frames * usize::from(channels) {
        let x = ((i as f32) * 0.37).sin() * 0.5;
        if float {
            data.extend(x.to_le_bytes());
        } else {
            let v = (x * 2f32.powi(i32::from(bits) - 1)) as i64;
            let v = if bits == 8 { v + 128 } else { v };
            data.extend(&v.to_le_bytes()[..width]);
        }
    }
    let mut body = b"WAVE".to_vec();
    if list {
        body.extend(b"LIST\x05\0\0\0INFOx\0");
    }
    body.extend(b"fmt ");
    body.extend(16u32.to_le_bytes());
    body.extend(fmt);
    body.extend(b"data");
    body.extend((data.len() as u32).to_le_bytes());
    body.extend(data);
    let mut out = b"RIFF".to_vec();
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

/// Byte offsets of the header fields of [`valid_wav`] without a `LIST`
/// chunk, with their widths: RIFF size, fmt size, tag, channels, rate, byte
/// rate, block align, bits, data size.
const FIELDS: [(usize, usize); 9] = [
    (4, 4),
    (16, 4),
    (20, 2),
    (22, 2),
    (24, 4),
    (28, 4),
    (32, 2),
    (34, 2),
    (40, 4),
];

/// One change to a valid file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Set header field `FIELDS[field]` to `value` (truncated to its width).
    Field { field: usize, value: u32 },
    /// Flip one bit anywhere in the file.
    Flip { at: usize, bit: u8 },
    /// Keep only the first `at` bytes (modulo the length).
    Truncate { at: usize },
    /// Append bytes.
    Append(Vec<u8>),
}

fn edge_value() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(7),
        Just(8),
        Just(12),
        Just(24),
        Just(0xfffe),
        Just(u32::MAX),
        Just(u32::MAX - 1),
        Just(0x7fff_ffff),
        any::<u32>(),
        0u32..100_000,
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (0..FIELDS.len(), edge_value()).prop_map(|(field, value)| Mutation::Field { field, value }),
        2 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        2 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        1 => proptest::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Append),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            Mutation::Field { field, value } => {
                let (at, width) = FIELDS[*field];
                if at + width <= bytes.len() {
                    bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
                }
            }
            Mutation::Flip { at, bit } => {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] ^= 1 << bit;
                }
            }
            Mutation::Truncate { at } => {
                let keep = at % (bytes.len() + 1);
                bytes.truncate(keep);
            }
            Mutation::Append(extra) => bytes.extend(extra),
        }
    }
    bytes
}

/// Writes `bytes` as a WAV file and checks the invariants of the module
/// doc; returns whether it was read.
fn check(bytes: &[u8]) -> Result<bool, TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join("hostile-input.wav");
    std::fs::write(&path, bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let header = read_wav_header(&path);
    match read_wav(&path) {
        Err(err) => {
            let msg = err.to_string();
            prop_assert!(msg.contains("hostile-input.wav"), "{msg}");
            Ok(false)
        }
        Ok(audio) => {
            let header = header.map_err(|e| TestCaseError::fail(format!("header refused: {e}")))?;
            prop_assert!(matches!(
                header.encoding,
                WavEncoding::Int | WavEncoding::Float
            ));
            prop_assert!(header.data_offset + header.data_bytes <= bytes.len() as u64);
            let frames = header.data_bytes / u64::from(header.block_align);
            prop_assert_eq!(audio.samples.len() as u64, frames);
            prop_assert!(!audio.samples.is_empty());
            prop_assert_eq!(audio.sample_rate, header.sample_rate);
            prop_assert_eq!(Some(audio.duration_s()), header.duration_s());
            prop_assert!(audio.samples.iter().all(|x| x.is_finite()));
            Ok(true)
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes, half of them behind a RIFF/WAVE magic so the chunk
    /// parser is reached.
    #[test]
    fn arbitrary_bytes_never_panic(
        magic in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = if magic { b"RIFF\0\0\0\0WAVE".to_vec() } else { Vec::new() };
        bytes.extend(tail);
        check(&bytes)?;
    }

    /// Valid files with header fields set to edge values, bits flipped,
    /// truncated or extended.
    #[test]
    fn mutated_valid_wavs_never_panic_or_lie(
        channels in 1u16..4,
        format in 0usize..5,
        frames in 0usize..64,
        list in any::<bool>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let (bits, float) = [(8, false), (16, false), (24, false), (32, false), (32, true)][format];
        let original = valid_wav(channels, bits, float, frames, list);
        check(&apply(original, &mutations))?;
    }

    /// A valid file cut anywhere before its end is always refused: the
    /// header's duration is never reported for data that is not there.
    #[test]
    fn any_cut_is_refused(
        channels in 1u16..3,
        frames in 1usize..64,
        cut in any::<usize>(),
    ) {
        let original = valid_wav(channels, 16, false, frames, false);
        let keep = cut % original.len();
        prop_assert!(!check(&original[..keep])?, "a cut at byte {} was read", keep);
    }

    /// Integer PCM declaring a bit depth other than 8/16/24/32 is refused.
    #[test]
    fn odd_bit_depths_are_refused(
        bits in any::<u16>().prop_filter("not a PCM depth", |b| ![8, 16, 24, 32].contains(b)),
        frames in 1usize..32,
    ) {
        let mut bytes = valid_wav(1, 16, false, frames, false);
        bytes[34..36].copy_from_slice(&bits.to_le_bytes());
        prop_assert!(!check(&bytes)?, "{} bits per sample were read", bits);
    }

    /// Unmutated valid files are read exactly.
    #[test]
    fn valid_wavs_are_read(
        channels in 1u16..4,
        format in 0usize..5,
        frames in 1usize..64,
        list in any::<bool>(),
    ) {
        let (bits, float) = [(8, false), (16, false), (24, false), (32, false), (32, true)][format];
        prop_assert!(check(&valid_wav(channels, bits, float, frames, list))?);
    }
}
