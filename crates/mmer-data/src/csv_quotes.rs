//! Quoting mistakes that the csv crate accepts silently.
//!
//! The csv crate is lenient: a quoted field that is never closed runs to the
//! end of the file (every later record becomes part of its text), text after
//! a closing quote (`"Hi" she said`) is appended to the field, and a quote
//! inside an unquoted field is kept as a character. So one stray quote can
//! swallow the rest of the file, and two can merge the records between them
//! into one, with no error and often the right number of fields.
//!
//! None of the three occurs in a file a CSV writer produced (RFC 4180: a
//! field with quotes is quoted as a whole and its inner quotes are doubled,
//! `""`), so the loaders reject all three: [`find_bad_quote`] scans the bytes
//! with the csv crate's own default rules (`,` delimiter, `"` quote, `""`
//! escape, `\r`, `\n` or `\r\n` terminators, blank lines skipped), and
//! [`bad_quote_error`] says where the offending field is. What is accepted
//! is then exactly RFC 4180 quoting, in which every file has an even number
//! of quotes: a single quote added or lost anywhere is always an error.

use std::path::Path;

use crate::Error;

/// A quoted field whose quoting is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadQuote {
    /// 0-based index of the record holding the field (the header is 0),
    /// counted as the csv crate counts them (blank lines are skipped).
    pub record: usize,
    /// Byte offset where that record starts.
    pub record_start: usize,
    /// Byte offset of the field's opening quote (for
    /// [`BadQuoteKind::QuoteInUnquoted`], of the stray quote).
    pub open: usize,
    /// What is wrong with it.
    pub kind: BadQuoteKind,
}

/// How a quoted field is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadQuoteKind {
    /// The field is never closed: it runs to the end of the file.
    Unterminated,
    /// The closing quote (at this byte offset) is followed by more text
    /// instead of a delimiter or the end of the record.
    TextAfterClose {
        /// Byte offset of the closing quote.
        close: usize,
    },
    /// A quote inside a field that does not start with one.
    QuoteInUnquoted,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// A quote inside a quoted field: the end of the field, or the first
    /// half of an escaped `""`.
    QuoteInQuoted,
}

/// The first field in `bytes` whose quoting is broken, if any: a quoted
/// field never closed or with text after its closing quote, or a quote in
/// an unquoted field.
pub(crate) fn find_bad_quote(bytes: &[u8]) -> Option<BadQuote> {
    let is_term = |b: u8| b == b'\r' || b == b'\n';
    let mut state = State::StartRecord;
    // None until the first record starts.
    let mut record: Option<usize> = None;
    let (mut record_start, mut open) = (0, 0);
    for (i, &b) in bytes.iter().enumerate() {
        state = match state {
            State::StartRecord if is_term(b) => State::StartRecord,
            State::StartRecord | State::StartField => {
                if state == State::StartRecord {
                    record = Some(record.map_or(0, |r| r + 1));
                    record_start = i;
                }
                match b {
                    b'"' => {
                        open = i;
                        State::InQuoted
                    }
                    b',' => State::StartField,
                    _ if is_term(b) => State::StartRecord,
                    _ => State::InField,
                }
            }
            State::InField => match b {
                b',' => State::StartField,
                b'"' => {
                    return Some(BadQuote {
                        record: record.unwrap_or(0),
                        record_start,
                        open: i,
                        kind: BadQuoteKind::QuoteInUnquoted,
                    });
                }
                _ if is_term(b) => State::StartRecord,
                _ => State::InField,
            },
            State::InQuoted if b == b'"' => State::QuoteInQuoted,
            State::InQuoted => State::InQuoted,
            State::QuoteInQuoted => match b {
                b'"' => State::InQuoted,
                b',' => State::StartField,
                _ if is_term(b) => State::StartRecord,
                _ => {
                    return Some(BadQuote {
                        record: record.unwrap_or(0),
                        record_start,
                        open,
                        kind: BadQuoteKind::TextAfterClose { close: i - 1 },
                    });
                }
            },
        };
    }
    (state == State::InQuoted).then(|| BadQuote {
        record: record.unwrap_or(0),
        record_start,
        open,
        kind: BadQuoteKind::Unterminated,
    })
}

/// 1-based line of byte `offset`.
fn line_of(bytes: &[u8], offset: usize) -> u64 {
    let before = bytes.get(..offset).unwrap_or(bytes);
    1 + before.iter().filter(|&&b| b == b'\n').count() as u64
}

/// The complete fields of the bad quote's record before the broken one, as
/// text (invalid UTF-8 replaced): what is known of the record.
pub(crate) fn fields_before(bytes: &[u8], bad: &BadQuote) -> Vec<String> {
    let prefix = bytes.get(bad.record_start..bad.open).unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(prefix);
    let mut record = csv::ByteRecord::new();
    if !matches!(reader.read_byte_record(&mut record), Ok(true)) {
        return Vec::new();
    }
    // The last field is the (empty) start of the broken one.
    let complete = record.len().saturating_sub(1);
    record
        .iter()
        .take(complete)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// The error for `bad`, at the line where the broken field opens.
///
/// `header` names the field's column when the bad record is not the header
/// itself; `whose` (e.g. `dialogue "d" turn 0`) says whose record it is,
/// from the fields before the broken one, when that is known.
pub(crate) fn bad_quote_error(
    path: &Path,
    bytes: &[u8],
    bad: &BadQuote,
    header: Option<&[String]>,
    whose: Option<String>,
) -> Error {
    let line = line_of(bytes, bad.open);
    let mut place = match header {
        Some(header) if bad.record > 0 => {
            let column = fields_before(bytes, bad).len();
            match header.get(column) {
                Some(name) => format!("column {name:?}"),
                None => format!("field {}", column + 1),
            }
        }
        _ => "header".to_string(),
    };
    if let Some(whose) = whose {
        place = format!("{whose}, {place}");
    }
    let excerpt = |from: usize| -> String {
        let rest = bytes.get(from..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b == b'\r' || b == b'\n' || b == b',')
            .unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end])
            .chars()
            .take(20)
            .collect()
    };
    let msg = match bad.kind {
        BadQuoteKind::Unterminated => {
            let rest = bytes.get(bad.open..).unwrap_or_default();
            let later =
                rest.iter().filter(|&&b| b == b'\n').count() - usize::from(rest.ends_with(b"\n"));
            let swallowed = match later {
                0 => String::new(),
                1 => ", swallowing the 1 line after it".to_string(),
                n => format!(", swallowing the {n} lines after it"),
            };
            format!(
                "{place}: unterminated quote: the quoted field that opens on this line \
                 is never closed, so it runs to the end of the file{swallowed} \
                 (a quote inside a quoted field must be doubled: \"\")"
            )
        }
        BadQuoteKind::TextAfterClose { close } => {
            let close_line = line_of(bytes, close);
            let closed = if close_line == line {
                String::new()
            } else {
                format!(" on line {close_line}")
            };
            let after = excerpt(close + 1);
            format!(
                "{place}: the quoted field that opens on this line is closed{closed} \
                 and followed by {after:?}; a quoted field must end at its closing \
                 quote (a quote inside a quoted field must be doubled: \"\"; a stray \
                 quote merges the records up to the next one)"
            )
        }
        BadQuoteKind::QuoteInUnquoted => {
            let field_start = bytes
                .get(..bad.open)
                .unwrap_or_default()
                .iter()
                .rposition(|&b| b == b',' || b == b'\r' || b == b'\n')
                .map_or(0, |i| i + 1);
            let field = excerpt(field_start);
            format!(
                "{place}: a quote inside the unquoted field {field:?}; a field with \
                 quotes must be quoted as a whole, its quotes doubled (\"He said \
                 \"\"hi\"\"\"), and a stray quote can merge records"
            )
        }
    };
    Error::Parse {
        path: path.to_path_buf(),
        line,
        msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(data: &str) -> Option<(usize, usize, BadQuoteKind)> {
        find_bad_quote(data.as_bytes()).map(|b| (b.record, b.open, b.kind))
    }

    #[test]
    fn well_formed_quoting_passes() {
        for data in [
            "",
            "a,b\n1,2\n",
            "a,b\r\n\"x, y\",\"he said \"\"hi\"\"\"\r\n",
            "a\n\"two\nlines\"\n",
            "a\n\"\"\n\"\"\"\"",
            "\n\n\"h\"\n",
        ] {
            assert_eq!(kind(data), None, "{data:?}");
        }
    }

    #[test]
    fn unterminated_and_text_after_close_are_found() {
        assert_eq!(
            kind("t,x\nd,\"open\nd,1\n"),
            Some((1, 6, BadQuoteKind::Unterminated))
        );
        assert_eq!(kind("\"h"), Some((0, 0, BadQuoteKind::Unterminated)));
        assert_eq!(
            kind("t\n\n\"a\"b\n"),
            Some((1, 3, BadQuoteKind::TextAfterClose { close: 5 }))
        );
        assert_eq!(
            kind("a,b\nx\"y,z\n"),
            Some((1, 5, BadQuoteKind::QuoteInUnquoted))
        );
        assert_eq!(
            kind("a,b\nx, \"y\"\n"),
            Some((1, 7, BadQuoteKind::QuoteInUnquoted))
        );
        // Two stray quotes: the first field runs to the second quote.
        assert_eq!(
            kind("t,x\nd,\"oops\nd,\"also\n"),
            Some((1, 6, BadQuoteKind::TextAfterClose { close: 14 }))
        );
    }

    #[test]
    fn the_error_names_line_column_and_record() {
        let data = b"dialogue,turn,text\nd,0,\"open\nd,1,hi\n";
        let bad = find_bad_quote(data).unwrap();
        assert_eq!(fields_before(data, &bad), ["d", "0"]);
        let header = ["dialogue", "turn", "text"].map(String::from);
        let err = bad_quote_error(
            Path::new("c.csv"),
            data,
            &bad,
            Some(&header),
            Some("dialogue \"d\" turn 0".into()),
        )
        .to_string();
        assert!(
            err.starts_with("c.csv:2: dialogue \"d\" turn 0, column \"text\": unterminated quote")
                && err.contains("the 1 line after it"),
            "{err}"
        );
    }
}
