//! The text formats: MELD's release CSVs and the user conversation format
//! (JSONL / CSV). Checks the real MELD release when it is present, the
//! example files in `docs/examples`, and property tests that the CSV and
//! JSONL readers never panic on arbitrary, badly quoted or truncated input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mmer_core::{Label, LabelSpace, Split};
use mmer_data::Error;
use mmer_data::conversation::{load_conversations, read_conversations};
use mmer_data::meld::{load_meld, load_meld_split};
use proptest::prelude::*;

const MELD_HEADER: [&str; 11] = [
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
];
const EMOTIONS: [&str; 7] = [
    "neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$MMER_MELD_DIR`, else `../shared/data/meld` beside the workspace.
fn meld_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("MMER_MELD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data/meld"));
    dir.join("train_sent_emo.csv").exists().then_some(dir)
}

#[test]
fn meld_release_has_the_published_counts() {
    let Some(dir) = meld_dir() else {
        eprintln!("skipping: MELD CSVs not found (set MMER_MELD_DIR or add ../shared/data/meld)");
        return;
    };
    let corpus = load_meld(&dir).unwrap();
    assert_eq!(corpus.labels, LabelSpace::meld());
    let counts: Vec<(usize, usize)> = Split::ALL
        .iter()
        .map(|&s| (corpus.num_utterances(s), corpus.split(s).len()))
        .collect();
    assert_eq!(counts, [(9989, 1038), (1109, 114), (2610, 280)]);

    // Ids are unique across splits, and every utterance is labelled and has text.
    let mut ids = std::collections::HashSet::new();
    for s in Split::ALL {
        for d in corpus.split(s) {
            assert!(ids.insert(d.id.clone()), "dialogue {}", d.id);
            for (i, u) in d.utterances.iter().enumerate() {
                assert!(ids.insert(u.id.clone()), "utterance {}", u.id);
                assert_eq!(u.index, i);
                assert!(u.label.is_some() && u.text.is_some(), "{}", u.id);
                let text = u.text.as_deref().unwrap_or_default();
                assert!(
                    !text.contains("â€")
                        && !text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)),
                    "{}: unrepaired text {text:?}",
                    u.id
                );
            }
        }
    }

    // Spot checks against the first rows of each file and the label counts.
    let first = &corpus.split(Split::Train)[0].utterances[0];
    assert_eq!(first.id, "train/dia0_utt0");
    assert_eq!(first.speaker, "Chandler");
    assert_eq!(
        first.text.as_deref(),
        Some(
            "also I was the point person on my company’s transition from the KL-5 to GR-6 system."
        )
    );
    assert_eq!(corpus.split(Split::Valid)[0].id, "valid/dia0");
    let mut per_class = [0usize; 7];
    for d in corpus.split(Split::Train) {
        for u in &d.utterances {
            if let Some(Label::Single(c)) = u.label {
                per_class[c] += 1;
            }
        }
    }
    assert_eq!(per_class, [4710, 1205, 268, 683, 1743, 271, 1109]);
}

#[test]
fn example_conversations_load_and_agree() {
    let examples = workspace_root().join("docs/examples");
    let labels = LabelSpace::meld();
    let jsonl = load_conversations(&examples.join("conversation.jsonl"), &labels).unwrap();
    let csv = load_conversations(&examples.join("conversation.csv"), &labels).unwrap();
    assert_eq!(jsonl, csv);
    assert_eq!(jsonl.len(), 1);
    let d = &jsonl[0];
    assert!((6..=8).contains(&d.utterances.len()));
    assert_eq!(d.speakers().len(), 2);
    assert!(d.utterances.iter().all(|u| u.label.is_some()));
}

/// Writes `bytes` to `name` in a fresh temporary directory.
fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Bytes a CSV field may contain, weighted towards the ones that matter.
fn field_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => proptest::char::range('a', 'z').prop_map(|c| c as u8),
        2 => Just(b'"'),
        2 => Just(b','),
        1 => Just(b'\r'),
        1 => Just(b'\n'),
        1 => Just(b' '),
        1 => proptest::sample::select(vec![b'0', b'1', b'7', b'-']),
        1 => proptest::sample::select(vec![0x92u8, 0xE2, 0x80, 0x99, 0xC3, 0xA9, 0xFF]),
        1 => any::<u8>(),
    ]
}

/// `content` as a quoted CSV field.
fn quoted(content: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in content {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

/// A field written raw, properly quoted, or with broken quoting.
fn field() -> impl Strategy<Value = Vec<u8>> {
    (proptest::collection::vec(field_byte(), 0..12), 0..3u8).prop_map(
        |(content, mode)| match mode {
            0 => content,
            1 => quoted(&content),
            _ => [b"\"".as_slice(), &content].concat(),
        },
    )
}

/// One row: either shaped like the format (one field per column, each
/// usually a plausible value for its column, sometimes garbage) or a random
/// number of garbage fields.
fn row(columns: &'static [&'static [&'static str]]) -> impl Strategy<Value = Vec<Vec<u8>>> {
    let plausible = |values: &'static [&'static str]| {
        prop_oneof![
            14 => proptest::sample::select(values).prop_map(|v| quoted(v.as_bytes())),
            1 => field(),
        ]
    };
    let shaped: Vec<_> = columns.iter().map(|values| plausible(values)).collect();
    prop_oneof![
        7 => shaped,
        1 => proptest::collection::vec(field(), 0..columns.len() + 2),
    ]
}

/// A header line (the format's own, or none), rows joined with commas and
/// CRLF or LF, often truncated at an arbitrary byte.
fn garbage_file(
    header: &'static str,
    columns: &'static [&'static [&'static str]],
) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::bool::weighted(0.85),
        proptest::collection::vec((row(columns), any::<bool>()), 0..6),
        proptest::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(move |(with_header, rows, cut)| {
            let mut bytes = if with_header {
                format!("{header}\r\n").into_bytes()
            } else {
                Vec::new()
            };
            for (fields, crlf) in rows {
                bytes.extend(fields.join(&b","[..]));
                bytes.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

const IDS: &[&str] = &["0", "1", "2", "12", " 3 ", "0", "1", "2", "-1", "x"];
const TEXTS: &[&str] = &[
    "Hi.",
    "Hello there",
    "",
    "he\u{92}s",
    "heâ€™s",
    "a, b",
    "\"q\"",
];
const NAMES: &[&str] = &["joy", "Anger", "neutral", "sadness", "happy", ""];
const MELD_COLUMNS: &[&[&str]] = &[
    IDS,
    TEXTS,
    &["Ross", "", "Richard’s Date"],
    NAMES,
    &["neutral"],
    IDS,
    IDS,
    IDS,
    IDS,
    &["x"],
    &["y"],
];
const CONVERSATION_COLUMNS: &[&[&str]] =
    &[&["d", "e", ""], IDS, &["Ana", "", " Ben "], TEXTS, NAMES];

/// Text that survives [`mmer_data::meld::repair_text`] unchanged.
fn plain_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?\"'’—…é\r\n-]{0,30}".prop_filter("not blank", |t| !t.trim().is_empty())
}

fn write_csv(header: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.into_inner().unwrap()
}

fn meld_row(sr: usize, dia: u64, utt: u64, text: &str, emotion: &str) -> Vec<String> {
    let mut r = vec![
        sr.to_string(),
        text.into(),
        "Joey".into(),
        emotion.into(),
        "neutral".into(),
    ];
    r.extend([
        dia.to_string(),
        utt.to_string(),
        "1".into(),
        "2".into(),
        "00:00:01,000".into(),
        "x".into(),
    ]);
    r
}

fn physical_line_of_last_record(bytes: &[u8], last_record_len: usize) -> u64 {
    let start = bytes.len() - last_record_len;
    1 + bytes[..start].iter().filter(|&&b| b == b'\n').count() as u64
}

proptest! {
    #[test]
    fn meld_reader_never_panics(bytes in garbage_file(
        "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime",
        MELD_COLUMNS,
    )) {
        let (_dir, path) = temp_file("train_sent_emo.csv", &bytes);
        // Any outcome is fine as long as it is a value, not a panic.
        let _ = load_meld_split(&path, Split::Train);
    }

    #[test]
    fn conversation_csv_reader_never_panics(bytes in garbage_file("dialogue,turn,speaker,text,label", CONVERSATION_COLUMNS)) {
        let (_dir, path) = temp_file("c.csv", &bytes);
        let _ = read_conversations(&path, &LabelSpace::meld());
    }

    #[test]
    fn conversation_jsonl_reader_never_panics(
        lines in proptest::collection::vec(prop_oneof![
            Just(r#"{"dialogue": "d", "turn": 0, "speaker": "A", "text": "hi", "label": "joy"}"#.to_string()),
            Just(r#"{"dialogue": "d", "turn": 1, "speaker": "B", "text": "x", "audio": "a.wav"}"#.to_string()),
            Just(r#"{"dialogue": "d", "turn": "1"}"#.to_string()),
            "\\PC{0,20}",
            Just(String::new()),
        ], 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = lines.join("\n").into_bytes();
        bytes.truncate(cut.index(bytes.len() + 1));
        let (_dir, path) = temp_file("c.jsonl", &bytes);
        let _ = read_conversations(&path, &LabelSpace::meld());
    }

    #[test]
    fn meld_rows_round_trip(
        rows in proptest::collection::btree_map((0u64..4, 0u64..6), (plain_text(), 0usize..7), 1..16),
    ) {
        let records: Vec<Vec<String>> = rows
            .iter()
            .enumerate()
            .map(|(i, ((dia, utt), (text, class)))| meld_row(i + 1, *dia, *utt, text, EMOTIONS[*class]))
            .collect();
        let (_dir, path) = temp_file("test_sent_emo.csv", &write_csv(&MELD_HEADER, &records));
        let dialogues = load_meld_split(&path, Split::Test).unwrap();
        let mut loaded = BTreeMap::new();
        for d in &dialogues {
            for u in &d.utterances {
                loaded.insert(u.id.clone(), (u.text.clone().unwrap_or_default(), u.label.clone()));
            }
        }
        prop_assert_eq!(loaded.len(), rows.len());
        for ((dia, utt), (text, class)) in &rows {
            let got = &loaded[&format!("test/dia{dia}_utt{utt}")];
            prop_assert_eq!(&got.0, text);
            prop_assert_eq!(&got.1, &Some(Label::Single(*class)));
        }
    }

    /// csv's own `Position::line()` is one early on CRLF files; the loader's
    /// line must be the physical one even after multi-line quoted fields.
    #[test]
    fn meld_error_lines_are_physical(
        rows in proptest::collection::btree_map((0u64..3, 0u64..4), plain_text(), 0..8),
    ) {
        let mut records: Vec<Vec<String>> = rows
            .iter()
            .enumerate()
            .map(|(i, ((dia, utt), text))| meld_row(i + 1, *dia, *utt, text, "joy"))
            .collect();
        records.push(meld_row(99, 7, 0, "bad\r\nlabel", "happy"));
        let bytes = write_csv(&MELD_HEADER, &records);
        let last = {
            let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
            w.write_record(records.last().unwrap()).unwrap();
            w.into_inner().unwrap()
        };
        let want = physical_line_of_last_record(&bytes, last.len());
        let (_dir, path) = temp_file("dev_sent_emo.csv", &bytes);
        match load_meld_split(&path, Split::Valid) {
            Err(Error::UnknownLabel { line, id, .. }) => {
                prop_assert_eq!(line, want);
                prop_assert_eq!(id, "valid/dia7_utt0");
            }
            other => prop_assert!(false, "expected UnknownLabel, got {:?}", other),
        }
    }

    #[test]
    fn conversation_csv_round_trips(
        turns in proptest::collection::btree_map(
            ("[a-z]{1,3}", 0u64..20),
            ("[A-Z][a-z]{0,4}", "\\PC{1,20}", proptest::option::of(0usize..7)),
            1..12,
        ),
    ) {
        let turns: BTreeMap<_, _> =
            turns.into_iter().filter(|(_, (_, text, _))| !text.trim().is_empty()).collect();
        prop_assume!(!turns.is_empty());
        let records: Vec<Vec<String>> = turns
            .iter()
            .map(|((dialogue, turn), (speaker, text, label))| {
                let label = label.map(|c| EMOTIONS[c].to_string()).unwrap_or_default();
                vec![dialogue.clone(), turn.to_string(), speaker.clone(), text.clone(), label]
            })
            .collect();
        let bytes = write_csv(&["dialogue", "turn", "speaker", "text", "label"], &records);
        let (_dir, path) = temp_file("c.csv", &bytes);
        let dialogues = load_conversations(&path, &LabelSpace::meld()).unwrap();
        prop_assert_eq!(dialogues.iter().map(|d| d.utterances.len()).sum::<usize>(), turns.len());
        for d in &dialogues {
            let mut previous = None;
            for u in &d.utterances {
                let turn: u64 = u.id.rsplit_once("_utt").unwrap().1.parse().unwrap();
                prop_assert!(previous < Some(turn), "turns sorted");
                previous = Some(turn);
                let (speaker, text, label) = &turns[&(d.id.clone(), turn)];
                prop_assert_eq!(&u.speaker, speaker);
                prop_assert_eq!(u.text.as_deref(), Some(text.as_str()));
                prop_assert_eq!(&u.label, &label.map(Label::Single));
            }
        }
    }
}
