//! MELD (Poria et al., ACL 2019, <https://affective-meld.github.io/>) from its
//! release CSVs: `train_sent_emo.csv`, `dev_sent_emo.csv` and
//! `test_sent_emo.csv`, one row per utterance with the columns
//! `Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID,
//! Utterance_ID, Season, Episode, StartTime, EndTime`.
//!
//! Only `Utterance`, `Speaker`, `Emotion`, `Dialogue_ID` and `Utterance_ID`
//! are read (located by header name, so column order does not matter); the
//! rest may be absent. Labels follow [`LabelSpace::meld()`]. The release has
//! 9,989 / 1,109 / 2,610 utterances in 1,038 / 114 / 280 dialogues.
//!
//! # Ids
//! Dialogue and utterance numbers restart in every split, so ids carry the
//! split: dialogue `train/dia12`, utterance `train/dia12_utt3` (the part
//! after the slash is MELD's own name, the stem of the clip
//! `dia12_utt3.mp4`; the dev split is `valid/…` after [`Split::Valid`]).
//! Utterances are sorted by `Utterance_ID`; [`Utterance::index`] is the rank
//! in that order, which differs from `Utterance_ID` where the release skips
//! numbers (76 dialogues do: 72 + 2 + 2).
//!
//! # Text encoding
//! The CSVs are read as bytes. The copy in `shared/data/meld` is valid UTF-8
//! with no damage (its non-ASCII characters are ’ ‘ “ ” — – … é ó; the
//! loader's test checks nothing is left to repair), but other copies of MELD
//! carry Windows-1252 punctuation in three damaged forms, all repaired to
//! the intended character by [`repair_text`]:
//! - raw cp1252 bytes, invalid as UTF-8 (`he\x92s`): each byte of an invalid
//!   stretch is decoded as Windows-1252 (`he’s`);
//! - cp1252 bytes decoded as Latin-1, i.e. C1 control characters
//!   (`he\u{92}s`): mapped through the Windows-1252 table (`he’s`);
//! - UTF-8 read as Windows-1252 ("mojibake": `heâ€™s`, `â€œ`, `â€”`,
//!   `â€¦`, `Ã©`, and `â€` whose third byte 0x9D was dropped): re-encoded
//!   and decoded as UTF-8 (`he’s`, `“`, `—`, `…`, `é`, `”`).
//!
//! Characters that are already right (’ “ ” — … é) are kept as they are, not
//! folded to ASCII: the text encoders' tokenizers handle them, and keeping
//! them leaves the transcript identical to the clean release.
//!
//! # Empty text
//! The release has no empty utterance, so a blank `Utterance` is damage (a
//! broken export or a cell cleared by hand): it is an [`Error::EmptyText`]
//! naming the file, line and utterance id (`valid/dia3_utt2`: split,
//! dialogue and utterance), not a corpus that silently lacks text.
//!
//! # Quoting
//! Quoting must be RFC 4180's (the release's is): a quoted field that is
//! never closed, text after a closing quote, or a quote inside an unquoted
//! field is an [`Error::Parse`] at its line, naming the column (the csv
//! crate would swallow the rest of the file, or merge the records up to the
//! next quote, without an error).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use mmer_core::{Corpus, Dialogue, Label, LabelSpace, Split, Utterance};

use crate::csv_quotes::{BadQuote, bad_quote_error, fields_before, find_bad_quote};
use crate::{Error, Result};

/// The release file of each split.
pub const SPLIT_FILES: [(Split, &str); 3] = [
    (Split::Train, "train_sent_emo.csv"),
    (Split::Valid, "dev_sent_emo.csv"),
    (Split::Test, "test_sent_emo.csv"),
];

/// The columns read; all must be in the header.
const REQUIRED: [&str; 5] = [
    "Utterance",
    "Speaker",
    "Emotion",
    "Dialogue_ID",
    "Utterance_ID",
];

/// Loads the three MELD splits from `dir` (see [`SPLIT_FILES`]).
///
/// # Errors
/// [`Error::Io`] for a missing or unreadable file, and per row
/// [`Error::Parse`] (malformed CSV, wrong field count, broken quoting such
/// as an unterminated quote, non-numeric ids),
/// [`Error::UnknownLabel`], [`Error::EmptyText`], [`Error::DuplicateId`] and
/// [`Error::MissingColumns`], each naming the file and physical line;
/// [`Error::Invalid`] if the result breaks a corpus invariant.
pub fn load_meld(dir: &Path) -> Result<Corpus> {
    let mut splits = BTreeMap::new();
    for (split, file) in SPLIT_FILES {
        splits.insert(split, load_meld_split(&dir.join(file), split)?);
    }
    let corpus = Corpus {
        name: "meld".into(),
        labels: LabelSpace::meld(),
        splits,
    };
    corpus.validate().map_err(|source| Error::Invalid {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(corpus)
}

/// Loads one MELD CSV as `split` (which only prefixes the ids).
///
/// # Errors
/// As [`load_meld`], for this file.
pub fn load_meld_split(path: &Path, split: Split) -> Result<Vec<Dialogue>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_split(&bytes, path, split)
}

/// One parsed row, before grouping.
struct Row {
    line: u64,
    utterance_id: u64,
    utterance: Utterance,
}

fn parse_split(bytes: &[u8], path: &Path, split: Split) -> Result<Vec<Dialogue>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let bad_quote = find_bad_quote(bytes);
    if let Some(bad) = bad_quote.as_ref().filter(|b| b.record == 0) {
        return Err(bad_quote_error(path, bytes, bad, None, None));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let mut lines = LineCounter::new(bytes);
    let header: Vec<String> = reader
        .byte_headers()
        .map_err(|e| csv_error(path, e, &mut lines))?
        .iter()
        .map(|h| decode_bytes(h).trim().to_string())
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|c| column(c).is_none())
        .map(|c| c.to_string())
        .collect();
    let [
        Some(text_col),
        Some(speaker_col),
        Some(emotion_col),
        Some(dialogue_col),
        Some(utt_col),
    ] = REQUIRED.map(column)
    else {
        return Err(Error::MissingColumns {
            path: path.to_path_buf(),
            missing,
            found: header,
        });
    };

    let labels = LabelSpace::meld();
    let mut dialogues: BTreeMap<u64, Vec<Row>> = BTreeMap::new();
    let mut first_seen: HashMap<(u64, u64), u64> = HashMap::new();
    // The record with broken quoting swallowed the rest of the file or
    // merged records: report it where it starts, with its ids when known.
    let quote_error = |bad: &BadQuote| {
        let known = fields_before(bytes, bad);
        let id = |col: usize| known.get(col).and_then(|f| parse_id(f.as_bytes()));
        let whose = match (id(dialogue_col), id(utt_col)) {
            (Some(d), Some(u)) => Some(format!("utterance {split}/dia{d}_utt{u}")),
            (Some(d), None) => Some(format!("dialogue {split}/dia{d}")),
            _ => None,
        };
        bad_quote_error(path, bytes, bad, Some(&header), whose)
    };
    for (i, record) in reader.byte_records().enumerate() {
        if let Some(bad) = bad_quote.as_ref().filter(|b| b.record == i + 1) {
            return Err(quote_error(bad));
        }
        let record = record.map_err(|e| csv_error(path, e, &mut lines))?;
        let line = lines.line(record.position());
        let field = |col: usize| record.get(col).unwrap_or_default();
        let parse_err = |msg: String| Error::Parse {
            path: path.to_path_buf(),
            line,
            msg,
        };

        let dialogue = parse_id(field(dialogue_col)).ok_or_else(|| {
            parse_err(format!(
                "Dialogue_ID {:?} is not a non-negative integer",
                decode_bytes(field(dialogue_col))
            ))
        })?;
        let utterance_id = parse_id(field(utt_col)).ok_or_else(|| {
            parse_err(format!(
                "dialogue {split}/dia{dialogue}: Utterance_ID {:?} is not a non-negative integer",
                decode_bytes(field(utt_col))
            ))
        })?;
        let id = format!("{split}/dia{dialogue}_utt{utterance_id}");
        if let Some(&first_line) = first_seen.get(&(dialogue, utterance_id)) {
            return Err(Error::DuplicateId {
                path: path.to_path_buf(),
                line,
                first_line,
                id,
            });
        }
        first_seen.insert((dialogue, utterance_id), line);

        let emotion = repair_text(&decode_bytes(field(emotion_col))).into_owned();
        let class = labels.index_of(&emotion).map_err(|_| Error::UnknownLabel {
            path: path.to_path_buf(),
            line,
            id: id.clone(),
            label: emotion.clone(),
            known: labels.classes.join(", "),
        })?;
        let text = repair_text(&decode_bytes(field(text_col))).into_owned();
        let speaker = repair_text(&decode_bytes(field(speaker_col))).into_owned();

        if text.trim().is_empty() {
            return Err(Error::EmptyText {
                path: path.to_path_buf(),
                line,
                id,
            });
        }
        let mut utterance = Utterance::new(id, 0, speaker);
        utterance.label = Some(Label::Single(class));
        utterance.text = Some(text);
        dialogues.entry(dialogue).or_default().push(Row {
            line,
            utterance_id,
            utterance,
        });
    }

    if let Some(bad) = &bad_quote {
        return Err(quote_error(bad));
    }
    Ok(dialogues
        .into_iter()
        .map(|(dialogue, mut rows)| {
            rows.sort_by_key(|r| (r.utterance_id, r.line));
            let utterances = rows
                .into_iter()
                .enumerate()
                .map(|(index, row)| Utterance {
                    index,
                    turn: Some(row.utterance_id),
                    ..row.utterance
                })
                .collect();
            Dialogue {
                id: format!("{split}/dia{dialogue}"),
                utterances,
            }
        })
        .collect())
}

/// A non-negative integer id, allowing surrounding blanks.
fn parse_id(field: &[u8]) -> Option<u64> {
    std::str::from_utf8(field).ok()?.trim().parse().ok()
}

/// Physical 1-based line numbers of csv-crate positions.
///
/// Why not `csv::Position::line()`: csv 1.4 counts a CRLF record's line
/// before consuming the `\n` of the previous terminator, so in a CRLF file
/// (MELD's are) it reports every record one line early, and it ignores blank
/// lines before the header. `Position::byte()` is exact up to that leftover
/// terminator, so the line is recomputed from it: skip `\r`/`\n` (a record
/// cannot start with one), then count the newlines before. Positions arrive
/// in increasing order, so counting resumes from the last one.
pub(crate) struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    /// A counter over the bytes the csv reader reads.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The physical line where the record at `pos` starts (0 without one).
    pub(crate) fn line(&mut self, pos: Option<&csv::Position>) -> u64 {
        let Some(pos) = pos else { return 0 };
        let mut start = usize::try_from(pos.byte())
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while matches!(self.bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start < self.offset {
            (self.offset, self.line) = (0, 1);
        }
        let newlines = self.bytes[self.offset..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += newlines as u64;
        self.offset = start;
        self.line
    }
}

/// A csv-crate error as a loader error at the record's physical line.
pub(crate) fn csv_error(path: &Path, err: csv::Error, lines: &mut LineCounter<'_>) -> Error {
    let line = lines.line(err.position());
    let path: PathBuf = path.to_path_buf();
    let msg = match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "record has {len} fields, the header has {expected_len} \
             (a stray or unbalanced quote can merge or split records)"
        ),
        csv::ErrorKind::Utf8 { err: utf8, .. } => {
            format!("field {} is not valid UTF-8", utf8.field() + 1)
        }
        _ => format!("malformed CSV: {err}"),
    };
    match err.into_kind() {
        csv::ErrorKind::Io(source) => Error::Io { path, source },
        _ => Error::Parse { path, line, msg },
    }
}

/// Decodes bytes as UTF-8 where valid and each byte of an invalid stretch as
/// Windows-1252 (undefined bytes become the C1 control of the same value,
/// which [`repair_text`] then drops). Never fails.
pub fn decode_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(chunk.invalid().iter().map(|&b| cp1252_char(b)));
    }
    Cow::Owned(out)
}

/// Windows-1252 code points of bytes 0x80–0x9F; `None` where the code page
/// leaves the byte undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D).
const CP1252_HIGH: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('‘'),
    Some('’'),
    Some('“'),
    Some('”'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    Some('Ÿ'),
];

/// The character of one Windows-1252 byte (C1 control for undefined bytes).
fn cp1252_char(byte: u8) -> char {
    match byte {
        0x80..=0x9F => CP1252_HIGH[usize::from(byte - 0x80)].unwrap_or(char::from(byte)),
        _ => char::from(byte),
    }
}

/// The Windows-1252 byte of a character, if it is one of the code page's
/// upper half (C1 controls count as the byte of the same value, as a
/// Latin-1 decoder produces them).
fn cp1252_byte(c: char) -> Option<u8> {
    match u32::from(c) {
        code @ 0x80..=0xFF => u8::try_from(code).ok(),
        _ => CP1252_HIGH
            .iter()
            .position(|&h| h == Some(c))
            .and_then(|i| u8::try_from(i + 0x80).ok()),
    }
}

/// A C1 control character read as the Windows-1252 character it stood for;
/// `None` (dropped) for the five undefined bytes.
fn fix_c1(c: char) -> Option<char> {
    match u32::from(c) {
        code @ 0x80..=0x9F => u8::try_from(code)
            .ok()
            .and_then(|b| CP1252_HIGH[usize::from(b - 0x80)]),
        _ => Some(c),
    }
}

fn is_continuation(b: u8) -> bool {
    (0x80..=0xBF).contains(&b)
}

/// Repairs Windows-1252 damage in MELD text (see the [module docs](self)).
///
/// Runs of characters from the Windows-1252 upper half are re-encoded to
/// bytes, and only UTF-8 sequences with lead byte `C2`/`C3` (→ U+0080–U+00FF)
/// or `E2` (→ U+2000–U+2FFF: quotes, dashes, ellipsis, €, ™) are decoded:
/// other accidental sequences (`É’` is valid UTF-8 for `ɒ`) are left alone.
/// C1 controls outside such sequences are mapped through Windows-1252.
/// Returns the input unchanged (borrowed) when there is nothing to repair.
pub fn repair_text(text: &str) -> Cow<'_, str> {
    let suspicious = |c: char| matches!(u32::from(c), 0x80..=0x9F) || matches!(c, 'Â' | 'Ã' | 'â');
    if !text.chars().any(suspicious) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut start = 0;
    while start < chars.len() {
        let run_len = chars[start..]
            .iter()
            .take_while(|&&c| cp1252_byte(c).is_some())
            .count();
        if run_len == 0 {
            out.push(chars[start]);
            start += 1;
            continue;
        }
        let run = &chars[start..start + run_len];
        let bytes: Vec<u8> = run.iter().filter_map(|&c| cp1252_byte(c)).collect();
        repair_run(run, &bytes, &mut out);
        start += run_len;
    }
    Cow::Owned(out)
}

/// Repairs one run of Windows-1252-upper-half characters (`run[i]` encodes
/// as `bytes[i]`).
fn repair_run(run: &[char], bytes: &[u8], out: &mut String) {
    let n = bytes.len();
    let mut i = 0;
    while i < n {
        let len = match bytes[i] {
            0xC2 | 0xC3 if i + 1 < n && is_continuation(bytes[i + 1]) => 2,
            0xE2 if i + 2 < n && is_continuation(bytes[i + 1]) && is_continuation(bytes[i + 2]) => {
                3
            }
            // "â€" at the end of a run: ” whose last byte (0x9D, undefined
            // in Windows-1252) a converter dropped.
            0xE2 if i + 2 == n && bytes[i + 1] == 0x80 => {
                out.push('”');
                i += 2;
                continue;
            }
            _ => 1,
        };
        match std::str::from_utf8(&bytes[i..i + len]) {
            Ok(decoded) if len > 1 => out.extend(decoded.chars().filter_map(fix_c1)),
            _ => {
                out.extend(fix_c1(run[i]));
                i += 1;
                continue;
            }
        }
        i += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\r\n";

    fn row(sr: usize, text: &str, speaker: &str, emotion: &str, dia: &str, utt: &str) -> String {
        format!(
            "{sr},\"{text}\",{speaker},{emotion},neutral,{dia},{utt},1,1,\"00:00:01,000\",\"00:00:02,000\"\r\n"
        )
    }

    fn parse(csv: &str) -> Result<Vec<Dialogue>> {
        parse_split(csv.as_bytes(), Path::new("dev_sent_emo.csv"), Split::Valid)
    }

    #[test]
    fn groups_sorts_and_names_utterances() {
        let csv = format!(
            "{HEADER}{}{}{}{}",
            row(1, "Second, later.", "Ross", "joy", "3", "5"),
            row(2, "Hi.", "Rachel", "Neutral", "3", "2"),
            row(3, "Other.", "Monica", "anger", "0", "0"),
            row(4, "Third.", "Ross", "surprise", "3", "7"),
        );
        let dialogues = parse(&csv).unwrap();
        assert_eq!(dialogues.len(), 2);
        assert_eq!(dialogues[0].id, "valid/dia0");
        let d = &dialogues[1];
        assert_eq!(d.id, "valid/dia3");
        let ids: Vec<&str> = d.utterances.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(
            ids,
            ["valid/dia3_utt2", "valid/dia3_utt5", "valid/dia3_utt7"]
        );
        let indices: Vec<usize> = d.utterances.iter().map(|u| u.index).collect();
        assert_eq!(indices, [0, 1, 2]);
        assert_eq!(d.utterances[0].label, Some(Label::Single(0)));
        assert_eq!(d.utterances[1].text.as_deref(), Some("Second, later."));
        assert_eq!(d.utterances[2].label, Some(Label::Single(1)));
    }

    #[test]
    fn unknown_emotion_names_file_line_and_id() {
        let csv = format!(
            "{HEADER}{}{}",
            row(1, "a", "A", "joy", "0", "0"),
            row(2, "b", "B", "happy", "0", "1")
        );
        let err = parse(&csv).unwrap_err();
        assert!(
            matches!(&err, Error::UnknownLabel { line: 3, id, label, .. } if id == "valid/dia0_utt1" && label == "happy"),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("dev_sent_emo.csv:3:"), "{err}");
    }

    #[test]
    fn line_numbers_are_physical_lines_across_multiline_fields() {
        let csv = format!(
            "{HEADER}{}{}",
            row(1, "two\r\nlines", "A", "joy", "0", "0"),
            row(2, "b", "B", "happy", "0", "1")
        );
        assert!(matches!(
            parse(&csv),
            Err(Error::UnknownLabel { line: 4, .. })
        ));
    }

    /// csv 1.4's `Position::line()` is one early for CRLF records and
    /// ignores blank lines before the header; [`LineCounter`] is not.
    #[test]
    fn csv_position_line_is_not_trusted() {
        for (data, want) in [
            ("h\na\nb\n", vec![2, 3]),
            ("h\r\na\r\nb\r\n", vec![2, 3]),
            ("\r\n\r\nh\r\n\r\na\r\n\"q\r\nq\"\r\nz", vec![5, 6, 8]),
        ] {
            let mut reader = csv::ReaderBuilder::new().from_reader(data.as_bytes());
            let mut lines = LineCounter::new(data.as_bytes());
            let got: Vec<u64> = reader
                .byte_records()
                .map(|r| lines.line(r.unwrap().position()))
                .collect();
            assert_eq!(got, want, "{data:?}");
        }
    }

    #[test]
    fn duplicate_and_non_numeric_ids_are_errors() {
        let csv = format!(
            "{HEADER}{}{}",
            row(1, "a", "A", "joy", "0", "1"),
            row(2, "b", "B", "joy", "0", "1")
        );
        let err = parse(&csv).unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateId { line: 3, first_line: 2, id, .. } if id == "valid/dia0_utt1"),
            "{err:?}"
        );

        let csv = format!("{HEADER}{}", row(1, "a", "A", "joy", "x", "1"));
        let err = parse(&csv).unwrap_err().to_string();
        assert!(
            err.contains(":2:") && err.contains("Dialogue_ID \"x\""),
            "{err}"
        );
        let csv = format!("{HEADER}{}", row(1, "a", "A", "joy", "4", "-1"));
        let err = parse(&csv).unwrap_err().to_string();
        assert!(
            err.contains("valid/dia4") && err.contains("Utterance_ID \"-1\""),
            "{err}"
        );
    }

    #[test]
    fn bad_quoting_is_a_parse_error_at_a_line() {
        let csv = format!(
            "{HEADER}{}1,\"unterminated,A,joy,neutral,0,1,1,1,x,y\r\n",
            row(1, "a", "A", "joy", "0", "0")
        );
        assert!(matches!(parse(&csv), Err(Error::Parse { line: 3, .. })));
        let csv = format!("{HEADER}1,a,b\r\n");
        let err = parse(&csv).unwrap_err();
        assert!(
            matches!(&err, Error::Parse { line: 2, msg, .. } if msg.contains("3 fields")),
            "{err:?}"
        );
    }

    #[test]
    fn missing_columns_are_listed() {
        let err = parse("Utterance,Speaker,Emotion\r\na,b,joy\r\n").unwrap_err();
        assert!(
            matches!(&err, Error::MissingColumns { missing, .. } if missing == &["Dialogue_ID", "Utterance_ID"]),
            "{err:?}"
        );
    }

    #[test]
    fn empty_text_is_an_error_naming_line_and_ids() {
        let csv = format!(
            "{HEADER}{}{}",
            row(1, "Hi.", "A", "joy", "3", "0"),
            row(2, "  ", "B", "joy", "3", "1")
        );
        let err = parse(&csv).unwrap_err();
        assert!(
            matches!(&err, Error::EmptyText { line: 3, id, .. } if id == "valid/dia3_utt1"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "dev_sent_emo.csv:3: utterance valid/dia3_utt1 has empty text"
        );
    }

    #[test]
    fn windows_1252_damage_is_repaired() {
        // Raw cp1252 byte (invalid UTF-8) in a file.
        let mut bytes = HEADER.as_bytes().to_vec();
        bytes.extend_from_slice(b"1,He\x92s here \x85,Joey,joy,positive,0,0,1,1,a,b\r\n");
        let d = parse_split(&bytes, Path::new("x.csv"), Split::Train).unwrap();
        assert_eq!(d[0].utterances[0].text.as_deref(), Some("He’s here …"));

        assert_eq!(repair_text("he\u{92}s"), "he’s");
        assert_eq!(repair_text("heâ€™s"), "he’s");
        assert_eq!(repair_text("â€œHi!â€\u{9d} â€” okâ€¦"), "“Hi!” — ok…");
        assert_eq!(repair_text("â€œHi!â€ he said"), "“Hi!” he said");
        assert_eq!(repair_text("cafÃ©"), "café");
        assert_eq!(repair_text("Ã\u{a9}"), "é");
        assert_eq!(repair_text("drop \u{81}this"), "drop this");
        // Correct text is left alone, and borrowed.
        for fine in [
            "Richard’s Date",
            "“Oh.” — wait……",
            "café",
            "CAFÉ’S",
            "naïve",
            "plain",
        ] {
            assert!(
                matches!(repair_text(fine), Cow::Borrowed(_)) || repair_text(fine) == fine,
                "{fine}"
            );
            assert_eq!(repair_text(fine), fine);
        }
    }

    #[test]
    fn decode_bytes_never_fails() {
        assert_eq!(decode_bytes(b"ok"), "ok");
        assert_eq!(decode_bytes(b"\x93q\x94"), "“q”");
        assert_eq!(decode_bytes(b"\xff\xe9"), "ÿé");
        assert_eq!(decode_bytes(b"\x9d"), "\u{9d}");
    }
}
