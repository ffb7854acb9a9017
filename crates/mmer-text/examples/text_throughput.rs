//! Throughput of the frozen text encoders on MELD utterances.
//!
//! ```text
//! cargo run --release -p mmer-text --example text_throughput -- \
//!     [minilm|mpnet] [path/to/train_sent_emo.csv] [count] [batch_size] [workers]
//! ```
//!
//! Reads the `Utterance` column, embeds the first `count` (default 2000)
//! utterances once to warm up caches and once timed, and prints utterances per
//! second with the load time and the number of real (unpadded) tokens.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use mmer_text::{
    DEFAULT_BATCH_SIZE, EncoderKind, SentenceEncoder, default_models_dir, default_workers,
};

/// User + system CPU time of this process so far (Linux `/proc/self/stat`,
/// assuming the usual 100 ticks per second); 0 elsewhere.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let kind: EncoderKind = args.next().as_deref().unwrap_or("minilm").parse()?;
    let csv_path = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "../shared/data/meld/train_sent_emo.csv".to_string()),
    );
    let count: usize = match args.next() {
        Some(n) => n.parse().with_context(|| format!("count {n:?}"))?,
        None => 2000,
    };
    let batch_size: usize = match args.next() {
        Some(n) => n.parse().with_context(|| format!("batch size {n:?}"))?,
        None => DEFAULT_BATCH_SIZE,
    };
    let workers: usize = match args.next() {
        Some(n) => n.parse().with_context(|| format!("workers {n:?}"))?,
        None => default_workers(),
    };

    let mut reader = csv::Reader::from_path(&csv_path)
        .with_context(|| format!("reading {}", csv_path.display()))?;
    let column = reader
        .headers()?
        .iter()
        .position(|h| h == "Utterance")
        .with_context(|| format!("{}: no Utterance column", csv_path.display()))?;
    let mut utterances = Vec::with_capacity(count);
    for record in reader.records().take(count) {
        let record = record.with_context(|| format!("reading {}", csv_path.display()))?;
        utterances.push(record.get(column).unwrap_or_default().to_string());
    }
    if utterances.is_empty() {
        bail!("{}: no utterances", csv_path.display());
    }
    let texts: Vec<&str> = utterances.iter().map(String::as_str).collect();

    let start = Instant::now();
    let encoder = SentenceEncoder::load(kind, &default_models_dir())?
        .with_batch_size(batch_size)
        .with_workers(workers);
    let load_s = start.elapsed().as_secs_f64();
    let mut counts = encoder.count_tokens(&texts)?;
    let tokens: usize = counts.iter().sum();
    // What the length-sorted batches pad to (the encoder sorts the same way).
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let padded: usize = counts
        .chunks(batch_size.max(1))
        .map(|c| c[0] * c.len())
        .sum();

    let warm = Instant::now();
    encoder.embed(&texts[..texts.len().min(4 * batch_size)])?;
    let warm_s = warm.elapsed().as_secs_f64();
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let vectors = encoder.embed(&texts)?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    assert_eq!(vectors.len(), texts.len());
    println!(
        "{kind}: {} utterances ({tokens} tokens, {padded} padded), batch {batch_size}, workers {workers}, RAYON_NUM_THREADS {:?}, CANDLE_NUM_THREADS {:?}: \
         {wall:.2} s wall, {:.1} utt/s; {cpu:.2} s CPU, {:.1} utt per CPU-second (load {load_s:.2} s, warm-up {warm_s:.2} s)",
        texts.len(),
        std::env::var("RAYON_NUM_THREADS").ok(),
        std::env::var("CANDLE_NUM_THREADS").ok(),
        texts.len() as f64 / wall,
        texts.len() as f64 / cpu,
    );
    Ok(())
}
