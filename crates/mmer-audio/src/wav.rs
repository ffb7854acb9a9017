//! WAV reading: integer PCM (8, 16, 24 or 32 bit) or 32-bit float, any
//! channel count, down-mixed to mono `f32` in [-1, 1].
//!
//! Down-mixing averages the channels with equal weights (no surround-specific
//! coefficients: speech corpora are mono or stereo).
//!
//! The header is checked against itself and against the file before a
//! sample is read ([`read_wav_header`]): a bit depth that no PCM WAV has
//! (7 bits would read a 16-bit file as twice as many 8-bit samples), a
//! block alignment or byte rate that contradicts channels × sample size ×
//! rate, a data chunk longer than the bytes present (a cut file) or one
//! holding no samples at all are errors naming the file, never a recording
//! of the wrong length. The parser is our own rather than hound's reader:
//! it never sizes a buffer from a header field (only from the bytes
//! present), accepts the `0xFFFFFFFF` data length of WAVs written to a
//! pipe, honours RIFF pad bytes, and reads `WAVE_FORMAT_EXTENSIBLE`
//! samples with fewer valid bits left-justified, as the format defines.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::SAMPLE_RATE;
use crate::error::{Error, Result};
use crate::resample::resample;

/// Mono audio at its native sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Mono samples, nominally in [-1, 1].
    pub samples: Vec<f32>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
}

impl Audio {
    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }
}

/// How the samples of a WAV file are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavEncoding {
    /// Linear PCM integers: unsigned 8-bit, or signed little-endian 16, 24
    /// or 32-bit (format tag 1, or `WAVE_FORMAT_EXTENSIBLE` with the PCM
    /// sub-format).
    Int,
    /// Little-endian IEEE float, 32 or 64-bit (format tag 3, or the
    /// extensible float sub-format).
    Float,
    /// Any other format tag (µ-law, A-law, ADPCM, MP3 in WAV, ...): the
    /// header is not checked beyond channels and rate, and [`read_wav`]
    /// does not decode it.
    Other(u16),
}

/// The header of a WAV file, checked against itself and the file's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavHeader {
    /// Sample encoding.
    pub encoding: WavEncoding,
    /// Channels (≥ 1).
    pub channels: u16,
    /// Frames per second (≥ 1).
    pub sample_rate: u32,
    /// Bits of one sample's container: 8, 16, 24 or 32 for integers, 32 or
    /// 64 for floats (as declared for [`WavEncoding::Other`]).
    pub bits_per_sample: u16,
    /// Bits that carry signal, left-justified in the container (the
    /// extensible header's `wValidBitsPerSample`; else `bits_per_sample`).
    pub valid_bits: u16,
    /// Bytes of one frame (all channels of one sample instant).
    pub block_align: u16,
    /// The header's average bytes per second.
    pub byte_rate: u32,
    /// Offset of the first sample byte in the file.
    pub data_offset: u64,
    /// Bytes of sample data, all present in the file (whole frames for
    /// integer and float encodings; never 0).
    pub data_bytes: u64,
}

impl WavHeader {
    /// Frames of sample data (`None` for [`WavEncoding::Other`], whose
    /// frames are not a fixed size).
    pub fn frames(&self) -> Option<u64> {
        match self.encoding {
            WavEncoding::Int | WavEncoding::Float => {
                Some(self.data_bytes / u64::from(self.block_align))
            }
            WavEncoding::Other(_) => None,
        }
    }

    /// Duration of the sample data, seconds (from the byte rate for
    /// [`WavEncoding::Other`]; `None` when that is 0).
    pub fn duration_s(&self) -> Option<f64> {
        match self.frames() {
            Some(frames) => Some(frames as f64 / f64::from(self.sample_rate)),
            None => {
                (self.byte_rate > 0).then(|| self.data_bytes as f64 / f64::from(self.byte_rate))
            }
        }
    }
}

/// Reads and checks the header of a WAV file without reading its samples.
///
/// # Errors
/// [`Error::OpenWav`] (missing or unreadable file), [`Error::InvalidWav`]
/// (not RIFF/WAVE, no `fmt ` or `data` chunk, a chunk past the end of the
/// file, an integer bit depth other than 8/16/24/32, a float depth other
/// than 32/64, a block alignment or byte rate inconsistent with channels ×
/// bytes per sample × rate, data that is not whole frames),
/// [`Error::TruncatedWav`], [`Error::EmptyWav`]; all name the file.
pub fn read_wav_header(path: impl AsRef<Path>) -> Result<WavHeader> {
    let path = path.as_ref();
    let (header, _) = open_checked(path)?;
    Ok(header)
}

/// Reads a WAV file and down-mixes it to mono.
///
/// Integer PCM is scaled by `2^(b-1)` for `b`-bit containers (so 16-bit
/// −32768 → −1.0; 8-bit WAV is unsigned, 128 → 0.0); float WAVs are taken
/// as they are.
///
/// # Errors
/// Those of [`read_wav_header`]; [`Error::UnsupportedWav`] (an encoding
/// other than integer PCM or 32-bit float), [`Error::NonFiniteWav`]
/// (NaN/Inf in a float WAV); all name the file.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Audio> {
    let path = path.as_ref();
    let (header, mut reader) = open_checked(path)?;
    let unsupported = |msg: String| Error::UnsupportedWav {
        path: path.to_path_buf(),
        msg,
    };
    match (header.encoding, header.bits_per_sample) {
        (WavEncoding::Int, _) | (WavEncoding::Float, 32) => {}
        (WavEncoding::Float, bits) => return Err(unsupported(format!("{bits}-bit float samples"))),
        (WavEncoding::Other(tag), _) => {
            return Err(unsupported(format!(
                "format tag 0x{tag:04x} (compressed or companded audio)"
            )));
        }
    }
    let open_err = |source| Error::OpenWav {
        path: path.to_path_buf(),
        source,
    };
    reader
        .seek(SeekFrom::Start(header.data_offset))
        .map_err(open_err)?;
    // `data_bytes` is at most what the file holds (checked by the header
    // parser), so this allocation is bounded by the file's size.
    let mut bytes = Vec::with_capacity(header.data_bytes as usize);
    reader
        .take(header.data_bytes)
        .read_to_end(&mut bytes)
        .map_err(open_err)?;
    if (bytes.len() as u64) < header.data_bytes {
        // The file shrank between the header check and this read.
        return Err(Error::TruncatedWav {
            path: path.to_path_buf(),
            declared_bytes: header.data_bytes,
            present_bytes: bytes.len() as u64,
            byte_rate: header.byte_rate,
        });
    }
    let interleaved = decode(&header, &bytes);
    let channels = usize::from(header.channels);
    if let Some(index) = interleaved.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFiniteWav {
            path: path.to_path_buf(),
            index,
            frame: index / channels,
        });
    }
    let samples = if channels == 1 {
        interleaved
    } else {
        let inv = 1.0 / channels as f32;
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() * inv)
            .collect()
    };
    Ok(Audio {
        samples,
        sample_rate: header.sample_rate,
    })
}

/// Reads a WAV file and returns mono samples at [`SAMPLE_RATE`] (16 kHz),
/// resampled with [`crate::Resampler`] when the file has another rate.
///
/// # Errors
/// Those of [`read_wav`].
pub fn load_16k_mono(path: impl AsRef<Path>) -> Result<Vec<f32>> {
    let audio = read_wav(path)?;
    if audio.sample_rate == SAMPLE_RATE {
        return Ok(audio.samples);
    }
    resample(&audio.samples, audio.sample_rate, SAMPLE_RATE)
}

/// Opens `path` and parses its header, leaving the reader anywhere.
fn open_checked(path: &Path) -> Result<(WavHeader, BufReader<File>)> {
    let open_err = |source| Error::OpenWav {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(open_err)?;
    let len = file.metadata().map_err(open_err)?.len();
    let mut reader = BufReader::new(file);
    let header = parse_header(&mut reader, len).map_err(|problem| problem.at(path))?;
    Ok((header, reader))
}

/// Decodes interleaved samples of a checked integer or 32-bit float header.
fn decode(header: &WavHeader, bytes: &[u8]) -> Vec<f32> {
    let width = usize::from(header.bits_per_sample / 8);
    let samples = bytes.chunks_exact(width);
    match (header.encoding, width) {
        (WavEncoding::Float, _) => samples
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        // 8-bit WAV is unsigned with 128 as zero.
        (_, 1) => samples.map(|c| (f32::from(c[0]) - 128.0) / 128.0).collect(),
        (_, 2) => samples
            .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32_768.0)
            .collect(),
        // Placing the 24 bits in the top of an i32 sign-extends them.
        (_, 3) => samples
            .map(|c| (i32::from_le_bytes([0, c[0], c[1], c[2]]) >> 8) as f32 / 8_388_608.0)
            .collect(),
        _ => samples
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32 / 2_147_483_648.0)
            .collect(),
    }
}

/// Why a header was refused, before the path is attached.
enum Problem {
    Io(std::io::Error),
    Invalid(String),
    Truncated {
        declared_bytes: u64,
        present_bytes: u64,
        byte_rate: u32,
    },
    Empty,
}

impl Problem {
    fn at(self, path: &Path) -> Error {
        let path = PathBuf::from(path);
        match self {
            Problem::Io(source) => Error::OpenWav { path, source },
            Problem::Invalid(msg) => Error::InvalidWav { path, msg },
            Problem::Truncated {
                declared_bytes,
                present_bytes,
                byte_rate,
            } => Error::TruncatedWav {
                path,
                declared_bytes,
                present_bytes,
                byte_rate,
            },
            Problem::Empty => Error::EmptyWav { path },
        }
    }
}

impl From<std::io::Error> for Problem {
    fn from(e: std::io::Error) -> Self {
        Problem::Io(e)
    }
}

/// The tail of the `KSDATAFORMAT_SUBTYPE_*` GUIDs after their 2-byte format
/// code (`xxxx0000-0000-0010-8000-00aa00389b71`).
const SUBFORMAT_SUFFIX: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];
const FORMAT_PCM: u16 = 0x0001;
const FORMAT_FLOAT: u16 = 0x0003;
const FORMAT_EXTENSIBLE: u16 = 0xfffe;
/// The data length a writer that cannot seek back leaves in the header
/// (ffmpeg, sox to a pipe): the data runs to the end of the file.
const STREAMED_LENGTH: u32 = u32::MAX;

/// The `fmt ` chunk's fields.
struct Fmt {
    encoding: WavEncoding,
    channels: u16,
    sample_rate: u32,
    byte_rate: u32,
    block_align: u16,
    bits_per_sample: u16,
    valid_bits: u16,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn fourcc(id: &[u8]) -> String {
    id.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// Parses the RIFF header and chunks up to the start of the sample data of
/// a file of `len` bytes, and checks them (see [`read_wav_header`]).
fn parse_header<R: Read + Seek>(r: &mut R, len: u64) -> std::result::Result<WavHeader, Problem> {
    if len < 12 {
        return Err(Problem::Invalid(format!(
            "{len} bytes, too short for a RIFF/WAVE header"
        )));
    }
    let mut riff = [0u8; 12];
    r.read_exact(&mut riff)?;
    match &riff[..4] {
        b"RIFF" => {}
        b"RIFX" => return Err(Problem::Invalid("big-endian RIFX is not supported".into())),
        b"RF64" => {
            return Err(Problem::Invalid(
                "RF64 (WAV over 4 GB) is not supported".into(),
            ));
        }
        other => {
            return Err(Problem::Invalid(format!(
                "no RIFF header (starts with {:?})",
                fourcc(other)
            )));
        }
    }
    if &riff[8..12] != b"WAVE" {
        return Err(Problem::Invalid(format!(
            "a RIFF file of type {:?}, not WAVE",
            fourcc(&riff[8..12])
        )));
    }
    let mut pos = 12u64;
    let mut fmt: Option<Fmt> = None;
    let (data_offset, declared) = loop {
        if pos + 8 > len {
            return Err(Problem::Invalid(match fmt {
                None => format!("no fmt chunk (the file ends at byte {len})"),
                Some(_) => format!("no data chunk (the file ends at byte {len})"),
            }));
        }
        r.seek(SeekFrom::Start(pos))?;
        let mut head = [0u8; 8];
        r.read_exact(&mut head)?;
        let size = u32_at(&head, 4);
        let body = pos + 8;
        match &head[..4] {
            b"data" => break (body, size),
            b"fmt " => {
                if fmt.is_some() {
                    return Err(Problem::Invalid(format!(
                        "a second fmt chunk at byte {pos}"
                    )));
                }
                if body + u64::from(size) > len {
                    return Err(Problem::Invalid(format!(
                        "the fmt chunk declares {size} bytes, past the end of the file ({len} bytes)"
                    )));
                }
                // 40 bytes hold every field used; longer chunks carry extras.
                let mut b = vec![0u8; (size as usize).min(40)];
                r.read_exact(&mut b)?;
                fmt = Some(parse_fmt(&b)?);
            }
            id => {
                let end = body + u64::from(size) + u64::from(size & 1);
                if end > len {
                    return Err(Problem::Invalid(format!(
                        "chunk {:?} at byte {pos} declares {size} bytes, past the end of the \
                         file ({len} bytes)",
                        fourcc(id)
                    )));
                }
            }
        }
        pos = body + u64::from(size) + u64::from(size & 1);
    };
    let Some(fmt) = fmt else {
        return Err(Problem::Invalid(
            "the data chunk comes before any fmt chunk".into(),
        ));
    };
    let present = len - data_offset;
    let data_bytes = if declared == STREAMED_LENGTH {
        present
    } else if u64::from(declared) > present {
        if present == 0 {
            return Err(Problem::Empty);
        }
        return Err(Problem::Truncated {
            declared_bytes: u64::from(declared),
            present_bytes: present,
            byte_rate: fmt.byte_rate,
        });
    } else {
        u64::from(declared)
    };
    if data_bytes == 0 {
        return Err(Problem::Empty);
    }
    if matches!(fmt.encoding, WavEncoding::Int | WavEncoding::Float)
        && data_bytes % u64::from(fmt.block_align) != 0
    {
        return Err(Problem::Invalid(format!(
            "{data_bytes} bytes of sample data are not a whole number of {}-byte frames",
            fmt.block_align
        )));
    }
    Ok(WavHeader {
        encoding: fmt.encoding,
        channels: fmt.channels,
        sample_rate: fmt.sample_rate,
        bits_per_sample: fmt.bits_per_sample,
        valid_bits: fmt.valid_bits,
        block_align: fmt.block_align,
        byte_rate: fmt.byte_rate,
        data_offset,
        data_bytes,
    })
}

/// Parses and checks the first (up to 40) bytes of a `fmt ` chunk.
fn parse_fmt(b: &[u8]) -> std::result::Result<Fmt, Problem> {
    if b.len() < 16 {
        return Err(Problem::Invalid(format!(
            "a fmt chunk of {} bytes (at least 16)",
            b.len()
        )));
    }
    let tag = u16_at(b, 0);
    let channels = u16_at(b, 2);
    let sample_rate = u32_at(b, 4);
    let byte_rate = u32_at(b, 8);
    let block_align = u16_at(b, 12);
    let bits_per_sample = u16_at(b, 14);
    if channels == 0 {
        return Err(Problem::Invalid("0 channels".into()));
    }
    if sample_rate == 0 {
        return Err(Problem::Invalid("a sample rate of 0 Hz".into()));
    }
    let (encoding, valid_bits) = match tag {
        FORMAT_PCM => (WavEncoding::Int, bits_per_sample),
        FORMAT_FLOAT => (WavEncoding::Float, bits_per_sample),
        FORMAT_EXTENSIBLE => {
            if b.len() < 40 || u16_at(b, 16) < 22 {
                return Err(Problem::Invalid(format!(
                    "a WAVE_FORMAT_EXTENSIBLE fmt chunk of {} bytes (needs 40)",
                    b.len()
                )));
            }
            let code = u16_at(b, 24);
            let encoding = if b[26..40] != SUBFORMAT_SUFFIX {
                WavEncoding::Other(FORMAT_EXTENSIBLE)
            } else {
                match code {
                    FORMAT_PCM => WavEncoding::Int,
                    FORMAT_FLOAT => WavEncoding::Float,
                    other => WavEncoding::Other(other),
                }
            };
            // 0 means "not given": all container bits are valid.
            let valid = match u16_at(b, 18) {
                0 => bits_per_sample,
                v => v,
            };
            (encoding, valid)
        }
        other => (WavEncoding::Other(other), bits_per_sample),
    };
    let fmt = Fmt {
        encoding,
        channels,
        sample_rate,
        byte_rate,
        block_align,
        bits_per_sample,
        valid_bits,
    };
    if matches!(encoding, WavEncoding::Other(_)) {
        return Ok(fmt);
    }
    let allowed: &[u16] = match encoding {
        WavEncoding::Float => &[32, 64],
        _ => &[8, 16, 24, 32],
    };
    if !allowed.contains(&bits_per_sample) {
        let kind = if encoding == WavEncoding::Float {
            "float samples need 32 or 64"
        } else {
            "integer PCM needs 8, 16, 24 or 32"
        };
        return Err(Problem::Invalid(format!(
            "{bits_per_sample} bits per sample ({kind})"
        )));
    }
    if valid_bits > bits_per_sample {
        return Err(Problem::Invalid(format!(
            "{valid_bits} valid bits in {bits_per_sample}-bit samples"
        )));
    }
    let frame = u32::from(channels) * u32::from(bits_per_sample / 8);
    if u32::from(block_align) != frame {
        return Err(Problem::Invalid(format!(
            "a block align of {block_align} bytes, but {channels} channel(s) of {} bytes \
             make {frame}",
            bits_per_sample / 8
        )));
    }
    if u64::from(byte_rate) != u64::from(block_align) * u64::from(sample_rate) {
        return Err(Problem::Invalid(format!(
            "a byte rate of {byte_rate}, but {sample_rate} Hz × {block_align}-byte frames make {}",
            u64::from(block_align) * u64::from(sample_rate)
        )));
    }
    Ok(fmt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, spec: hound::WavSpec, frames: &[Vec<f32>]) {
        let mut w = hound::WavWriter::create(path, spec).expect("create wav");
        for frame in frames {
            for &x in frame {
                match spec.sample_format {
                    hound::SampleFormat::Float => w.write_sample(x).expect("write"),
                    hound::SampleFormat::Int => {
                        w.write_sample((x * 32767.0).round() as i16).expect("write")
                    }
                }
            }
        }
        w.finalize().expect("finalize");
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mmer-audio-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        dir.join(name)
    }

    #[test]
    fn stereo_int16_is_averaged_to_mono() {
        let path = tmp("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write(&path, spec, &[vec![0.5, 0.0], vec![-0.5, -0.25]]);
        let audio = read_wav(&path).expect("read");
        assert_eq!(audio.sample_rate, 8000);
        assert_eq!(audio.samples.len(), 2);
        assert!((audio.samples[0] - 0.25).abs() < 1e-4);
        assert!((audio.samples[1] + 0.375).abs() < 1e-4);
    }

    #[test]
    fn float_nan_is_a_typed_error_naming_the_file() {
        let path = tmp("nan.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        write(&path, spec, &[vec![0.1], vec![f32::NAN]]);
        let err = read_wav(&path).expect_err("NaN must fail");
        assert!(matches!(err, Error::NonFiniteWav { index: 1, .. }), "{err}");
        assert!(err.to_string().contains("nan.wav"), "{err}");
    }

    #[test]
    fn empty_and_missing_files_are_typed_errors() {
        let path = tmp("empty.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write(&path, spec, &[]);
        assert!(matches!(read_wav(&path), Err(Error::EmptyWav { .. })));
        let missing = tmp("does-not-exist.wav");
        let err = read_wav(&missing).expect_err("missing file");
        assert!(matches!(err, Error::OpenWav { .. }));
        assert!(err.to_string().contains("does-not-exist.wav"));
    }

    #[test]
    fn garbage_file_is_an_invalid_wav_naming_the_file() {
        let path = tmp("garbage.wav");
        std::fs::write(&path, b"not a wav file at all").expect("write");
        let err = read_wav(&path).expect_err("garbage");
        assert!(matches!(err, Error::InvalidWav { .. }), "{err}");
        assert!(err.to_string().contains("garbage.wav"), "{err}");
    }

    /// A RIFF/WAVE file with one `fmt ` chunk (`fmt` is its body) and one
    /// `data` chunk declaring `declared` bytes, followed by `data`.
    fn riff(fmt: &[u8], declared: u32, data: &[u8]) -> Vec<u8> {
        let mut body = b"WAVE".to_vec();
        body.extend(b"fmt ");
        body.extend((fmt.len() as u32).to_le_bytes());
        body.extend(fmt);
        body.extend(b"data");
        body.extend(declared.to_le_bytes());
        body.extend(data);
        let mut out = b"RIFF".to_vec();
        out.extend((body.len() as u32).to_le_bytes());
        out.extend(body);
        out
    }

    /// A plain `fmt ` body: tag, channels, rate, container bits.
    fn fmt(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        let align = channels * bits / 8;
        let mut b = Vec::new();
        b.extend(tag.to_le_bytes());
        b.extend(channels.to_le_bytes());
        b.extend(rate.to_le_bytes());
        b.extend((rate * u32::from(align)).to_le_bytes());
        b.extend(align.to_le_bytes());
        b.extend(bits.to_le_bytes());
        b
    }

    fn read_bytes(name: &str, bytes: &[u8]) -> Result<Audio> {
        let path = tmp(name);
        std::fs::write(&path, bytes).expect("write");
        read_wav(&path)
    }

    #[test]
    fn every_integer_depth_and_float_decode_to_the_same_scale() {
        // −half scale, then +half scale, in each encoding.
        let cases: [(&str, u16, u16, Vec<u8>); 5] = [
            ("u8.wav", 1, 8, vec![64, 192]),
            (
                "s16.wav",
                1,
                16,
                [-16_384i16, 16_384]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            ("s24.wav", 1, 24, vec![0x00, 0x00, 0xc0, 0x00, 0x00, 0x40]),
            (
                "s32.wav",
                1,
                32,
                [i32::MIN / 2, i32::MAX / 2 + 1]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            (
                "f32.wav",
                3,
                32,
                [-0.5f32, 0.5]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
        ];
        for (name, tag, bits, data) in cases {
            let bytes = riff(&fmt(tag, 1, 8000, bits), data.len() as u32, &data);
            let audio = read_bytes(name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(audio.samples, vec![-0.5, 0.5], "{name}");
        }
    }

    #[test]
    fn extensible_pcm_with_fewer_valid_bits_is_left_justified() {
        let mut f = fmt(FORMAT_EXTENSIBLE, 1, 8000, 24);
        f.extend(22u16.to_le_bytes()); // cbSize
        f.extend(20u16.to_le_bytes()); // valid bits
        f.extend(4u32.to_le_bytes()); // channel mask
        f.extend(FORMAT_PCM.to_le_bytes());
        f.extend(SUBFORMAT_SUFFIX);
        // 0x400000 << 0 in a 24-bit container = +0.5, whatever the valid bits.
        let bytes = riff(&f, 3, &[0x00, 0x00, 0x40]);
        let audio = read_bytes("ext20.wav", &bytes).expect("extensible");
        assert_eq!(audio.samples, vec![0.5]);
        let header = read_wav_header(tmp("ext20.wav")).expect("header");
        assert_eq!((header.bits_per_sample, header.valid_bits), (24, 20));
    }

    #[test]
    fn streamed_length_pad_bytes_and_trailing_chunks_are_read() {
        let data: Vec<u8> = [1000i16, -1000]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let streamed = riff(&fmt(1, 1, 16_000, 16), u32::MAX, &data);
        assert_eq!(
            read_bytes("streamed.wav", &streamed)
                .expect("streamed")
                .samples
                .len(),
            2
        );
        // An odd-sized LIST chunk before the data is followed by a pad byte,
        // and a chunk after the data is not audio.
        let mut padded = b"RIFF\0\0\0\0WAVE".to_vec();
        padded.extend(b"LIST");
        padded.extend(3u32.to_le_bytes());
        padded.extend(b"abc\0");
        padded.extend(b"fmt ");
        padded.extend(16u32.to_le_bytes());
        padded.extend(fmt(1, 1, 16_000, 16));
        padded.extend(b"data");
        padded.extend(4u32.to_le_bytes());
        padded.extend(&data);
        padded.extend(b"junk");
        padded.extend(2u32.to_le_bytes());
        padded.extend(b"zz");
        let audio = read_bytes("padded.wav", &padded).expect("padded");
        assert_eq!(audio.samples.len(), 2);
    }

    #[test]
    fn inconsistent_headers_are_refused_with_the_values() {
        let data = [0u8; 8];
        let mut seven = fmt(1, 1, 16_000, 16);
        seven[14] = 7;
        let mut align = fmt(1, 2, 16_000, 16);
        align[12] = 2;
        let mut rate = fmt(1, 1, 16_000, 16);
        rate[8..12].copy_from_slice(&16_000u32.to_le_bytes());
        let cases = [
            ("seven.wav", seven, "7 bits per sample"),
            ("align.wav", align, "block align of 2 bytes"),
            ("rate.wav", rate, "byte rate of 16000"),
            (
                "f24.wav",
                fmt(3, 1, 16_000, 24),
                "24 bits per sample (float",
            ),
            ("zero_ch.wav", fmt(1, 0, 16_000, 16), "0 channels"),
            ("zero_hz.wav", fmt(1, 1, 0, 16), "0 Hz"),
        ];
        for (name, f, want) in cases {
            let err = read_bytes(name, &riff(&f, 8, &data)).expect_err(name);
            assert!(matches!(err, Error::InvalidWav { .. }), "{name}: {err}");
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains(want), "{msg}");
        }
        let err = read_bytes("mulaw.wav", &riff(&fmt(7, 1, 8000, 8), 8, &data)).expect_err("µ-law");
        assert!(matches!(err, Error::UnsupportedWav { .. }), "{err}");
        let header = read_wav_header(tmp("mulaw.wav")).expect("µ-law header is well-formed");
        assert_eq!(header.encoding, WavEncoding::Other(7));
    }

    #[test]
    fn cut_and_sample_less_files_never_report_the_header_length() {
        let data = [0u8; 3200];
        let full = riff(&fmt(1, 1, 16_000, 16), 3200, &data);
        let err = read_bytes("cut.wav", &full[..44 + 1600]).expect_err("truncated");
        assert!(
            matches!(
                err,
                Error::TruncatedWav {
                    declared_bytes: 3200,
                    present_bytes: 1600,
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("cut.wav") && msg.contains("(0.100 s)") && msg.contains("(0.050 s)"),
            "{msg}"
        );
        let err = read_bytes("header_only.wav", &full[..44]).expect_err("header only");
        assert!(matches!(err, Error::EmptyWav { .. }), "{err}");
        assert!(err.to_string().contains("no audio samples"), "{err}");
        let err = read_bytes("half_frame.wav", &full[..45]).expect_err("a partial sample");
        assert!(
            matches!(
                err,
                Error::TruncatedWav {
                    present_bytes: 1,
                    ..
                }
            ),
            "{err}"
        );
        let mut bogus = full.clone();
        bogus[40..44].copy_from_slice(&3u32.to_le_bytes());
        let err = read_bytes("odd.wav", &bogus).expect_err("not whole frames");
        assert!(
            err.to_string().contains("whole number of 2-byte frames"),
            "{err}"
        );
    }
}
