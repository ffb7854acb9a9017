//! Conversation records from Python, read by mmer's own rules.
//!
//! The Python layer writes a list of dicts (or a DataFrame's rows) as JSON
//! Lines, record `i` on line `i + 1`, and names the whole `source`
//! (`conversation`, `DataFrame`). [`parse`] reads them with
//! [`mmer_data::conversation::parse_conversations`], so every rule and
//! message is the file reader's; only the place changes: mmer's
//! `<source>:<line>:` becomes `<noun> <line − 1>:` (`record 2:`, `row 2:`),
//! the index the caller knows. [`check_columns`] puts a DataFrame's columns
//! through the CSV header check, so a missing column gets the message a
//! conversation file with that header would. [`in_record_order`] puts
//! predictions (mmer's order: dialogues by first appearance, turns sorted)
//! back in the order of the records.

use std::collections::HashMap;
use std::path::Path;

use mmer_core::{Dialogue, LabelSpace};
use mmer_data::conversation::{ConversationFormat, parse_conversations};
use mmer_train::Prediction;
use pyo3::prelude::*;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Where the records came from, as messages name it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Stands for the file name (`conversation`, `DataFrame`).
    pub name: &'a str,
    /// What one record is called (`record`, `row`), numbered from 0.
    pub noun: &'a str,
}

/// The dialogues of JSON Lines `records` (one record per line, no blank
/// lines), labels resolved in `labels`; media paths are dropped, as
/// `mmer predict` drops them.
///
/// # Errors
/// [`Error::Records`]: any error of the conversation reader, located by
/// record.
pub fn parse(records: &[u8], source: Source<'_>, labels: &LabelSpace) -> Result<Vec<Dialogue>> {
    parse_conversations(
        records,
        ConversationFormat::Jsonl,
        Path::new(source.name),
        labels,
    )
    .map(|c| c.dialogues)
    .map_err(|e| Error::Records(locate(&e, source)))
}

/// mmer's message for `err` with the line of the JSON Lines text replaced
/// by the record's index (line `n` is record `n − 1`).
pub fn locate(err: &mmer_data::Error, source: Source<'_>) -> String {
    use mmer_data::Error as E;
    let message = err.to_string();
    let (line, first_line) = match err {
        E::Parse { line, .. }
        | E::UnknownLabel { line, .. }
        | E::LabelList { line, .. }
        | E::EmptyText { line, .. } => (*line, None),
        E::DuplicateId {
            line, first_line, ..
        } => (*line, Some(*first_line)),
        _ => return message,
    };
    let place = format!("{}:{line}:", source.name);
    let (Some(rest), Some(record)) = (message.strip_prefix(&place), line.checked_sub(1)) else {
        return message;
    };
    let mut located = format!("{} {record}:{rest}", source.noun);
    if let Some(first) = first_line.and_then(|l| l.checked_sub(1)) {
        located = located.replace(
            &format!("(first seen on line {})", first + 1),
            &format!("(first seen in {} {first})", source.noun),
        );
    }
    located
}

/// The dialogue id (trimmed, as mmer keeps it) and turn of a record that
/// parsed.
#[derive(Deserialize)]
struct Key {
    dialogue: String,
    turn: u64,
}

/// `predictions` of the dialogues [`parse`] read from `records`, one per
/// record, in the records' order.
///
/// # Errors
/// [`Error::Records`] when a record has no prediction (which would be a bug:
/// every record that parses is a turn).
pub fn in_record_order<'p>(
    records: &[u8],
    predictions: &'p [Prediction],
) -> Result<Vec<&'p Prediction>> {
    let by_turn: HashMap<(&str, u64), &Prediction> = predictions
        .iter()
        .map(|p| ((p.dialogue.as_str(), p.turn), p))
        .collect();
    records
        .split(|&b| b == b'\n')
        .filter(|line| !line.trim_ascii().is_empty())
        .enumerate()
        .map(|(record, line)| {
            let missing = || Error::Records(format!("record {record}: no prediction was made"));
            let key: Key = serde_json::from_slice(line).map_err(|_| missing())?;
            by_turn
                .get(&(key.dialogue.trim(), key.turn))
                .copied()
                .ok_or_else(missing)
        })
        .collect()
}

/// Checks a DataFrame's column names as the header of a conversation CSV
/// file: every required column present, no unknown or repeated one.
/// `source` names the table in the message (`DataFrame: missing column(s)
/// ["speaker"] (header has [...])`).
///
/// # Errors
/// `MmerError` with mmer's message.
#[pyfunction]
pub fn check_columns(columns: Vec<String>, source: &str) -> PyResult<()> {
    let mut header = csv::Writer::from_writer(Vec::new());
    if !columns.is_empty() {
        header
            .write_record(&columns)
            .map_err(|e| Error::Records(format!("{source}: {e}")))?;
    }
    let header = header
        .into_inner()
        .map_err(|e| Error::Records(format!("{source}: {e}")))?;
    // A header that passes leaves a file without records: the reader's
    // next complaint, "no utterances", means the columns are fine.
    match parse_conversations(
        &header,
        ConversationFormat::Csv,
        Path::new(source),
        &LabelSpace::meld(),
    ) {
        Ok(_) | Err(mmer_data::Error::Format { .. }) => Ok(()),
        Err(e) => Err(Error::Records(e.to_string()).into()),
    }
}
