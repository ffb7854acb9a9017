//! Fuzz harness for every parser this crate feeds user files to: MELD CSV
//! ([`load_meld_split`]), conversations as CSV and JSONL
//! ([`read_conversations`]), pickles ([`pickle::load`],
//! [`load_iemocap_pickle`], [`load_feature_pickle`]), and ElderReact's six
//! label and audio files (`mmer_data::elderreact`; edits of any one of them,
//! at the end of this file). The MOSEI loaders' HDF5 reader has its own
//! mutation test in `mosei::csd`.
//!
//! Three layers, none of which needs Python:
//! - a regression corpus of hostile files, `tests/corpus/`, each run through
//!   the parser its name prefix picks (`conv-`, `meld-`, `iemocap-`,
//!   `features-`, `pickle-`) with the outcome [`CORPUS`] expects: an error
//!   containing a given message, or a load of so many utterances;
//! - every prefix of every valid corpus file (truncation at every byte);
//! - properties (proptest): arbitrary bytes, mutated valid files (byte
//!   flips, hostile bytes and pickle opcodes inserted, deletions,
//!   truncation), single quote / comma / newline edits of writer-made CSV,
//!   and JSONL of random JSON values.
//!
//! Every outcome is checked the same way ([`outcome`]): no panic; an error's
//! message names the file; a success keeps the loader's promises (every
//! utterance labelled where required and with non-blank text, ids unique,
//! turns sorted, `index` the rank, corpus invariants).
//!
//! Cases per property are few so the file runs in seconds; set
//! `PROPTEST_CASES` to run more. Failing seeds are saved to
//! `tests/proptest-regressions/fuzz.txt` and replayed first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mmer_core::{Corpus, Dialogue, Label, LabelSpace, Split};
use mmer_data::conversation::{Conversations, read_conversations};
use mmer_data::feature_pickle::{FeaturePickleOptions, load_feature_pickle};
use mmer_data::iemocap::load_iemocap_pickle;
use mmer_data::meld::load_meld_split;
use mmer_data::pickle;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

// ---------------------------------------------------------------------------
// Parsers and the checks every outcome gets.

/// A parser of this crate, chosen by a corpus file's name prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parser {
    /// `conv-*.csv` / `conv-*.jsonl`: [`read_conversations`].
    Conversation,
    /// `meld-*.csv`: [`load_meld_split`] as the train split.
    Meld,
    /// `iemocap-*.pkl`: [`load_iemocap_pickle`].
    IemocapPickle,
    /// `features-*.pkl`: [`load_feature_pickle`] with default options.
    FeaturePickle,
    /// `pickle-*.pkl`: the bare reader, [`pickle::load`].
    Pickle,
}

impl Parser {
    fn of(name: &str) -> Parser {
        [
            ("conv-", Parser::Conversation),
            ("meld-", Parser::Meld),
            ("iemocap-", Parser::IemocapPickle),
            ("features-", Parser::FeaturePickle),
            ("pickle-", Parser::Pickle),
        ]
        .into_iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, parser)| parser)
        .unwrap_or_else(|| panic!("{name}: no parser for this name prefix"))
    }
}

/// One loaded utterance, for comparing loads of edited files.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    speaker: String,
    text: Option<String>,
    label: Option<Label>,
}

/// The utterances a successful load gave, by id.
type Loaded = BTreeMap<String, Row>;

/// Checks what every loader promises of its dialogues: not empty, `index`
/// the rank, ids unique, labels inside the space; adds the utterances to
/// `loaded`.
fn check_dialogues<'a>(
    dialogues: impl IntoIterator<Item = &'a Dialogue>,
    labels: &LabelSpace,
    loaded: &mut Loaded,
) {
    let mut dialogue_ids = BTreeSet::new();
    for d in dialogues {
        assert!(!d.id.trim().is_empty(), "empty dialogue id");
        assert!(dialogue_ids.insert(d.id.clone()), "dialogue {} twice", d.id);
        assert!(!d.utterances.is_empty(), "dialogue {} is empty", d.id);
        for (i, u) in d.utterances.iter().enumerate() {
            assert_eq!(u.index, i, "{}: index is not the rank", u.id);
            match &u.label {
                None => {}
                Some(Label::Single(c)) => assert!(*c < labels.num_classes(), "{}", u.id),
                Some(Label::Multi(bits)) => assert_eq!(bits.len(), labels.num_classes()),
            }
            let row = Row {
                speaker: u.speaker.clone(),
                text: u.text.clone(),
                label: u.label.clone(),
            };
            assert!(
                loaded.insert(u.id.clone(), row).is_none(),
                "utterance {} twice",
                u.id
            );
        }
    }
}

/// Every utterance has text with words in it.
fn check_text<'a>(dialogues: impl IntoIterator<Item = &'a Dialogue>) {
    for u in dialogues.into_iter().flat_map(|d| &d.utterances) {
        let text = u.text.as_deref().unwrap_or_default();
        assert!(!text.trim().is_empty(), "{}: blank text {text:?}", u.id);
    }
}

/// The number after `marker` at the end of an utterance id.
fn id_number(id: &str, marker: &str) -> u64 {
    let (_, n) = id
        .rsplit_once(marker)
        .unwrap_or_else(|| panic!("{id} has no {marker}"));
    n.parse()
        .unwrap_or_else(|_| panic!("{id}: {n:?} is not a number"))
}

fn check_conversations(c: &Conversations, labels: &LabelSpace) -> Loaded {
    let mut loaded = Loaded::new();
    check_dialogues(&c.dialogues, labels, &mut loaded);
    check_text(&c.dialogues);
    for d in &c.dialogues {
        assert_eq!(d.id, d.id.trim(), "dialogue id not trimmed");
        let turns: Vec<u64> = d
            .utterances
            .iter()
            .map(|u| {
                assert!(u.id.starts_with(&format!("{}_utt", d.id)), "{}", u.id);
                assert!(!u.speaker.trim().is_empty(), "{}: no speaker", u.id);
                id_number(&u.id, "_utt")
            })
            .collect();
        assert!(
            turns.is_sorted_by(|a, b| a < b),
            "{}: turns {turns:?}",
            d.id
        );
    }
    for (id, media) in &c.media {
        assert!(loaded.contains_key(id), "media for unknown utterance {id}");
        assert!(media.audio.is_some() || media.video.is_some(), "{id}");
        if let Some(s) = media.segment {
            assert!(
                s.start_s.is_finite()
                    && s.end_s.is_finite()
                    && 0.0 <= s.start_s
                    && s.start_s < s.end_s,
                "{id}: {s}"
            );
        }
    }
    loaded
}

fn check_meld(dialogues: &[Dialogue]) -> Loaded {
    let mut loaded = Loaded::new();
    check_dialogues(dialogues, &LabelSpace::meld(), &mut loaded);
    check_text(dialogues);
    for d in dialogues {
        assert!(d.id.starts_with("train/dia"), "{}", d.id);
        let numbers: Vec<u64> = d
            .utterances
            .iter()
            .map(|u| {
                assert!(u.id.starts_with(&format!("{}_utt", d.id)), "{}", u.id);
                assert!(matches!(u.label, Some(Label::Single(_))), "{}", u.id);
                id_number(&u.id, "_utt")
            })
            .collect();
        assert!(numbers.is_sorted_by(|a, b| a < b), "{}: {numbers:?}", d.id);
    }
    loaded
}

fn check_corpus(c: &Corpus, with_text: bool) -> Loaded {
    c.validate().expect("a loaded corpus is valid");
    let mut loaded = Loaded::new();
    check_dialogues(c.splits.values().flatten(), &c.labels, &mut loaded);
    for d in c.splits.values().flatten() {
        for u in &d.utterances {
            assert!(matches!(u.label, Some(Label::Single(_))), "{}", u.id);
        }
    }
    if with_text {
        check_text(c.splits.values().flatten());
    }
    loaded
}

/// Loads `path` with `parser`: the utterances on success (checked; none for
/// the bare pickle reader), the error message otherwise, which must name
/// the file. A panic anywhere fails the calling test.
fn outcome(parser: Parser, path: &Path) -> Result<Loaded, String> {
    let result = match parser {
        Parser::Conversation => {
            let labels = LabelSpace::meld();
            read_conversations(path, &labels).map(|c| check_conversations(&c, &labels))
        }
        Parser::Meld => load_meld_split(path, Split::Train).map(|d| check_meld(&d)),
        Parser::IemocapPickle => load_iemocap_pickle(path).map(|c| check_corpus(&c, true)),
        Parser::FeaturePickle => load_feature_pickle(path, &FeaturePickleOptions::default())
            .map(|c| check_corpus(&c, false)),
        Parser::Pickle => pickle::load(path).map(|_| Loaded::new()),
    };
    result.map_err(|err| {
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()),
            "{parser:?}: the error does not name the file {}: {msg}",
            path.display()
        );
        msg
    })
}

/// Writes `bytes` as `name` in a fresh directory and loads it.
fn outcome_of_bytes(parser: Parser, name: &str, bytes: &[u8]) -> Result<Loaded, String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write the file");
    outcome(parser, &path)
}

// ---------------------------------------------------------------------------
// The regression corpus.

/// What loading a corpus file must give.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// An error whose message contains this text (after the directory).
    Fails(&'static str),
    /// A successful load of this many utterances.
    Loads(usize),
}
use Expect::{Fails, Loads};

/// Every file of `tests/corpus` with its expected outcome.
const CORPUS: &[(&str, Expect)] = &[
    // Conversations: CSV quoting.
    (
        "conv-unterminated-quote.csv",
        Fails(
            "conv-unterminated-quote.csv:2: dialogue \"d\" turn 0, column \"text\": \
             unterminated quote: the quoted field that opens on this line is never closed",
        ),
    ),
    (
        "conv-stray-quotes.csv",
        Fails(
            "conv-stray-quotes.csv:2: dialogue \"d\" turn 0, column \"text\": the quoted \
             field that opens on this line is closed on line 3 and followed by \"Hello\"",
        ),
    ),
    (
        "conv-quote-in-unquoted.csv",
        Fails(
            "conv-quote-in-unquoted.csv:2: dialogue \"d\" turn 0, column \"text\": a quote \
             inside the unquoted field \"He said \\\"hi\\\"\"",
        ),
    ),
    (
        "conv-quote-in-header.csv",
        Fails("conv-quote-in-header.csv:1: header: unterminated quote"),
    ),
    // Conversations: encodings, line ends, values.
    ("conv-bom-crlf.csv", Loads(3)),
    ("conv-bom-crlf.jsonl", Loads(2)),
    (
        "conv-invalid-utf8.csv",
        Fails("conv-invalid-utf8.csv:3: text is not valid UTF-8"),
    ),
    (
        "conv-utf16.csv",
        Fails("conv-utf16.csv:1: text is not valid UTF-8"),
    ),
    (
        "conv-non-integer-turn.jsonl",
        Fails(
            "conv-non-integer-turn.jsonl:2: dialogue \"d\" turn 1.5: invalid type: floating point `1.5`",
        ),
    ),
    (
        "conv-string-turn.csv",
        Fails("conv-string-turn.csv:3: dialogue \"d\": turn \"one\" is not a non-negative integer"),
    ),
    (
        "conv-empty-text.jsonl",
        Fails("conv-empty-text.jsonl:2: utterance d_utt1 has empty text"),
    ),
    (
        "conv-truncated.jsonl",
        Fails("conv-truncated.jsonl:2: invalid JSON: EOF while parsing"),
    ),
    (
        "conv-duplicate-turn.csv",
        Fails("conv-duplicate-turn.csv:3: duplicate utterance d_utt1 (first seen on line 2)"),
    ),
    (
        "conv-nul-in-json.jsonl",
        Fails("conv-nul-in-json.jsonl:1: invalid JSON: control character"),
    ),
    (
        "conv-json-array.jsonl",
        Fails(
            "conv-json-array.jsonl:1: expected a JSON object (one record per line), found an array",
        ),
    ),
    // MELD.
    (
        "meld-empty-utterance.csv",
        Fails("meld-empty-utterance.csv:3: utterance train/dia0_utt1 has empty text"),
    ),
    (
        "meld-unterminated-quote.csv",
        Fails(
            "meld-unterminated-quote.csv:3: utterance train/dia0_utt1, column \"EndTime\": \
             unterminated quote: the quoted field that opens on this line is never closed, \
             so it runs to the end of the file, swallowing the 1 line after it",
        ),
    ),
    (
        "meld-stray-quote.csv",
        Fails(
            "meld-stray-quote.csv:2: column \"Utterance\": the quoted field that opens on \
             this line is closed and followed by \"00:00:01\"",
        ),
    ),
    ("meld-bom-crlf.csv", Loads(3)),
    ("meld-cp1252.csv", Loads(1)),
    (
        "meld-unknown-emotion.csv",
        Fails("meld-unknown-emotion.csv:2: utterance train/dia0_utt0: unknown label \"happy\""),
    ),
    (
        "meld-truncated-header.csv",
        Fails(
            "meld-truncated-header.csv: missing column(s) [\"Emotion\", \"Dialogue_ID\", \"Utterance_ID\"]",
        ),
    ),
    // IEMOCAP transcript pickles.
    ("iemocap-valid.pkl", Loads(4)),
    (
        "iemocap-empty-sentence.pkl",
        Fails("iemocap-empty-sentence.pkl: utterance Ses01F_impro02_0: the sentence is empty"),
    ),
    (
        "iemocap-label-out-of-range.pkl",
        Fails("iemocap-label-out-of-range.pkl:0: utterance Ses01F_impro02_0: unknown label \"6\""),
    ),
    (
        "iemocap-truncated.pkl",
        Fails("iemocap-truncated.pkl: pickle byte 150: truncated: input ended before STOP"),
    ),
    (
        "iemocap-hostile-reduce.pkl",
        Fails(
            "iemocap-hostile-reduce.pkl: expected a list of 6 items [speakers, labels, \
             sentences, train, test, valid], found an object of class os.system",
        ),
    ),
    (
        "iemocap-hostile-global.pkl",
        Fails("iemocap-hostile-global.pkl: speakers must be a dict, found the global posix.system"),
    ),
    // Feature pickles.
    ("features-iemocap-valid.pkl", Loads(7)),
    ("features-py2-numpy.pkl", Loads(3)),
    (
        "features-nan.pkl",
        Fails(
            "features-nan.pkl: dialogue Ses02M_script01, utterance Ses02M_script01_M001 (#1): \
             videoAudio: value 2 is NaN",
        ),
    ),
    (
        "features-hostile-reduce.pkl",
        Fails(
            "features-hostile-reduce.pkl: expected a tuple of 9 or 10 items (videoIDs, \
             videoSpeakers, ...), found an object of class __builtin__.eval",
        ),
    ),
    // The bare pickle reader.
    (
        "pickle-persistent-id.pkl",
        Fails(
            "pickle-persistent-id.pkl: pickle byte 8: opcode BINPERSID (0x51): persistent ids are not supported",
        ),
    ),
    (
        "pickle-unknown-opcode.pkl",
        Fails("pickle-unknown-opcode.pkl: pickle byte 2: opcode <unknown> (0xff): unknown opcode"),
    ),
    (
        "pickle-huge-length.pkl",
        Fails(
            "pickle-huge-length.pkl: pickle byte 2: opcode BINUNICODE8 (0x8d): truncated: length 4611686018427387904 exceeds the 4 bytes left",
        ),
    ),
    (
        "pickle-negative-length.pkl",
        Fails(
            "pickle-negative-length.pkl: pickle byte 2: opcode BINSTRING (0x54): negative length -5",
        ),
    ),
    ("pickle-memo-bomb.pkl", Fails("size limit")),
    (
        "pickle-deep-nesting.pkl",
        Fails(
            "pickle-deep-nesting.pkl: pickle byte 601: opcode STOP (0x2e): nested deeper than 200 levels",
        ),
    ),
    (
        "pickle-stack-underflow.pkl",
        Fails("pickle-stack-underflow.pkl: pickle byte 2: opcode REDUCE (0x52): stack underflow"),
    ),
    (
        "pickle-bad-memo.pkl",
        Fails(
            "pickle-bad-memo.pkl: pickle byte 2: opcode BINGET (0x68): memo key 7 was never stored",
        ),
    ),
    (
        "pickle-protocol-9.pkl",
        Fails("pickle-protocol-9.pkl: pickle byte 0: opcode PROTO (0x80): unsupported protocol 9"),
    ),
    (
        "pickle-empty.pkl",
        Fails("pickle-empty.pkl: pickle byte 0: truncated: input ended before STOP"),
    ),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn corpus_bytes(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The corpus files that load: the seeds of the mutation properties.
fn seeds() -> Vec<(&'static str, Parser, Vec<u8>)> {
    CORPUS
        .iter()
        .filter(|(_, expect)| matches!(expect, Loads(_)))
        .map(|&(name, _)| (name, Parser::of(name), corpus_bytes(name)))
        .collect()
}

#[test]
fn every_corpus_file_has_its_expected_outcome() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".csv") || n.ends_with(".jsonl") || n.ends_with(".pkl"))
        .collect();
    let listed: BTreeSet<String> = CORPUS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        on_disk, listed,
        "tests/corpus and CORPUS list different files"
    );

    let mut wrong = Vec::new();
    for &(name, expect) in CORPUS {
        let got = outcome(Parser::of(name), &corpus_dir().join(name));
        let ok = match (&got, expect) {
            (Err(msg), Fails(want)) => msg.contains(want),
            (Ok(loaded), Loads(n)) => loaded.len() == n,
            _ => false,
        };
        if !ok {
            wrong.push(format!("{name}: expected {expect:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// The corpus's unterminated quote is the issue's own example: without the
/// check the csv crate reads its two turns as one.
#[test]
fn unterminated_quote_would_merge_two_turns_into_one() {
    let bytes = corpus_bytes("conv-unterminated-quote.csv");
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("csv")).collect();
    assert_eq!(records.len(), 1, "csv merges the turns silently");
    assert_eq!(&records[0][3], "unterminated\nd,1,B,Fine, thanks.\n");
}

/// Truncation at every byte of every seed: an error naming the file, or a
/// load of a subset of the seed's utterances, unchanged except for the last
/// record of a text file (a cut inside its last unquoted field cannot be
/// told from a shorter field). Pickles must end at `STOP`: every strict
/// prefix is an error.
#[test]
fn every_prefix_of_every_seed() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (name, parser, bytes) in seeds() {
        let full = outcome(parser, &corpus_dir().join(name)).expect("seed loads");
        let path = dir.path().join(name);
        for end in 0..bytes.len() {
            std::fs::write(&path, &bytes[..end]).expect("write");
            match outcome(parser, &path) {
                Err(_) => {}
                Ok(part) if name.ends_with(".pkl") => {
                    panic!("{name}[..{end}] loads {} utterances", part.len())
                }
                Ok(part) => assert_prefix_load(&full, &part, true, &format!("{name}[..{end}]")),
            }
        }
    }
}

/// `part` (a load of an edited file) against `full` (the original): same
/// ids or fewer, each utterance unchanged, except one whose text and label
/// may differ when `one_may_differ`.
fn assert_prefix_load(full: &Loaded, part: &Loaded, one_may_differ: bool, what: &str) {
    let mut differing = 0;
    for (id, row) in part {
        let original = full
            .get(id)
            .unwrap_or_else(|| panic!("{what}: utterance {id} is not in the original"));
        if row != original {
            differing += 1;
            assert_eq!(row.speaker, original.speaker, "{what}: {id}");
        }
    }
    let allowed = usize::from(one_may_differ);
    assert!(
        differing <= allowed,
        "{what}: {differing} utterances changed"
    );
}

// ---------------------------------------------------------------------------
// Properties.

/// `cases` unless `PROPTEST_CASES` says otherwise; failures persisted.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/proptest-regressions/fuzz.txt"
        )))),
        ..ProptestConfig::default()
    }
}

/// Every parser, with a file name of the extension it reads.
const TARGETS: [(Parser, &str); 6] = [
    (Parser::Conversation, "c.csv"),
    (Parser::Conversation, "c.jsonl"),
    (Parser::Meld, "train_sent_emo.csv"),
    (Parser::IemocapPickle, "iemocap.pkl"),
    (Parser::FeaturePickle, "features.pkl"),
    (Parser::Pickle, "any.pkl"),
];

/// Bytes that mean something to one of the formats.
const HOSTILE: &[u8] = b"\",\r\n\0\xff\xef\xbb\xbf{}[]:;-. c(Rb0.2hq\x80\x81\x85\x8c\x93\x94\x95";

/// Pickle fragments that call, build or reach into the memo.
const OPCODES: &[&[u8]] = &[
    b"cos\nsystem\n",
    b"cbuiltins\neval\n",
    b"c__builtin__\nset\n",
    b"cnumpy\ndtype\n",
    b"cnumpy.core.multiarray\n_reconstruct\n",
    b"R",
    b"b",
    b"(",
    b"t",
    b"l",
    b"d",
    b"0",
    b"1",
    b"2",
    b"h\x00",
    b"q\x00",
    b"\x94",
    b"\x93",
    b"\x81",
    b"N",
    b"\x85",
    b".",
];

/// One edit of a file.
#[derive(Debug, Clone)]
enum Edit {
    Flip(prop::sample::Index, u8),
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<prop::sample::Index>;
    let hostile = || prop::sample::select(HOSTILE.to_vec());
    prop_oneof![
        2 => (at(), 1..=255u8).prop_map(|(i, m)| Edit::Flip(i, m)),
        2 => (at(), hostile()).prop_map(|(i, b)| Edit::Set(i, b)),
        2 => (at(), hostile()).prop_map(|(i, b)| Edit::Insert(i, vec![b])),
        2 => (at(), prop::sample::select(OPCODES.to_vec())).prop_map(|(i, o)| Edit::Insert(i, o.to_vec())),
        2 => at().prop_map(Edit::Delete),
        1 => at().prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let len = bytes.len();
    match edit {
        Edit::Flip(i, mask) if len > 0 => bytes[i.index(len)] ^= mask,
        Edit::Set(i, b) if len > 0 => bytes[i.index(len)] = *b,
        Edit::Delete(i) if len > 0 => {
            bytes.remove(i.index(len));
        }
        Edit::Insert(i, new) => {
            let at = i.index(len + 1);
            bytes.splice(at..at, new.iter().copied());
        }
        Edit::Truncate(i) => bytes.truncate(i.index(len + 1)),
        _ => {}
    }
}

/// Bytes weighted towards the ones the formats give meaning to.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => any::<u8>(),
            2 => prop::sample::select(HOSTILE.to_vec()),
            2 => prop::char::range('a', 'z').prop_map(|c| c as u8),
        ],
        0..600,
    )
}

// -- writer-made text files ---------------------------------------------------

const EMOTIONS: [&str; 7] = [
    "neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger",
];

/// Transcript text, with the characters that need quoting.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?\"'’\r\n-]{0,24}".prop_filter("has words", |t| !t.trim().is_empty())
}

/// A conversation: `(dialogue, turn) → (speaker, text, label)`.
fn turns() -> impl Strategy<Value = BTreeMap<(String, u64), (String, String, Option<usize>)>> {
    prop::collection::btree_map(
        ("[a-z]{1,2}", 0u64..12),
        ("[A-Z][a-z]{0,3}", text(), prop::option::of(0usize..7)),
        1..8,
    )
}

fn write_records(header: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(header).expect("header");
    for row in rows {
        w.write_record(row).expect("row");
    }
    w.into_inner().expect("flush")
}

/// Turns as a conversation CSV, one record per turn in key order.
fn conversation_csv(turns: &BTreeMap<(String, u64), (String, String, Option<usize>)>) -> Vec<u8> {
    let rows: Vec<Vec<String>> = turns
        .iter()
        .map(|((dialogue, turn), (speaker, text, label))| {
            let label = label.map(|c| EMOTIONS[c].to_string()).unwrap_or_default();
            vec![
                dialogue.clone(),
                turn.to_string(),
                speaker.clone(),
                text.clone(),
                label,
            ]
        })
        .collect();
    write_records(&["dialogue", "turn", "speaker", "text", "label"], &rows)
}

/// MELD rows `(dialogue, utterance) → (text, emotion)` as a release CSV.
fn meld_csv(rows: &BTreeMap<(u64, u64), (String, usize)>) -> Vec<u8> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .map(|(i, ((dia, utt), (text, emotion)))| {
            [
                (i + 1).to_string(),
                text.clone(),
                "Joey".into(),
                EMOTIONS[*emotion].into(),
                "neutral".into(),
                dia.to_string(),
                utt.to_string(),
                "1".into(),
                "2".into(),
                "00:00:01,000".into(),
                "00:00:02,500".into(),
            ]
            .to_vec()
        })
        .collect();
    write_records(
        &[
            "Sr No.",
            "Utterance",
            "Speaker",
            "Emotion",
            "Sentiment",
            "Dialogue_ID",
            "Utterance_ID",
            "Season",
            "Episode",
            "StartTime",
            "EndTime",
        ],
        &rows,
    )
}

/// One quote, comma, CR or LF inserted or deleted.
#[derive(Debug, Clone)]
struct StructuralEdit {
    at: prop::sample::Index,
    byte: u8,
    insert: bool,
}

fn structural_edit() -> impl Strategy<Value = StructuralEdit> {
    (
        any::<prop::sample::Index>(),
        prop::sample::select(b"\",\r\n".to_vec()),
        any::<bool>(),
    )
        .prop_map(|(at, byte, insert)| StructuralEdit { at, byte, insert })
}

/// Applies `e`; false when a deletion found no such byte.
fn apply_structural(bytes: &mut Vec<u8>, e: &StructuralEdit) -> bool {
    if e.insert {
        bytes.insert(e.at.index(bytes.len() + 1), e.byte);
        return true;
    }
    let positions: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] == e.byte).collect();
    if positions.is_empty() {
        return false;
    }
    bytes.remove(positions[e.at.index(positions.len())]);
    true
}

/// After one structural edit of a writer-made CSV: a quote added or lost is
/// always an error (accepted quoting has an even number of quotes); any
/// other edit is an error or changes at most the text inside a quoted field
/// (never the set of utterances, their speakers or labels).
fn check_structural_edit(full: &Loaded, got: Result<Loaded, String>, e: &StructuralEdit) {
    match got {
        Err(_) => {}
        Ok(_) if e.byte == b'"' => panic!("a quote added or lost loads: {e:?}"),
        Ok(part) => {
            assert_eq!(
                part.keys().collect::<Vec<_>>(),
                full.keys().collect::<Vec<_>>(),
                "{e:?}: records lost or merged"
            );
            for (id, row) in &part {
                assert_eq!(
                    (&row.speaker, &row.label),
                    (&full[id].speaker, &full[id].label),
                    "{e:?}: {id}"
                );
            }
        }
    }
}

// -- random JSON ----------------------------------------------------------------

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as J;
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        (-3i64..30).prop_map(J::from),
        any::<f64>().prop_map(J::from),
        prop::sample::select(vec![
            "",
            " ",
            "d",
            "Ana",
            "joy",
            "anger; joy",
            "Joy",
            "happy",
            "a.wav",
            "\u{0}",
            "é’",
        ])
        .prop_map(J::from),
        "\\PC{0,12}".prop_map(J::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(J::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| J::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSONL record: usually the format's keys with plausible or random
/// values, sometimes a typo'd key or no object at all.
fn json_record() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as J;
    let plausible = |values: Vec<J>| {
        prop_oneof![
            9 => prop::sample::select(values),
            1 => json_value(),
        ]
    };
    let record = (
        plausible(vec!["d".into(), "e".into(), " d ".into()]),
        plausible(vec![0.into(), 1.into(), 2.into(), 7.into()]),
        plausible(vec!["Ana".into(), "Ben".into()]),
        plausible(vec!["Hi".into(), "Two\nlines".into(), "“Quoted”".into()]),
        prop::option::of(plausible(vec![
            "joy".into(),
            "anger".into(),
            J::Null,
            "".into(),
        ])),
        prop::option::weighted(0.3, plausible(vec!["a.wav".into(), "clips/b.mp4".into()])),
        prop::option::weighted(
            0.2,
            (
                plausible(vec![0.into(), 1.5.into()]),
                plausible(vec![2.into()]),
            ),
        ),
        prop::option::weighted(0.1, ("[a-z]{1,6}", json_value())),
    )
        .prop_map(
            |(dialogue, turn, speaker, text, label, audio, range, extra)| {
                let mut m = serde_json::Map::new();
                m.insert("dialogue".into(), dialogue);
                m.insert("turn".into(), turn);
                m.insert("speaker".into(), speaker);
                m.insert("text".into(), text);
                if let Some(label) = label {
                    m.insert("label".into(), label);
                }
                if let Some(audio) = audio {
                    m.insert("audio".into(), audio);
                }
                if let Some((start, end)) = range {
                    m.insert("start".into(), start);
                    m.insert("end".into(), end);
                }
                if let Some((key, value)) = extra {
                    m.insert(key, value);
                }
                J::Object(m)
            },
        );
    prop_oneof![
        8 => record,
        1 => json_value(),
    ]
}

proptest! {
    #![proptest_config(config(128))]

    /// Arbitrary bytes, through every parser.
    #[test]
    fn arbitrary_bytes(bytes in noise(), proto in any::<bool>()) {
        let mut bytes = bytes;
        if proto {
            bytes.splice(0..0, [0x80, 0x02]);
        }
        for (parser, name) in TARGETS {
            let _ = outcome_of_bytes(parser, name, &bytes);
        }
    }

    /// Valid corpus files after a few random edits.
    #[test]
    fn mutated_seeds(
        seed in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let seeds = seeds();
        let (name, parser, mut bytes) = seeds[seed.index(seeds.len())].clone();
        for e in &edits {
            apply(&mut bytes, e);
        }
        let _ = outcome_of_bytes(parser, name, &bytes);
    }

    /// One quote, comma or line break added or lost in a conversation CSV.
    #[test]
    fn conversation_csv_structural_edit(turns in turns(), e in structural_edit()) {
        let mut bytes = conversation_csv(&turns);
        let full = outcome_of_bytes(Parser::Conversation, "c.csv", &bytes).expect("writer-made CSV loads");
        prop_assert_eq!(full.len(), turns.len());
        if apply_structural(&mut bytes, &e) {
            check_structural_edit(&full, outcome_of_bytes(Parser::Conversation, "c.csv", &bytes), &e);
        }
    }

    /// One quote, comma or line break added or lost in a MELD CSV.
    #[test]
    fn meld_csv_structural_edit(
        rows in prop::collection::btree_map((0u64..3, 0u64..5), (text(), 0usize..7), 1..8),
        e in structural_edit(),
    ) {
        let mut bytes = meld_csv(&rows);
        let full = outcome_of_bytes(Parser::Meld, "train_sent_emo.csv", &bytes).expect("writer-made CSV loads");
        prop_assert_eq!(full.len(), rows.len());
        if apply_structural(&mut bytes, &e) {
            check_structural_edit(&full, outcome_of_bytes(Parser::Meld, "train_sent_emo.csv", &bytes), &e);
        }
    }

    /// A writer-made MELD CSV cut anywhere: its records all end with a
    /// quoted field, so a cut record is always an error and a success is an
    /// unchanged subset.
    #[test]
    fn meld_csv_truncated(
        rows in prop::collection::btree_map((0u64..3, 0u64..5), (text(), 0usize..7), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = meld_csv(&rows);
        let full = outcome_of_bytes(Parser::Meld, "train_sent_emo.csv", &bytes).expect("loads");
        let cut = &bytes[..cut.index(bytes.len() + 1)];
        if let Ok(part) = outcome_of_bytes(Parser::Meld, "train_sent_emo.csv", cut) {
            assert_prefix_load(&full, &part, false, "truncated MELD");
        }
    }

    /// JSONL of random records: a success loads exactly one utterance per
    /// non-blank line (nothing dropped or merged).
    #[test]
    fn jsonl_random_values(
        lines in prop::collection::vec(prop_oneof![8 => json_record().prop_map(|v| v.to_string()), 1 => Just(String::new())], 0..6),
        crlf in any::<bool>(),
        bom in any::<bool>(),
    ) {
        let mut text = lines.join(if crlf { "\r\n" } else { "\n" });
        if bom {
            text.insert(0, '\u{feff}');
        }
        if let Ok(loaded) = outcome_of_bytes(Parser::Conversation, "c.jsonl", text.as_bytes()) {
            let records = lines.iter().filter(|l| !l.trim().is_empty()).count();
            prop_assert_eq!(loaded.len(), records);
        }
    }

    /// A conversation as JSONL and as CSV loads identically, and a cut
    /// JSONL file loads a subset.
    #[test]
    fn conversation_jsonl_matches_csv_and_truncates_safely(
        turns in turns(),
        cut in any::<prop::sample::Index>(),
    ) {
        let jsonl: String = turns
            .iter()
            .map(|((dialogue, turn), (speaker, text, label))| {
                let mut record = serde_json::json!({
                    "dialogue": dialogue, "turn": turn, "speaker": speaker, "text": text,
                });
                if let Some(c) = label {
                    record["label"] = EMOTIONS[*c].into();
                }
                format!("{record}\n")
            })
            .collect();
        let from_jsonl = outcome_of_bytes(Parser::Conversation, "c.jsonl", jsonl.as_bytes()).expect("loads");
        let from_csv = outcome_of_bytes(Parser::Conversation, "c.csv", &conversation_csv(&turns)).expect("loads");
        prop_assert_eq!(&from_jsonl, &from_csv);
        let cut = &jsonl.as_bytes()[..cut.index(jsonl.len() + 1)];
        if let Ok(part) = outcome_of_bytes(Parser::Conversation, "c.jsonl", cut) {
            assert_prefix_load(&from_jsonl, &part, false, "truncated JSONL");
        }
    }
}

// -- ElderReact: six files read together ----------------------------------------

/// The six files of a small valid ElderReact directory: `(name, text)`.
fn elderreact_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for (split, clips) in [("train", 4), ("dev", 2), ("test", 2)] {
        let (mut labels, mut audio) = (String::new(), String::new());
        for k in 0..clips {
            let id = format!("{split}_{k}");
            let bits: Vec<String> = (0..6).map(|l| ((k + l) % 2).to_string()).collect();
            labels.push_str(&format!("{id}.mp4 {} f 2.5\n", bits.join(" ")));
            let values: Vec<String> = (0..mmer_data::elderreact::AUDIO_DIM)
                .map(|c| format!("{}", (c * 7 + k) as f64 * 0.01))
                .collect();
            audio.push_str(&format!("{id}\t{}\n", values.join(" ")));
        }
        files.push((format!("{split}_labels.txt"), labels));
        files.push((format!("{split}_audio.txt"), audio));
    }
    files
}

proptest! {
    #![proptest_config(config(48))]

    /// Edits of any one of ElderReact's six files never panic the loader;
    /// an error names a file of the directory; a load is a valid corpus
    /// whose features are all finite (non-finite values are replaced by
    /// the train column mean, or refused).
    #[test]
    fn elderreact_files_with_edits_load_or_name_the_file(
        which in 0usize..6,
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        for (k, (name, text)) in elderreact_files().into_iter().enumerate() {
            let mut bytes = text.into_bytes();
            if k == which {
                for e in &edits {
                    apply(&mut bytes, e);
                }
            }
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        match mmer_data::elderreact::load_with_report(dir.path()) {
            Ok((corpus, _)) => {
                prop_assert!(corpus.validate().is_ok());
                for u in corpus.splits.values().flatten().flat_map(|d| &d.utterances) {
                    prop_assert!(u.features.values().all(|f| f.first_non_finite().is_none()));
                    prop_assert!(matches!(&u.label, Some(Label::Multi(bits)) if bits.len() == 6));
                }
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(
                    message.contains(&*dir.path().to_string_lossy()),
                    "no file named: {}", message
                );
            }
        }
    }
}
