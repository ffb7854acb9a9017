//! A user's own conversations, in a plain format: one record per utterance,
//! as JSON Lines (`.jsonl`) or CSV (`.csv`) with the same field names.
//!
//! | field      | type             | required | meaning                                   |
//! |------------|------------------|----------|-------------------------------------------|
//! | `dialogue` | string           | yes      | conversation id; records group by it      |
//! | `turn`     | integer ≥ 0      | yes      | position in the conversation              |
//! | `speaker`  | string           | yes      | who speaks                                |
//! | `text`     | string           | yes      | transcript, not empty                     |
//! | `label`    | string or list   | no       | gold class name(s) of the run's label set |
//! | `audio`    | path             | no       | audio clip of the turn                    |
//! | `video`    | path             | no       | video clip of the turn                    |
//! | `start`    | seconds ≥ 0      | no       | where the turn starts in its clip         |
//! | `end`      | seconds > start  | no       | where it ends (give both or neither)      |
//!
//! ```text
//! {"dialogue": "cafe", "turn": 0, "speaker": "Ana", "text": "You came!", "label": "joy"}
//! ```
//!
//! A CSV file must start with a header naming its columns (any order; the
//! optional ones may be left out). A column or JSON key that is not in the
//! table is an error naming it, so a typo (`lable`) fails loudly instead of
//! silently dropping the labels. Examples: `docs/examples/conversation.jsonl`
//! and `docs/examples/conversation.csv`.
//!
//! # Semantics
//! - Dialogues keep the order of their first record; turns are sorted by
//!   `turn`, which need not be contiguous ([`Utterance::index`] is the rank).
//!   Utterance ids are `<dialogue>_utt<turn>`.
//! - `dialogue` and `speaker` are trimmed and must not be empty; `text` is
//!   kept as written and must not be empty or blank (an utterance with no
//!   words cannot be classified from text, and in a hand-written file it is
//!   a mistake).
//!
//! # Labels
//! The classes are those of the run's label set: a preset (`meld`,
//! `iemocap`, `synthetic`) or the classes the run declares (`[data.labels]
//! classes = [...]` in its config, `--labels calm,tense,happy` on the
//! command line). Names match case-insensitively, surrounding whitespace
//! ignored.
//! - A missing, `null` or empty (`""`) `label` means unlabelled: the turn
//!   is context, not scored.
//! - In a single-label set `label` names one class.
//! - In a multi-label set it names any number of classes: a JSON list
//!   (`"label": ["joy", "surprise"]`) or a string of names separated by `;`
//!   (`"joy;surprise"`, the form a CSV cell takes; one name alone is a
//!   list of one). An empty list — `[]`, or `;` in a CSV cell — means "no
//!   emotion": every class false, which is a label, unlike a missing one.
//! - An unknown class name, or a list in a single-label set, is an error
//!   naming the file, line and utterance (`<dialogue>_utt<turn>`) and
//!   listing the declared classes.
//!
//! ```text
//! dialogue,turn,speaker,text,label
//! cafe,0,Ana,You came!,joy;surprise
//! cafe,1,Ben,I said I would.,;
//! cafe,2,Ana,Coffee?,
//! ```
//!
//! (multi-label: turn 0 is joy and surprise, turn 1 no emotion, turn 2
//! unlabelled.)
//!
//! # Files
//! - The file must be UTF-8 (a leading byte-order mark is ignored). Blank
//!   JSONL lines are skipped.
//! - Records that are not in a file (the Python package's) are parsed from
//!   memory by [`parse_conversations`], with the same rules and messages.
//! - CSV quoting must be RFC 4180's, as every CSV writer produces it: a
//!   field containing quotes, commas or line breaks is quoted as a whole,
//!   with its quotes doubled (`"He said ""hi"""`). A quoted field that is
//!   never closed (it would swallow every later record), text after a
//!   closing quote, or a quote inside an unquoted field (stray quotes would
//!   merge the records between them) is an error at its line.
//!
//! # Media paths
//! `mmer_core::Utterance` has no media field, so [`load_conversations`]
//! drops `audio`/`video`; [`read_conversations`] returns them beside the
//! dialogues in [`Conversations::media`], keyed by utterance id. Relative
//! paths are resolved against the conversation file's directory. Existence
//! is not checked here: the feature extractor reports missing clips.
//!
//! `start`/`end` cut a turn out of a longer recording, so one video of a
//! whole conversation plus a timed transcript is enough: every turn names
//! the same file with its own time range ([`MediaRefs::segment`]). Whether
//! the range lies inside the clip is checked by the extractor, which knows
//! the clip's duration.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use mmer_core::{Dialogue, Label, LabelSpace, Utterance};
use serde::Deserialize;

use crate::csv_quotes::{BadQuote, bad_quote_error, fields_before, find_bad_quote};
use crate::meld::{LineCounter, csv_error};
use crate::{Error, Result};

/// The columns / keys of the format, required ones first.
pub const COLUMNS: [&str; 9] = [
    "dialogue", "turn", "speaker", "text", "label", "audio", "video", "start", "end",
];
const REQUIRED: usize = 4;

/// The media files of one utterance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaRefs {
    /// Audio clip, resolved against the conversation file's directory.
    pub audio: Option<PathBuf>,
    /// Video clip, resolved likewise.
    pub video: Option<PathBuf>,
    /// The turn's time range in its clip(s), when the record gives one.
    pub segment: Option<Segment>,
    /// Line of the record in the file (1-based), so a later check on the
    /// media (missing, shared with another turn) can point at it.
    pub line: u64,
}

/// A turn's time range within its clip, seconds: `0 ≤ start < end`, both
/// finite (checked when the file is read).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, Deserialize)]
pub struct Segment {
    /// Start, seconds from the beginning of the clip.
    pub start_s: f64,
    /// End, seconds from the beginning of the clip.
    pub end_s: f64,
}

impl Segment {
    /// Length in seconds.
    pub fn duration_s(&self) -> f64 {
        self.end_s - self.start_s
    }

    /// `(start, end)` in whole milliseconds: a key for comparing ranges.
    pub fn millis(&self) -> (u64, u64) {
        let ms = |t: f64| (t * 1e3).round() as u64;
        (ms(self.start_s), ms(self.end_s))
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3}–{:.3} s", self.start_s, self.end_s)
    }
}

/// Dialogues plus the media paths [`mmer_core::Utterance`] cannot hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversations {
    /// The conversations in file order.
    pub dialogues: Vec<Dialogue>,
    /// Media paths by utterance id, for the utterances that name any.
    pub media: BTreeMap<String, MediaRefs>,
}

/// A file format of this module, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationFormat {
    /// JSON Lines: one object per line (`.jsonl`).
    Jsonl,
    /// CSV with a header (`.csv`).
    Csv,
}

impl ConversationFormat {
    /// The format of `path` by its extension (case-insensitive).
    ///
    /// # Errors
    /// [`Error::UnsupportedFormat`] for any other extension.
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("jsonl") => Ok(Self::Jsonl),
            Some("csv") => Ok(Self::Csv),
            _ => Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                expected: ".jsonl or .csv".into(),
            }),
        }
    }
}

/// Loads the conversations of a `.jsonl` or `.csv` file, labels resolved in
/// `labels`. Media paths are dropped; see [`read_conversations`].
///
/// # Errors
/// As [`read_conversations`].
pub fn load_conversations(path: &Path, labels: &LabelSpace) -> Result<Vec<Dialogue>> {
    Ok(read_conversations(path, labels)?.dialogues)
}

/// Loads the conversations of a `.jsonl` or `.csv` file with their media
/// paths.
///
/// # Errors
/// [`Error::UnsupportedFormat`] (extension), [`Error::Io`],
/// [`Error::MissingColumns`] / [`Error::UnexpectedColumns`] (CSV header),
/// [`Error::Parse`] (bad JSON or CSV, broken CSV quoting such as an
/// unterminated quote, invalid UTF-8, a non-integer turn, an unknown key, an
/// empty dialogue id or speaker), [`Error::EmptyText`],
/// [`Error::UnknownLabel`], [`Error::LabelList`] (several classes in a
/// single-label set), [`Error::DuplicateId`] (a turn given twice),
/// [`Error::Format`] (no utterances). Each names the file and line, and the
/// dialogue and turn where they are known.
pub fn read_conversations(path: &Path, labels: &LabelSpace) -> Result<Conversations> {
    let format = ConversationFormat::from_path(path)?;
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_conversations(&bytes, format, path, labels)
}

/// Parses conversation records already in memory — the content of a file
/// in `format` — by the rules of [`read_conversations`], for callers whose
/// records do not come from a file (the Python package serialises its
/// records to JSON Lines, one per line).
///
/// `source` stands for the file: errors name it as they would the path
/// (`<source>:<line>: …`), and relative media paths are resolved against
/// its parent directory (a bare name such as `conversation` leaves them
/// relative to the working directory).
///
/// # Errors
/// As [`read_conversations`], less [`Error::UnsupportedFormat`] and
/// [`Error::Io`].
pub fn parse_conversations(
    bytes: &[u8],
    format: ConversationFormat,
    source: &Path,
    labels: &LabelSpace,
) -> Result<Conversations> {
    let records = match format {
        ConversationFormat::Jsonl => parse_jsonl(bytes, source)?,
        ConversationFormat::Csv => parse_csv(bytes, source)?,
    };
    assemble(records, source, labels)
}

/// One utterance as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    dialogue: String,
    turn: u64,
    speaker: String,
    text: String,
    #[serde(default)]
    label: Option<RawLabel>,
    #[serde(default)]
    audio: Option<PathBuf>,
    #[serde(default)]
    video: Option<PathBuf>,
    #[serde(default)]
    start: Option<f64>,
    #[serde(default)]
    end: Option<f64>,
}

/// A `label` as written: one string (in a multi-label set, names separated
/// by [`LabelSpace::LIST_SEPARATOR`]) or a JSON list of names. Other
/// readers of conversation records (the server) resolve it through
/// [`TurnCollector`], so the rules stay one.
#[derive(Debug, Clone, PartialEq)]
pub enum RawLabel {
    /// One string.
    Text(String),
    /// A list of class names.
    List(Vec<String>),
}

impl std::fmt::Display for RawLabel {
    /// As written: `"joy;fear"` or `["joy", "fear"]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawLabel::Text(text) => write!(f, "{text:?}"),
            RawLabel::List(names) => write!(f, "{names:?}"),
        }
    }
}

impl<'de> Deserialize<'de> for RawLabel {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawLabel;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a class name or a list of class names")
            }

            fn visit_str<E: serde::de::Error>(
                self,
                text: &str,
            ) -> std::result::Result<RawLabel, E> {
                Ok(RawLabel::Text(text.to_string()))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<RawLabel, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(RawLabel::List(names))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The file as UTF-8 without BOM, or a parse error at the first bad line.
fn utf8<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count() as u64;
        Error::Parse {
            path: path.to_path_buf(),
            line,
            msg: "text is not valid UTF-8".into(),
        }
    })
}

fn parse_jsonl(bytes: &[u8], path: &Path) -> Result<Vec<(u64, Record)>> {
    let text = utf8(bytes, path)?;
    let mut records = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u64 + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let parse_err = |msg: String| Error::Parse {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| parse_err(format!("invalid JSON: {e}")))?;
        if !value.is_object() {
            // serde would read an array positionally as the record's fields.
            let found = match &value {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::Bool(_) => "a boolean",
                _ => "null",
            };
            return Err(parse_err(format!(
                "expected a JSON object (one record per line), found {found}"
            )));
        }
        // Name the dialogue and turn in the message when the object has them.
        let whose = match (
            value.get("dialogue").and_then(|d| d.as_str()),
            value.get("turn"),
        ) {
            (Some(d), Some(t)) => format!("dialogue {d:?} turn {t}: "),
            (Some(d), None) => format!("dialogue {d:?}: "),
            _ => String::new(),
        };
        let record: Record =
            serde_json::from_value(value).map_err(|e| parse_err(format!("{whose}{e}")))?;
        records.push((line, record));
    }
    Ok(records)
}

fn parse_csv(bytes: &[u8], path: &Path) -> Result<Vec<(u64, Record)>> {
    let text = utf8(bytes, path)?;
    let bad_quote = find_bad_quote(text.as_bytes());
    if let Some(bad) = bad_quote.as_ref().filter(|b| b.record == 0) {
        return Err(bad_quote_error(path, text.as_bytes(), bad, None, None));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let mut lines = LineCounter::new(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(path, e, &mut lines))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let missing: Vec<String> = COLUMNS[..REQUIRED]
        .iter()
        .filter(|c| col(c).is_none())
        .map(|c| c.to_string())
        .collect();
    if !header.iter().any(|h| COLUMNS.contains(&h.as_str())) {
        // No known column at all: most likely the header line is missing.
        return Err(Error::MissingColumns {
            path: path.to_path_buf(),
            missing,
            found: header,
        });
    }
    let mut unexpected = Vec::new();
    for (i, h) in header.iter().enumerate() {
        if !COLUMNS.contains(&h.as_str()) || header[..i].contains(h) {
            unexpected.push(h.clone());
        }
    }
    if !unexpected.is_empty() {
        let allowed = COLUMNS.map(String::from).to_vec();
        return Err(Error::UnexpectedColumns {
            path: path.to_path_buf(),
            unexpected,
            allowed,
        });
    }
    let (Some(dialogue_col), Some(turn_col), Some(speaker_col), Some(text_col)) =
        (col("dialogue"), col("turn"), col("speaker"), col("text"))
    else {
        return Err(Error::MissingColumns {
            path: path.to_path_buf(),
            missing,
            found: header,
        });
    };
    let (label_col, audio_col, video_col) = (col("label"), col("audio"), col("video"));
    let (start_col, end_col) = (col("start"), col("end"));

    // The record with broken quoting swallowed the rest of the file or
    // merged records: report it where it starts, naming whose record it is.
    let quote_error = |bad: &BadQuote| {
        let known = fields_before(text.as_bytes(), bad);
        let dialogue = known
            .get(dialogue_col)
            .map(|d| format!("dialogue {:?}", d.trim()));
        let turn = known.get(turn_col).map(|t| format!("turn {}", t.trim()));
        let whose = match (dialogue, turn) {
            (Some(d), Some(t)) => Some(format!("{d} {t}")),
            (d, t) => d.or(t),
        };
        bad_quote_error(path, text.as_bytes(), bad, Some(&header), whose)
    };

    let mut records = Vec::new();
    for (i, record) in reader.records().enumerate() {
        if let Some(bad) = bad_quote.as_ref().filter(|b| b.record == i + 1) {
            return Err(quote_error(bad));
        }
        let record = record.map_err(|e| csv_error(path, e, &mut lines))?;
        let line = lines.line(record.position());
        let field = |c: usize| record.get(c).unwrap_or_default();
        let optional = |c: Option<usize>| c.map(field).filter(|v| !v.trim().is_empty());
        let dialogue = field(dialogue_col).to_string();
        let turn = field(turn_col).trim().parse().map_err(|_| Error::Parse {
            path: path.to_path_buf(),
            line,
            msg: format!(
                "dialogue {:?}: turn {:?} is not a non-negative integer",
                dialogue.trim(),
                field(turn_col)
            ),
        })?;
        let seconds = |c: Option<usize>, name: &str| -> Result<Option<f64>> {
            optional(c)
                .map(|v| {
                    v.trim().parse::<f64>().map_err(|_| Error::Parse {
                        path: path.to_path_buf(),
                        line,
                        msg: format!(
                            "dialogue {:?} turn {turn}: {name} {v:?} is not a number of seconds",
                            dialogue.trim()
                        ),
                    })
                })
                .transpose()
        };
        let (start, end) = (seconds(start_col, "start")?, seconds(end_col, "end")?);
        records.push((
            line,
            Record {
                dialogue,
                turn,
                speaker: field(speaker_col).to_string(),
                text: field(text_col).to_string(),
                label: optional(label_col).map(|l| RawLabel::Text(l.to_string())),
                audio: optional(audio_col).map(PathBuf::from),
                video: optional(video_col).map(PathBuf::from),
                start,
                end,
            },
        ));
    }
    if let Some(bad) = &bad_quote {
        return Err(quote_error(bad));
    }
    Ok(records)
}

/// A rule of the format that one record breaks, before the reader names
/// where the record is: a file its line, the server a turn's place in the
/// request. `K` is that place.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordFault<K> {
    /// `dialogue` is empty or blank.
    EmptyDialogue {
        /// The record's turn number.
        turn: u64,
    },
    /// `speaker` is empty or blank.
    EmptySpeaker {
        /// The (trimmed) dialogue id.
        dialogue: String,
        /// The record's turn number.
        turn: u64,
    },
    /// `text` is empty or blank.
    EmptyText {
        /// Utterance id, `<dialogue>_utt<turn>`.
        id: String,
    },
    /// A second record of the same dialogue turn.
    Duplicate {
        /// Utterance id.
        id: String,
        /// Where the first record is.
        first: K,
    },
    /// A class name the label set does not declare.
    UnknownLabel {
        /// Utterance id.
        id: String,
        /// The name as written.
        label: String,
    },
    /// Several classes in a single-label set.
    LabelList {
        /// Utterance id.
        id: String,
        /// The label as written (`"joy;fear"` or `["joy", "fear"]`).
        label: String,
    },
}

/// Records checked against the format's rules (module doc, "Semantics" and
/// "Labels") and collected into dialogues: the one implementation every
/// reader of conversation records shares (files here, request bodies in
/// `mmer serve`), so the rules cannot drift apart.
#[derive(Debug)]
pub struct TurnCollector<'a, K> {
    labels: &'a LabelSpace,
    first_seen: HashMap<(String, u64), K>,
    turns: Vec<(String, u64, Utterance)>,
}

impl<'a, K: Copy> TurnCollector<'a, K> {
    /// No records yet; labels resolve against `labels`.
    pub fn new(labels: &'a LabelSpace) -> Self {
        Self {
            labels,
            first_seen: HashMap::new(),
            turns: Vec::new(),
        }
    }

    /// Checks one record found at `at` and keeps it; returns its utterance
    /// id (`<dialogue>_utt<turn>`).
    ///
    /// # Errors
    /// The first [`RecordFault`] the record has, in the order of the
    /// variants.
    pub fn push(
        &mut self,
        at: K,
        dialogue: &str,
        turn: u64,
        speaker: &str,
        text: String,
        label: Option<&RawLabel>,
    ) -> std::result::Result<String, RecordFault<K>> {
        let dialogue = dialogue.trim();
        if dialogue.is_empty() {
            return Err(RecordFault::EmptyDialogue { turn });
        }
        let id = format!("{dialogue}_utt{turn}");
        let speaker = speaker.trim();
        if speaker.is_empty() {
            return Err(RecordFault::EmptySpeaker {
                dialogue: dialogue.to_string(),
                turn,
            });
        }
        if text.trim().is_empty() {
            return Err(RecordFault::EmptyText { id });
        }
        let key = (dialogue.to_string(), turn);
        if let Some(&first) = self.first_seen.get(&key) {
            return Err(RecordFault::Duplicate { id, first });
        }
        let mut utterance = Utterance::new(id.clone(), 0, speaker);
        utterance.text = Some(text);
        if let Some(raw) = label {
            utterance.label = resolve_label(raw, self.labels)
                .map_err(|fault| fault.into_record_fault(&id, raw))?;
        }
        self.first_seen.insert(key, at);
        self.turns.push((dialogue.to_string(), turn, utterance));
        Ok(id)
    }

    /// The records as dialogues in order of first appearance, each sorted
    /// by turn number, with `index` the rank and `turn` the number.
    pub fn finish(self) -> Vec<Dialogue> {
        let mut order: Vec<(String, Vec<(u64, Utterance)>)> = Vec::new();
        let mut position: HashMap<String, usize> = HashMap::new();
        for (dialogue, turn, utterance) in self.turns {
            let slot = *position.entry(dialogue.clone()).or_insert_with(|| {
                order.push((dialogue, Vec::new()));
                order.len() - 1
            });
            order[slot].1.push((turn, utterance));
        }
        order
            .into_iter()
            .map(|(id, mut turns)| {
                turns.sort_by_key(|(turn, _)| *turn);
                let utterances = turns
                    .into_iter()
                    .enumerate()
                    .map(|(index, (turn, u))| Utterance {
                        index,
                        turn: Some(turn),
                        ..u
                    })
                    .collect();
                Dialogue { id, utterances }
            })
            .collect()
    }
}

/// Why a label did not resolve.
enum LabelFault {
    Unknown(String),
    List,
}

impl LabelFault {
    fn into_record_fault<K>(self, id: &str, raw: &RawLabel) -> RecordFault<K> {
        match self {
            LabelFault::Unknown(label) => RecordFault::UnknownLabel {
                id: id.to_string(),
                label,
            },
            LabelFault::List => RecordFault::LabelList {
                id: id.to_string(),
                label: raw.to_string(),
            },
        }
    }
}

/// The label of a record, `None` when it is blank (unlabelled); see the
/// module doc's "Labels".
fn resolve_label(
    raw: &RawLabel,
    labels: &LabelSpace,
) -> std::result::Result<Option<Label>, LabelFault> {
    let separator = LabelSpace::LIST_SEPARATOR;
    if matches!(raw, RawLabel::Text(text) if text.trim().is_empty()) {
        return Ok(None);
    }
    let unknown = |name: &str| LabelFault::Unknown(name.to_string());
    if !labels.multi_label {
        return match raw {
            RawLabel::Text(text) if !text.contains(separator) => labels
                .index_of(text)
                .map(|class| Some(Label::Single(class)))
                .map_err(|_| unknown(text)),
            _ => Err(LabelFault::List),
        };
    }
    let names: Vec<&str> = match raw {
        RawLabel::Text(text) => text
            .split(separator)
            .filter(|n| !n.trim().is_empty())
            .collect(),
        RawLabel::List(names) => names.iter().map(String::as_str).collect(),
    };
    let mut bits = vec![false; labels.num_classes()];
    for name in names {
        bits[labels.index_of(name).map_err(|_| unknown(name))?] = true;
    }
    Ok(Some(Label::Multi(bits)))
}

fn assemble(
    records: Vec<(u64, Record)>,
    path: &Path,
    labels: &LabelSpace,
) -> Result<Conversations> {
    if records.is_empty() {
        return Err(Error::Format {
            path: path.to_path_buf(),
            msg: "no utterances".into(),
        });
    }
    let base = path.parent().unwrap_or(Path::new(""));
    let mut turns = TurnCollector::new(labels);
    let mut media = BTreeMap::new();
    for (line, r) in records {
        let parse_err = |msg: String| Error::Parse {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let id = turns
            .push(
                line,
                &r.dialogue,
                r.turn,
                &r.speaker,
                r.text,
                r.label.as_ref(),
            )
            .map_err(|fault| record_error(fault, path, line, labels))?;
        let segment = match (r.start, r.end) {
            (None, None) => None,
            (Some(start_s), Some(end_s))
                if start_s.is_finite()
                    && end_s.is_finite()
                    && 0.0 <= start_s
                    && start_s < end_s =>
            {
                Some(Segment { start_s, end_s })
            }
            (Some(start), Some(end)) => {
                return Err(parse_err(format!(
                    "{id}: start {start} s and end {end} s must satisfy 0 ≤ start < end"
                )));
            }
            _ => {
                return Err(parse_err(format!(
                    "{id}: give both start and end, or neither"
                )));
            }
        };
        if segment.is_some() && r.audio.is_none() && r.video.is_none() {
            return Err(parse_err(format!(
                "{id}: start/end need an audio or video clip to cut"
            )));
        }
        let refs = MediaRefs {
            audio: r.audio.map(|p| base.join(p)),
            video: r.video.map(|p| base.join(p)),
            segment,
            line,
        };
        if refs.audio.is_some() || refs.video.is_some() {
            media.insert(id, refs);
        }
    }
    Ok(Conversations {
        dialogues: turns.finish(),
        media,
    })
}

/// A record's fault as the error of the file it is in.
fn record_error(fault: RecordFault<u64>, path: &Path, line: u64, labels: &LabelSpace) -> Error {
    let path = path.to_path_buf();
    let known = || labels.classes.join(", ");
    match fault {
        RecordFault::EmptyDialogue { turn } => Error::Parse {
            path,
            line,
            msg: format!("turn {turn}: empty dialogue id"),
        },
        RecordFault::EmptySpeaker { dialogue, turn } => Error::Parse {
            path,
            line,
            msg: format!("dialogue {dialogue:?} turn {turn}: empty speaker"),
        },
        RecordFault::EmptyText { id } => Error::EmptyText { path, line, id },
        RecordFault::Duplicate { id, first } => Error::DuplicateId {
            path,
            line,
            first_line: first,
            id,
        },
        RecordFault::UnknownLabel { id, label } => Error::UnknownLabel {
            path,
            line,
            id,
            label,
            known: known(),
        },
        RecordFault::LabelList { id, label } => Error::LabelList {
            path,
            line,
            id,
            label,
            known: known(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn load(name: &str, content: &str) -> Result<Conversations> {
        let dir = tempfile::tempdir().unwrap();
        read_conversations(&write(dir.path(), name, content), &LabelSpace::meld())
    }

    #[test]
    fn timed_turns_keep_their_range_and_bad_ranges_name_the_line() {
        let row = |extra: &str| {
            format!(r#"{{"dialogue": "d", "turn": 0, "speaker": "A", "text": "Hi"{extra}}}"#)
        };
        let c = load(
            "t.jsonl",
            &row(r#", "video": "call.mp4", "start": 1.5, "end": 3"#),
        )
        .unwrap();
        let segment = c.media["d_utt0"].segment.unwrap();
        assert_eq!((segment.start_s, segment.end_s), (1.5, 3.0));
        let csv = "dialogue,turn,speaker,text,audio,start,end\nd,0,A,Hi,a.wav,0.25,1\n";
        let c = load("t.csv", csv).unwrap();
        assert_eq!(c.media["d_utt0"].segment.unwrap().duration_s(), 0.75);
        for (extra, expected) in [
            (r#", "video": "c.mp4", "start": 1"#, "both start and end"),
            (
                r#", "video": "c.mp4", "start": 3, "end": 2"#,
                "0 ≤ start < end",
            ),
            (
                r#", "video": "c.mp4", "start": -1, "end": 2"#,
                "0 ≤ start < end",
            ),
            (r#", "start": 0, "end": 2"#, "need an audio or video clip"),
        ] {
            let err = load("t.jsonl", &row(extra)).unwrap_err().to_string();
            assert!(
                err.contains("t.jsonl:1:") && err.contains(expected),
                "{err}"
            );
        }
        let err = load(
            "t.csv",
            "dialogue,turn,speaker,text,audio,start,end\nd,0,A,Hi,a.wav,soon,2\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("t.csv:2:") && err.contains("start \"soon\""),
            "{err}"
        );
    }

    #[test]
    fn jsonl_groups_sorts_and_keeps_media() {
        let c = load(
            "c.jsonl",
            concat!(
                r#"{"dialogue": "b", "turn": 5, "speaker": "Ana", "text": "Later.", "label": "joy"}"#,
                "\n\n",
                r#"{"dialogue": "a", "turn": 0, "speaker": "Ben", "text": "Hi", "audio": "clips/a0.wav"}"#,
                "\n",
                r#"{"dialogue": "b", "turn": 2, "speaker": "Ben", "text": "First.", "label": null}"#,
                "\n"
            ),
        )
        .unwrap();
        let ids: Vec<&str> = c.dialogues.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        let b = &c.dialogues[0].utterances;
        assert_eq!(
            (b[0].id.as_str(), b[0].index, b[0].label.clone()),
            ("b_utt2", 0, None)
        );
        assert_eq!(
            (b[1].id.as_str(), b[1].index, b[1].label.clone()),
            ("b_utt5", 1, Some(Label::Single(4)))
        );
        let media = &c.media["a_utt0"];
        assert!(media.audio.as_ref().unwrap().ends_with("clips/a0.wav"));
        assert!(media.audio.as_ref().unwrap().is_absolute());
        assert_eq!(c.media.len(), 1);
    }

    #[test]
    fn jsonl_errors_name_line_dialogue_and_turn() {
        let ok = r#"{"dialogue": "d", "turn": 0, "speaker": "A", "text": "x"}"#;
        let err = load(
            "c.jsonl",
            &format!("{ok}\n{{\"dialogue\": \"d\", \"turn\": 1,"),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Parse { line: 2, msg, .. } if msg.contains("invalid JSON")),
            "{err:?}"
        );

        let typo = r#"{"dialogue": "d", "turn": 1, "speaker": "A", "text": "y", "lable": "joy"}"#;
        let err = load("c.jsonl", &format!("{ok}\n{typo}"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":2:") && err.contains("turn 1") && err.contains("lable"),
            "{err}"
        );

        let dup = r#"{"dialogue": "d", "turn": 0, "speaker": "B", "text": "again"}"#;
        let err = load("c.jsonl", &format!("{ok}\n\n{dup}")).unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateId { line: 3, first_line: 1, id, .. } if id == "d_utt0"),
            "{err:?}"
        );

        let empty = r#"{"dialogue": "d", "turn": 3, "speaker": "B", "text": "  "}"#;
        let err = load("c.jsonl", empty).unwrap_err();
        assert!(
            matches!(&err, Error::EmptyText { line: 1, id, .. } if id == "d_utt3"),
            "{err:?}"
        );

        let happy =
            r#"{"dialogue": "d", "turn": 3, "speaker": "B", "text": "yay", "label": "happy"}"#;
        let err = load("c.jsonl", happy).unwrap_err();
        assert!(
            matches!(&err, Error::UnknownLabel { line: 1, label, .. } if label == "happy"),
            "{err:?}"
        );

        let array = r#"["d", 0, "B", "x"]"#;
        let err = load("c.jsonl", array).unwrap_err().to_string();
        assert!(
            err.contains(":1: expected a JSON object (one record per line), found an array"),
            "{err}"
        );

        let negative = r#"{"dialogue": "d", "turn": -1, "speaker": "B", "text": "x"}"#;
        let err = load("c.jsonl", negative).unwrap_err().to_string();
        assert!(err.contains("dialogue \"d\" turn -1"), "{err}");

        assert!(matches!(
            load("c.jsonl", "\n \n"),
            Err(Error::Format { .. })
        ));
    }

    #[test]
    fn csv_header_is_checked() {
        let err = load("c.csv", "dialogue,turn,speaker,text,mood\nd,0,A,x,joy\n").unwrap_err();
        assert!(
            matches!(&err, Error::UnexpectedColumns { unexpected, .. } if unexpected == &["mood"]),
            "{err:?}"
        );
        let err = load("c.csv", "dialogue,turn,text\nd,0,x\n").unwrap_err();
        assert!(
            matches!(&err, Error::MissingColumns { missing, .. } if missing == &["speaker"]),
            "{err:?}"
        );
        let err = load("c.csv", "d,0,A,x\n").unwrap_err();
        assert!(
            matches!(&err, Error::MissingColumns { missing, .. } if missing.len() == 4),
            "{err:?}"
        );
        let err = load("c.csv", "text,text,dialogue,turn,speaker\n").unwrap_err();
        assert!(
            matches!(&err, Error::UnexpectedColumns { unexpected, .. } if unexpected == &["text"]),
            "{err:?}"
        );
    }

    #[test]
    fn csv_rows_parse_with_optional_columns_in_any_order() {
        let c = load(
            "c.csv",
            "text,speaker,turn,dialogue,label\n\"Hi, you\",A,1,d,\nYo,B,0,d,Anger\n",
        )
        .unwrap();
        let u = &c.dialogues[0].utterances;
        assert_eq!(u[0].text.as_deref(), Some("Yo"));
        assert_eq!(u[0].label, Some(Label::Single(6)));
        assert_eq!(
            (u[1].text.as_deref(), u[1].label.clone()),
            (Some("Hi, you"), None)
        );
        let err = load("c.csv", "dialogue,turn,speaker,text\nd,one,A,x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2:") && err.contains("turn \"one\""), "{err}");
    }

    #[test]
    fn csv_unterminated_quote_is_an_error_at_its_line() {
        // The csv crate reads this as one record whose text is
        // "unterminated\nd,1,B,Bye\n": two turns would silently become one.
        let csv = "dialogue,turn,speaker,text\nd,0,A,\"unterminated\nd,1,B,Bye\n";
        let err = load("c.csv", csv).unwrap_err();
        assert!(matches!(&err, Error::Parse { line: 2, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("/c.csv:2: dialogue \"d\" turn 0, column \"text\": unterminated quote")
                && msg.contains("swallowing the 1 line after it"),
            "{msg}"
        );
        // Two stray quotes merge the records between them: also an error.
        let csv = "dialogue,turn,speaker,text\nd,0,A,\"oops\nd,1,B,\"again\nd,2,A,x\n";
        let msg = load("c.csv", csv).unwrap_err().to_string();
        assert!(
            msg.contains("/c.csv:2: dialogue \"d\" turn 0, column \"text\"")
                && msg.contains("closed on line 3 and followed by \"again\""),
            "{msg}"
        );
        // A quote in the header; an unterminated field before the ids.
        let msg = load("c.csv", "\"dialogue,turn,speaker,text\nd,0,A,x\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("/c.csv:1: header: unterminated quote"),
            "{msg}"
        );
        let csv = "text,dialogue,turn,speaker\nfine,d,0,A\n\"open,d,1,B\n";
        let msg = load("c.csv", csv).unwrap_err().to_string();
        assert!(
            msg.contains("/c.csv:3: column \"text\": unterminated quote"),
            "{msg}"
        );
        // Quoted multi-line text is fine.
        let csv = "dialogue,turn,speaker,text\nd,0,A,\"two\nlines, \"\"quoted\"\"\"\nd,1,B,x\n";
        let c = load("c.csv", csv).unwrap();
        assert_eq!(
            c.dialogues[0].utterances[0].text.as_deref(),
            Some("two\nlines, \"quoted\"")
        );
    }

    fn declared(multi_label: bool) -> LabelSpace {
        let classes = ["calm", "tense", "happy"].map(String::from).to_vec();
        LabelSpace::declared("mine", classes, multi_label).unwrap()
    }

    /// Reads `content` as `name` in `space`: the labels in file order.
    fn labels_in(name: &str, content: &str, space: &LabelSpace) -> Result<Vec<Option<Label>>> {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), name, content);
        let dialogues = load_conversations(&path, space)?;
        let mut turns: Vec<_> = dialogues
            .iter()
            .flat_map(|d| &d.utterances)
            .map(|u| (u.turn, u.label.clone()))
            .collect();
        turns.sort_by_key(|(turn, _)| *turn);
        Ok(turns.into_iter().map(|(_, label)| label).collect())
    }

    /// JSONL records of dialogue `d`, one per `label` value (raw JSON, or
    /// no key for `None`), turns 0, 1, …
    fn jsonl(labels: &[Option<&str>]) -> String {
        labels
            .iter()
            .enumerate()
            .map(|(turn, label)| {
                let label = label.map_or(String::new(), |l| format!(r#", "label": {l}"#));
                format!(
                    r#"{{"dialogue": "d", "turn": {turn}, "speaker": "A", "text": "x"{label}}}"#
                ) + "\n"
            })
            .collect()
    }

    #[test]
    fn declared_classes_are_the_names_a_file_may_use() {
        let labels = labels_in(
            "c.jsonl",
            &jsonl(&[
                Some(r#""tense""#),
                Some(r#"" Happy ""#),
                None,
                Some(r#""""#),
            ]),
            &declared(false),
        )
        .unwrap();
        assert_eq!(
            labels,
            [Some(Label::Single(1)), Some(Label::Single(2)), None, None]
        );
        // An unknown name: file, line, turn and the declared classes.
        let err = labels_in(
            "c.jsonl",
            &jsonl(&[Some(r#""calm""#), Some(r#""joy""#)]),
            &declared(false),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::UnknownLabel { line: 2, id, label, .. } if id == "d_utt1" && label == "joy"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("/c.jsonl:2: utterance d_utt1: unknown label \"joy\"")
                && msg.contains("calm, tense, happy"),
            "{msg}"
        );
        let csv = "dialogue,turn,speaker,text,label\nd,0,A,x,calm\nd,4,B,y,joyful\n";
        let msg = labels_in("c.csv", csv, &declared(false))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("/c.csv:3: utterance d_utt4: unknown label \"joyful\"")
                && msg.contains("calm, tense, happy"),
            "{msg}"
        );
    }

    #[test]
    fn a_list_in_a_single_label_set_is_refused() {
        for (name, content, written) in [
            (
                "c.jsonl",
                jsonl(&[Some(r#""calm""#), Some(r#"["calm", "tense"]"#)]),
                r#"["calm", "tense"]"#,
            ),
            (
                "c.jsonl",
                jsonl(&[Some(r#""calm""#), Some(r#"["calm"]"#)]),
                r#"["calm"]"#,
            ),
            ("c.jsonl", jsonl(&[None, Some("[]")]), "[]"),
            (
                "c.jsonl",
                jsonl(&[None, Some(r#""calm;tense""#)]),
                r#""calm;tense""#,
            ),
            (
                "c.csv",
                "dialogue,turn,speaker,text,label\nd,1,A,x,calm; happy\n".into(),
                r#""calm; happy""#,
            ),
        ] {
            let err = labels_in(name, &content, &declared(false)).unwrap_err();
            assert!(
                matches!(&err, Error::LabelList { line: 2, id, .. } if id == "d_utt1"),
                "{content}: {err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(&format!(
                    "/{name}:2: utterance d_utt1: label {written} lists several classes"
                )) && msg.contains("label set is single-label: give one of calm, tense, happy"),
                "{msg}"
            );
        }
    }

    #[test]
    fn multi_label_turns_take_lists_and_an_empty_list_is_no_emotion() {
        let bits = |b: [bool; 3]| Some(Label::Multi(b.to_vec()));
        let labels = labels_in(
            "c.jsonl",
            &jsonl(&[
                Some(r#"["happy", "calm"]"#),
                Some(r#""tense""#),
                Some(r#""happy; tense""#),
                Some("[]"),
                Some(r#"";""#),
                None,
                Some("null"),
                Some(r#""""#),
                Some(r#"["Tense", " tense "]"#),
            ]),
            &declared(true),
        )
        .unwrap();
        assert_eq!(
            labels,
            [
                bits([true, false, true]),
                bits([false, true, false]),
                bits([false, true, true]),
                bits([false; 3]),
                bits([false; 3]),
                None,
                None,
                None,
                bits([false, true, false]),
            ]
        );
        let csv = "dialogue,turn,speaker,text,label\n\
                   d,0,A,x,happy;calm\n\
                   d,1,A,x,tense\n\
                   d,2,A,x,;\n\
                   d,3,A,x,\n\
                   d,4,A,x, ; happy ;\n";
        assert_eq!(
            labels_in("c.csv", csv, &declared(true)).unwrap(),
            [
                bits([true, false, true]),
                bits([false, true, false]),
                bits([false; 3]),
                None,
                bits([false, false, true]),
            ]
        );
        // The unknown name of a list is named alone.
        for (name, content) in [
            ("c.jsonl", jsonl(&[Some(r#"["calm", "bored"]"#)])),
            ("c.jsonl", jsonl(&[Some(r#""calm;bored""#)])),
            (
                "c.csv",
                "dialogue,turn,speaker,text,label\nd,0,A,x,calm;bored\n".into(),
            ),
        ] {
            let err = labels_in(name, &content, &declared(true)).unwrap_err();
            assert!(
                matches!(&err, Error::UnknownLabel { label, known, .. } if label == "bored" && known == "calm, tense, happy"),
                "{err:?}"
            );
        }
        // A label that is neither a name nor a list of names.
        for bad in ["3", r#"["calm", 3]"#, r#"{"calm": true}"#] {
            let msg = labels_in("c.jsonl", &jsonl(&[Some(bad)]), &declared(true))
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("c.jsonl:1: dialogue \"d\" turn 0: invalid type"),
                "{bad}: {msg}"
            );
        }
    }

    proptest::proptest! {
        /// Any subset of the declared classes, written in any of the three
        /// forms with odd spacing and case, reads back as the same bits;
        /// the same turn in a single-label set is refused unless it is
        /// one plain name.
        #[test]
        fn multi_label_subsets_round_trip(
            picked in proptest::collection::vec(0usize..3, 0..6),
            form in 0usize..3,
            upper in proptest::bool::ANY,
            pad in "[ \t]{0,2}",
        ) {
            let classes = ["calm", "tense", "happy"];
            let names: Vec<String> = picked
                .iter()
                .map(|&c| match upper {
                    true => classes[c].to_uppercase(),
                    false => classes[c].to_string(),
                })
                .collect();
            let joined = names
                .iter()
                .map(|n| format!("{pad}{n}{pad}"))
                .collect::<Vec<_>>()
                .join(";");
            // An empty list must be written as one, not as a blank cell.
            let cell = if names.is_empty() { ";".to_string() } else { joined.clone() };
            let (name, content) = match form {
                0 => ("c.jsonl", jsonl(&[Some(&serde_json::to_string(&names).unwrap())])),
                1 => ("c.jsonl", jsonl(&[Some(&serde_json::to_string(&cell).unwrap())])),
                _ => ("c.csv", format!("dialogue,turn,speaker,text,label\nd,0,A,x,\"{cell}\"\n")),
            };
            let mut want = vec![false; 3];
            for &c in &picked {
                want[c] = true;
            }
            let got = labels_in(name, &content, &declared(true)).unwrap();
            proptest::prop_assert_eq!(got, vec![Some(Label::Multi(want))]);
            let single = labels_in(name, &content, &declared(false));
            match (form, picked.as_slice()) {
                (1 | 2, &[c]) => proptest::prop_assert_eq!(single.unwrap(), vec![Some(Label::Single(c))]),
                _ => proptest::prop_assert!(matches!(single, Err(Error::LabelList { .. })), "{:?}", single),
            }
        }
    }

    #[test]
    fn records_in_memory_parse_as_the_file_would() {
        let content = "{\"dialogue\": \"d\", \"turn\": 1, \"speaker\": \"A\", \"text\": \"Bye\", \"audio\": \"b.wav\"}\n\
                       {\"dialogue\": \"d\", \"turn\": 0, \"speaker\": \"B\", \"text\": \"Hi\", \"label\": \"joy\"}\n";
        let source = Path::new("conversation");
        let parsed = parse_conversations(
            content.as_bytes(),
            ConversationFormat::Jsonl,
            source,
            &LabelSpace::meld(),
        )
        .unwrap();
        let from_file = load("c.jsonl", content).unwrap();
        assert_eq!(parsed.dialogues, from_file.dialogues);
        // A bare source name leaves relative media paths as written.
        assert_eq!(
            parsed.media["d_utt1"].audio.as_deref(),
            Some(Path::new("b.wav"))
        );
        // Errors name the source where a file's would name its path.
        let err = parse_conversations(
            b"dialogue,turn,text\nd,0,x\n",
            ConversationFormat::Csv,
            source,
            &LabelSpace::meld(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "conversation: missing column(s) [\"speaker\"] (header has [\"dialogue\", \"turn\", \"text\"])"
        );
        let err = parse_conversations(
            content.replace("Bye", " ").as_bytes(),
            ConversationFormat::Jsonl,
            source,
            &LabelSpace::meld(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "conversation:1: utterance d_utt1 has empty text"
        );
    }

    #[test]
    fn other_extensions_and_bad_utf8_are_errors() {
        assert!(matches!(
            load("c.json", "{}"),
            Err(Error::UnsupportedFormat { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        std::fs::write(
            &path,
            b"{\"dialogue\":\"d\",\"turn\":0,\"speaker\":\"A\",\"text\":\"x\"}\n\"\x92\"",
        )
        .unwrap();
        let err = load_conversations(&path, &LabelSpace::meld()).unwrap_err();
        assert!(matches!(err, Error::Parse { line: 2, .. }), "{err:?}");
    }
}
