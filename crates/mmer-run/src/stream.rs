//! Live analysis of a conversation as it is spoken: 16 kHz mono samples
//! arrive in chunks of any size, a turn closes at a pause in the speech
//! ([`TurnSegmenter`], an energy gate over 20 ms frames), and each closed
//! turn is transcribed (Whisper) and read by the text and voice (and face)
//! models of an [`Analyzer`], with the turns before it as its dialogue context
//! ([`LiveConversation`]). `mmer serve`'s WebSocket stream is this module
//! behind a socket.
//!
//! A turn can be analysed before it closes: once its speech has been
//! silent for [`SegmenterConfig::early_ms`], [`TurnSegmenter::early`]
//! offers the turn as it would close if the silence lasts. A caller that
//! starts its analysis then, on a copy of the conversation, has most of the
//! work done when the pause closes the turn; if speech resumes instead, the
//! turn that closes later is another one ([`SpeechTurn::same_speech`]) and
//! the early analysis is thrown away (cancelled: recognition checks a flag
//! before every decoder step). The live conversation keeps the last
//! [`MAX_CONTEXT_TURNS`] turns as context, so memory and the context
//! model's work per turn stay bounded on a stream of any length.
//!
//! Video is optional: a client may send frames ([`LiveFrame`], RGB, each
//! with its time in the stream). A [`FrameBuffer`] keeps them until the
//! turn they fall in closes; the turn carries at most [`MAX_TURN_FRAMES`]
//! of them, spread evenly over it, and its face is read from those as a
//! recording's keyframes are. Frames that arrive after their turn was
//! handed to analysis (sent late, or after an early offer that the pause
//! then confirmed) are not read.
//!
//! The gate is a simple energy detector (as `mmer_audio::activity`), not a
//! trained voice-activity model: a frame is speech when its energy is at
//! least [`SegmenterConfig::gate_db`] dBFS. Background noise above the gate
//! keeps a turn open until [`SegmenterConfig::max_turn_s`].

use serde::{Deserialize, Serialize};

use crate::analyze::{Analyzer, TurnEmotion};
use crate::error::Result;

/// Sample rate of a stream, Hz.
pub use mmer_audio::SAMPLE_RATE;

/// Frame of the energy gate, samples (20 ms at 16 kHz).
pub const GATE_FRAME: usize = 320;

/// How a stream is cut into turns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmenterConfig {
    /// A frame at least this loud (dBFS) is speech.
    pub gate_db: f32,
    /// Silence that closes a turn, milliseconds.
    pub pause_ms: u32,
    /// Shortest speech kept as a turn, milliseconds (a click or a cough
    /// shorter than this is dropped).
    pub min_speech_ms: u32,
    /// Longest turn, seconds: a turn still open this long is closed there.
    pub max_turn_s: f64,
    /// Audio kept before the first and after the last speech frame,
    /// milliseconds.
    pub pad_ms: u32,
    /// Silence after which the open turn is offered for analysis ahead of
    /// its close ([`TurnSegmenter::early`]), milliseconds; 0 never offers.
    /// Below `pause_ms` to be of use; at least `pad_ms` is waited anyway.
    pub early_ms: u32,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        Self {
            gate_db: -45.0,
            pause_ms: 600,
            min_speech_ms: 250,
            max_turn_s: 30.0,
            pad_ms: 100,
            early_ms: 200,
        }
    }
}

/// A turn cut from the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechTurn {
    /// Start, seconds since the stream began (padding included).
    pub start_s: f64,
    /// End, seconds (padding included).
    pub end_s: f64,
    /// The samples from `start_s` to `end_s`.
    pub samples: Vec<f32>,
    /// When the turn closed, seconds of stream: its last speech plus the
    /// pause that closed it (or the end of the stream, or the length
    /// limit). The latency of a live answer counts from here.
    pub closed_at_s: f64,
    /// Video frames inside the turn ([`FrameBuffer::frames_in`]); empty
    /// when the stream has no video.
    pub frames: Vec<LiveFrame>,
}

impl SpeechTurn {
    /// Whether `other` is this turn's speech: the same samples of the
    /// stream (an early offer and the turn that closed later, when speech
    /// did not resume in between). Frames are not compared.
    pub fn same_speech(&self, other: &SpeechTurn) -> bool {
        self.start_s == other.start_s && self.end_s == other.end_s && self.samples == other.samples
    }
}

/// Cuts a stream of samples into turns at pauses; holds at most one open
/// turn (bounded by `max_turn_s`) plus the padding before it.
#[derive(Debug, Clone)]
pub struct TurnSegmenter {
    config: SegmenterConfig,
    /// Samples not yet judged (less than one frame).
    pending: Vec<f32>,
    /// Samples since `buffer_start`: the padding before speech, or the
    /// open turn.
    buffer: Vec<f32>,
    /// Stream index of `buffer[0]`.
    buffer_start: usize,
    /// Stream index of the next sample to be judged.
    position: usize,
    /// Stream indices of the open turn's first and last speech frames
    /// (end exclusive).
    speech: Option<(usize, usize)>,
    /// The speech last offered by [`TurnSegmenter::early`].
    offered: Option<(usize, usize)>,
}

impl TurnSegmenter {
    /// A segmenter with `config`.
    pub fn new(config: SegmenterConfig) -> Self {
        Self {
            config,
            pending: Vec::new(),
            buffer: Vec::new(),
            buffer_start: 0,
            position: 0,
            speech: None,
            offered: None,
        }
    }

    /// Seconds of stream seen.
    pub fn seconds(&self) -> f64 {
        seconds(self.position + self.pending.len())
    }

    fn samples_of_ms(ms: u32) -> usize {
        (ms as usize) * (mmer_audio::SAMPLE_RATE as usize) / 1000
    }

    /// Adds `samples` and returns the turns they close, in order.
    pub fn push(&mut self, samples: &[f32]) -> Vec<SpeechTurn> {
        let mut closed = Vec::new();
        self.pending.extend_from_slice(samples);
        let frames = self.pending.len() / GATE_FRAME;
        let judged: Vec<f32> = self.pending.drain(..frames * GATE_FRAME).collect();
        for frame in judged.chunks_exact(GATE_FRAME) {
            let start = self.position;
            self.position += GATE_FRAME;
            self.buffer.extend_from_slice(frame);
            let loud = mmer_audio::waveform::energy_db(frame) >= self.config.gate_db;
            match (&mut self.speech, loud) {
                (Some((_, last)), true) => *last = self.position,
                (None, true) => self.speech = Some((start, self.position)),
                _ => {}
            }
            if let Some(turn) = self.close_if_due() {
                closed.push(turn);
            }
            if self.speech.is_none() {
                self.keep_padding_only();
            }
        }
        closed
    }

    /// The open turn as it will close if the silence after its speech
    /// lasts, once that silence is [`SegmenterConfig::early_ms`] long (and
    /// at least the padding): offered once per stretch of speech, and only
    /// when the speech is long enough to be a turn.
    pub fn early(&mut self) -> Option<SpeechTurn> {
        let (first, last) = self.speech?;
        let config = &self.config;
        let wait = Self::samples_of_ms(config.early_ms.max(config.pad_ms));
        if config.early_ms == 0 || self.position - last < wait || self.offered == self.speech {
            return None;
        }
        self.offered = self.speech;
        self.cut(first, last)
    }

    /// Ends the stream: the open turn, if its speech is long enough.
    pub fn finish(&mut self) -> Option<SpeechTurn> {
        let rest = std::mem::take(&mut self.pending);
        self.position += rest.len();
        self.buffer.extend_from_slice(&rest);
        let (first, last) = self.speech.take()?;
        self.cut(first, last)
    }

    /// Closes the open turn when a pause (or the length limit) ends it.
    fn close_if_due(&mut self) -> Option<SpeechTurn> {
        let (first, last) = self.speech?;
        let paused = self.position - last >= Self::samples_of_ms(self.config.pause_ms);
        let too_long = seconds(self.position - first) >= self.config.max_turn_s;
        if !(paused || too_long) {
            return None;
        }
        self.speech = None;
        let turn = self.cut(first, if too_long { self.position } else { last });
        self.keep_padding_only();
        turn
    }

    /// The turn from speech `first` to `last` with padding, taken out of
    /// the buffer; `None` when the speech is shorter than `min_speech_ms`.
    fn cut(&self, first: usize, last: usize) -> Option<SpeechTurn> {
        if last - first < Self::samples_of_ms(self.config.min_speech_ms) {
            return None;
        }
        let pad = Self::samples_of_ms(self.config.pad_ms);
        let start = first.saturating_sub(pad).max(self.buffer_start);
        let end = (last + pad).min(self.buffer_start + self.buffer.len());
        let samples = self.buffer[start - self.buffer_start..end - self.buffer_start].to_vec();
        Some(SpeechTurn {
            start_s: seconds(start),
            end_s: seconds(end),
            samples,
            closed_at_s: seconds(self.position),
            frames: Vec::new(),
        })
    }

    /// Drops the buffer but the last `pad_ms`, the padding of a turn that
    /// may start next.
    fn keep_padding_only(&mut self) {
        let keep = Self::samples_of_ms(self.config.pad_ms);
        if self.buffer.len() > keep {
            let drop = self.buffer.len() - keep;
            self.buffer.drain(..drop);
            self.buffer_start += drop;
        }
    }
}

fn seconds(samples: usize) -> f64 {
    samples as f64 / f64::from(mmer_audio::SAMPLE_RATE)
}

/// Frames a turn carries at most. A recording's turn reads up to 16
/// keyframes; a live turn's answer is waited for, and its faces are read
/// beside Whisper's decoding (one core each), so few enough that reading
/// them takes no longer: 16 frames of 480×360 added about 0.8 s to a live
/// answer on the 2-core VM (docs/RESULTS.md, "Serving and Python").
pub const MAX_TURN_FRAMES: usize = 6;

/// Largest side of a frame a stream takes, pixels (a recording's keyframes
/// are scaled to at most 640).
pub const MAX_FRAME_SIDE: usize = 1280;

/// One video frame of a stream: `width` × `height` RGB pixels, row-major,
/// 3 bytes each, at `time_s` seconds of stream (the clock of the audio:
/// sample count / 16 kHz).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveFrame {
    /// Seconds since the stream began.
    pub time_s: f64,
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

impl LiveFrame {
    /// A frame, checked.
    ///
    /// # Errors
    /// A message naming what is wrong: a time that is not a finite number
    /// ≥ 0, a side of 0 or above [`MAX_FRAME_SIDE`], or a byte count that
    /// is not `width * height * 3`.
    pub fn new(
        time_s: f64,
        width: usize,
        height: usize,
        rgb: Vec<u8>,
    ) -> std::result::Result<Self, String> {
        if !(time_s.is_finite() && time_s >= 0.0) {
            return Err(format!(
                "frame time {time_s} s: give the seconds since the stream began (≥ 0)"
            ));
        }
        for (side, value) in [("width", width), ("height", height)] {
            if value == 0 || value > MAX_FRAME_SIDE {
                return Err(format!(
                    "frame {side} {value}: each side must be 1 to {MAX_FRAME_SIDE} pixels (scale the frame down)"
                ));
            }
        }
        if rgb.len() != width * height * 3 {
            return Err(format!(
                "a {width}x{height} RGB frame takes {} bytes, got {}",
                width * height * 3,
                rgb.len()
            ));
        }
        Ok(Self {
            time_s,
            width,
            height,
            rgb,
        })
    }
}

/// The frames of a stream not yet read by a turn, in arrival order. Bounded:
/// past [`FrameBuffer::CAPACITY`] frames every second one is dropped, so a
/// long turn keeps frames spread over all of it at half the rate.
#[derive(Debug, Clone, Default)]
pub struct FrameBuffer {
    frames: Vec<LiveFrame>,
}

impl FrameBuffer {
    /// Frames held at most.
    pub const CAPACITY: usize = 128;

    /// Keeps `frame`.
    pub fn push(&mut self, frame: LiveFrame) {
        self.frames.push(frame);
        if self.frames.len() > Self::CAPACITY {
            let mut keep = false;
            self.frames.retain(|_| {
                keep = !keep;
                keep
            });
        }
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The frames from `turn.start_s` to `turn.end_s`, in time order: at
    /// most [`MAX_TURN_FRAMES`], spread evenly over those there are.
    pub fn frames_in(&self, turn: &SpeechTurn) -> Vec<LiveFrame> {
        let mut inside: Vec<&LiveFrame> = self
            .frames
            .iter()
            .filter(|f| turn.start_s <= f.time_s && f.time_s <= turn.end_s)
            .collect();
        inside.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
        let n = inside.len();
        let take = n.min(MAX_TURN_FRAMES);
        (0..take).map(|i| inside[i * n / take].clone()).collect()
    }

    /// Drops the frames before `time_s` (a closed turn's end: no later
    /// turn reads them).
    pub fn forget_before(&mut self, time_s: f64) {
        self.frames.retain(|f| f.time_s >= time_s);
    }
}

/// Turns a [`LiveConversation`] keeps as the context of the next one.
pub const MAX_CONTEXT_TURNS: usize = 64;

/// One live conversation so far: its last [`MAX_CONTEXT_TURNS`] turns with
/// words, embedded, are the dialogue context of the next turn.
#[derive(Debug, Clone)]
pub struct LiveConversation {
    dialogue: mmer_core::Dialogue,
    turns: usize,
}

impl Default for LiveConversation {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveConversation {
    /// A conversation with no turns yet.
    pub fn new() -> Self {
        Self {
            dialogue: mmer_core::Dialogue {
                id: "stream".into(),
                utterances: Vec::new(),
            },
            turns: 0,
        }
    }

    /// Turns analysed so far.
    pub fn len(&self) -> usize {
        self.turns
    }

    /// Whether no turn has been analysed.
    pub fn is_empty(&self) -> bool {
        self.turns == 0
    }

    /// Transcribes `turn` and reads its emotion from its words (in the
    /// context of the turns before it), its voice and, when it carries
    /// frames, its face; the turn joins the
    /// conversation, and the oldest turn leaves the context past
    /// [`MAX_CONTEXT_TURNS`]. Gives up when `cancelled()` says so (an early
    /// analysis whose speech went on), the conversation unchanged.
    ///
    /// # Errors
    /// Recognition or a model fails (a non-finite sample, a model error),
    /// or it was cancelled.
    pub fn analyze(
        &mut self,
        analyzer: &Analyzer,
        turn: &SpeechTurn,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<TurnEmotion> {
        let emotion =
            analyzer.analyze_live_turn(&mut self.dialogue, self.turns, turn, cancelled)?;
        self.turns += 1;
        let utterances = &mut self.dialogue.utterances;
        if utterances.len() > MAX_CONTEXT_TURNS {
            utterances.drain(..utterances.len() - MAX_CONTEXT_TURNS);
        }
        Ok(emotion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: usize = 16_000;

    /// `seconds` of a 200 Hz tone at amplitude 0.3 (about −13 dBFS).
    fn tone(seconds: f64) -> Vec<f32> {
        (0..(seconds * RATE as f64) as usize)
            .map(|i| 0.3 * (i as f32 * 2.0 * std::f32::consts::PI * 200.0 / RATE as f32).sin())
            .collect()
    }

    fn silence(seconds: f64) -> Vec<f32> {
        vec![0.0; (seconds * RATE as f64) as usize]
    }

    /// Two utterances with a 1 s pause, fed in odd-sized chunks.
    fn stream() -> Vec<f32> {
        [
            silence(0.5),
            tone(1.0),
            silence(0.3), // shorter than the pause: same turn
            tone(0.5),
            silence(1.0),
            tone(2.0),
            silence(1.0),
        ]
        .concat()
    }

    #[test]
    fn turns_close_at_pauses_with_their_bounds() {
        let mut segmenter = TurnSegmenter::new(SegmenterConfig::default());
        let mut turns = Vec::new();
        for chunk in stream().chunks(777) {
            turns.extend(segmenter.push(chunk));
        }
        assert!(segmenter.finish().is_none());
        assert_eq!(
            turns.len(),
            2,
            "{:?}",
            turns
                .iter()
                .map(|t| (t.start_s, t.end_s))
                .collect::<Vec<_>>()
        );
        let frame = GATE_FRAME as f64 / RATE as f64;
        let pad = 0.1;
        // Speech 0.5–2.3 s, then 3.3–5.3 s; bounds to a frame, padded.
        for (turn, (start, end)) in turns.iter().zip([(0.5, 2.3), (3.3, 5.3)]) {
            assert!(
                (turn.start_s - (start - pad)).abs() <= frame,
                "{}",
                turn.start_s
            );
            assert!((turn.end_s - (end + pad)).abs() <= frame, "{}", turn.end_s);
            assert_eq!(
                turn.samples.len(),
                ((turn.end_s - turn.start_s) * RATE as f64).round() as usize
            );
            // Closed one pause after the speech ended.
            assert!(
                (turn.closed_at_s - (end + 0.6)).abs() <= 2.0 * frame,
                "{}",
                turn.closed_at_s
            );
        }
        // The samples are the stream's own.
        let all = stream();
        let a = (turns[1].start_s * RATE as f64).round() as usize;
        assert_eq!(turns[1].samples[..], all[a..a + turns[1].samples.len()]);
    }

    /// The early offer is the turn that closes when the silence lasts,
    /// made once, `early_ms` into the silence; when speech resumes, the
    /// turn that closes is another one.
    #[test]
    fn a_turn_is_offered_early_and_closes_as_offered_unless_speech_resumes() {
        let mut segmenter = TurnSegmenter::new(SegmenterConfig::default());
        assert!(
            segmenter
                .push(&[silence(0.5), tone(1.0), silence(0.1)].concat())
                .is_empty()
        );
        assert!(
            segmenter.early().is_none(),
            "100 ms of silence is too early"
        );
        assert!(segmenter.push(&silence(0.12)).is_empty());
        let offer = segmenter.early().expect("offered 200 ms into the silence");
        assert!(segmenter.early().is_none(), "offered once");
        let closed = segmenter.push(&silence(0.5));
        assert_eq!(closed.len(), 1);
        assert!(closed[0].same_speech(&offer));
        assert!(closed[0].closed_at_s > offer.closed_at_s + 0.3);

        // Speech resumes 300 ms into the silence: the offer is stale.
        segmenter.push(&tone(0.5));
        segmenter.push(&silence(0.3));
        let offer = segmenter.early().expect("offered");
        segmenter.push(&tone(0.4));
        let closed = segmenter.push(&silence(0.7));
        assert_eq!(closed.len(), 1);
        assert!(!closed[0].same_speech(&offer));
        assert!(closed[0].end_s > offer.end_s + 0.5);

        let off = SegmenterConfig {
            early_ms: 0,
            ..SegmenterConfig::default()
        };
        let mut segmenter = TurnSegmenter::new(off);
        segmenter.push(&[tone(1.0), silence(0.5)].concat());
        assert!(segmenter.early().is_none(), "early_ms = 0 never offers");
    }

    #[test]
    fn the_end_of_the_stream_closes_the_open_turn_and_clicks_are_dropped() {
        let mut segmenter = TurnSegmenter::new(SegmenterConfig::default());
        // A 60 ms click, then speech still going when the stream ends.
        let audio = [silence(0.5), tone(0.06), silence(1.0), tone(1.0)].concat();
        assert!(segmenter.push(&audio).is_empty());
        let last = segmenter.finish().expect("the open turn");
        assert!((last.start_s - 1.46).abs() < 0.03, "{}", last.start_s);
        assert!(
            (last.closed_at_s - 2.56).abs() < 0.03,
            "{}",
            last.closed_at_s
        );
        assert!(segmenter.finish().is_none());
    }

    #[test]
    fn a_turn_longer_than_the_limit_is_cut_and_memory_stays_bounded() {
        let config = SegmenterConfig {
            max_turn_s: 2.0,
            ..SegmenterConfig::default()
        };
        let mut segmenter = TurnSegmenter::new(config);
        let turns = segmenter.push(&tone(5.0));
        assert_eq!(turns.len(), 2);
        assert!(turns.iter().all(|t| t.end_s - t.start_s <= 2.2));
        // Long silence keeps only the padding.
        segmenter.finish();
        segmenter.push(&silence(60.0));
        assert!(segmenter.buffer.len() <= RATE / 10);
    }

    fn frame(time_s: f64) -> LiveFrame {
        LiveFrame::new(time_s, 2, 1, vec![0; 6]).unwrap()
    }

    fn turn(start_s: f64, end_s: f64) -> SpeechTurn {
        SpeechTurn {
            start_s,
            end_s,
            samples: Vec::new(),
            closed_at_s: end_s,
            frames: Vec::new(),
        }
    }

    #[test]
    fn a_turn_takes_at_most_6_of_its_frames_spread_evenly_and_the_buffer_stays_bounded() {
        let mut buffer = FrameBuffer::default();
        // 10 fps for 3 s, sent out of order in pairs.
        for i in 0..15 {
            buffer.push(frame(f64::from(2 * i + 1) / 10.0));
            buffer.push(frame(f64::from(2 * i) / 10.0));
        }
        let times = |frames: &[LiveFrame]| frames.iter().map(|f| f.time_s).collect::<Vec<_>>();
        // 1.0–1.4 s: 5 frames, all taken, in time order.
        assert_eq!(
            times(&buffer.frames_in(&turn(1.0, 1.4))),
            [1.0, 1.1, 1.2, 1.3, 1.4]
        );
        // The whole stream: 30 frames, 6 taken from first to near last.
        let all = buffer.frames_in(&turn(0.0, 3.0));
        assert_eq!(all.len(), MAX_TURN_FRAMES);
        assert_eq!(times(&all), [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
        // A closed turn's frames and those before leave.
        buffer.forget_before(1.5);
        assert_eq!(buffer.len(), 15);
        assert!(buffer.frames_in(&turn(0.0, 1.4)).is_empty());
        // Past the capacity every second frame goes: bounded, still spread.
        let mut buffer = FrameBuffer::default();
        for i in 0..1000 {
            buffer.push(frame(f64::from(i) / 100.0));
        }
        assert!(buffer.len() <= FrameBuffer::CAPACITY);
        let kept = buffer.frames_in(&turn(0.0, 10.0));
        assert!(
            kept[0].time_s < 1.0 && kept[5].time_s > 8.0,
            "{:?}",
            times(&kept)
        );
    }

    #[test]
    fn bad_frames_are_refused_with_what_is_wrong() {
        for (time_s, width, height, bytes, wanted) in [
            (f64::NAN, 2, 1, 6, "frame time NaN"),
            (-1.0, 2, 1, 6, "(≥ 0)"),
            (0.0, 0, 1, 0, "frame width 0"),
            (0.0, 2, MAX_FRAME_SIDE + 1, 6, "scale the frame down"),
            (0.0, 2, 1, 5, "a 2x1 RGB frame takes 6 bytes, got 5"),
        ] {
            let err = LiveFrame::new(time_s, width, height, vec![0; bytes]).unwrap_err();
            assert!(err.contains(wanted), "{err}");
        }
    }
}
