//! The server's counters, and their Prometheus text exposition (`GET
//! /metrics`, format 0.0.4): requests by endpoint and status, turns
//! predicted, latency histograms of `POST /v1/emotions` and of stream
//! turns, early analyses of stream turns used or dropped, and the queue's
//! occupancy.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The endpoints counted by name; any other path counts as `other`, so a
/// client cannot grow the metrics by inventing paths.
pub const ENDPOINTS: [&str; 7] = [
    "/v1/emotions",
    "/v1/analyze",
    "/v1/stream",
    "/health",
    "/info",
    "/metrics",
    "/openapi.json",
];

/// The endpoint label of a request path.
pub fn endpoint_label(path: &str) -> &'static str {
    ENDPOINTS
        .iter()
        .find(|e| **e == path)
        .copied()
        .unwrap_or("other")
}

#[derive(Debug, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    counts: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

/// Counters shared by the request handlers.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    turns: AtomicU64,
    latency: Mutex<Histogram>,
    stream_latency: Mutex<Histogram>,
    early_used: AtomicU64,
    early_dropped: AtomicU64,
    batches: AtomicU64,
    batched_requests: AtomicU64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn record_request(&self, endpoint: &'static str, status: u16) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry((endpoint, status)).or_default() += 1;
    }

    /// Adds the time `POST /v1/emotions` took to the histogram.
    pub fn record_latency(&self, elapsed: Duration) {
        observe(&self.latency, elapsed);
    }

    /// Adds the time from a stream turn's close to its answer.
    pub fn record_stream_latency(&self, elapsed: Duration) {
        observe(&self.stream_latency, elapsed);
    }

    /// Counts an early analysis of a stream turn: `used` as the turn's
    /// answer, or dropped because speech resumed.
    pub fn record_early(&self, used: bool) {
        let counter = if used {
            &self.early_used
        } else {
            &self.early_dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one batch of `requests` requests predicted together.
    pub fn record_batch(&self, requests: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched_requests
            .fetch_add(requests as u64, Ordering::Relaxed);
    }

    /// Counts turns given a prediction.
    pub fn record_turns(&self, turns: usize) {
        self.turns.fetch_add(turns as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the queue's occupancy now
    /// (`in_flight` of `capacity` admitted requests).
    pub fn render(&self, in_flight: usize, capacity: usize) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP mmer_requests_total HTTP requests answered, by endpoint and status.\n\
             # TYPE mmer_requests_total counter\n",
        );
        {
            let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            for ((endpoint, status), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "mmer_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = write!(
            out,
            "# HELP mmer_turns_predicted_total Turns given an emotion.\n\
             # TYPE mmer_turns_predicted_total counter\n\
             mmer_turns_predicted_total {}\n",
            self.turns.load(Ordering::Relaxed)
        );
        histogram(
            &mut out,
            "mmer_request_duration_seconds",
            "Time to answer POST /v1/emotions, any status.",
            &self.latency,
        );
        histogram(
            &mut out,
            "mmer_stream_turn_latency_seconds",
            "Time from a /v1/stream turn's close (the audio that closed it arrived) to its answer.",
            &self.stream_latency,
        );
        let _ = write!(
            out,
            "# HELP mmer_stream_early_analyses_total Stream turns analysed before their pause closed them: used as the answer, or dropped because speech resumed.\n\
             # TYPE mmer_stream_early_analyses_total counter\n\
             mmer_stream_early_analyses_total{{outcome=\"used\"}} {}\n\
             mmer_stream_early_analyses_total{{outcome=\"dropped\"}} {}\n",
            self.early_used.load(Ordering::Relaxed),
            self.early_dropped.load(Ordering::Relaxed)
        );
        let _ = write!(
            out,
            "# HELP mmer_batches_total Batches of POST /v1/emotions requests predicted together (requests that waited for a worker together; a lone request is a batch of one).\n\
             # TYPE mmer_batches_total counter\n\
             mmer_batches_total {}\n\
             # HELP mmer_batched_requests_total Requests in those batches.\n\
             # TYPE mmer_batched_requests_total counter\n\
             mmer_batched_requests_total {}\n",
            self.batches.load(Ordering::Relaxed),
            self.batched_requests.load(Ordering::Relaxed)
        );
        let _ = write!(
            out,
            "# HELP mmer_queue_requests Requests admitted now (read, waiting or predicted).\n\
             # TYPE mmer_queue_requests gauge\n\
             mmer_queue_requests {in_flight}\n\
             # HELP mmer_queue_capacity Most requests admitted at once (--queue).\n\
             # TYPE mmer_queue_capacity gauge\n\
             mmer_queue_capacity {capacity}\n"
        );
        out
    }
}

/// Counts `elapsed` in `histogram`.
fn observe(histogram: &Mutex<Histogram>, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    let bucket = LATENCY_BUCKETS
        .iter()
        .position(|&le| seconds <= le)
        .unwrap_or(LATENCY_BUCKETS.len());
    let mut histogram = histogram.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(count) = histogram.counts.get_mut(bucket) {
        *count += 1;
    }
    histogram.sum += seconds;
    histogram.count += 1;
}

/// The Prometheus text of one histogram.
fn histogram(out: &mut String, name: &str, help: &str, histogram: &Mutex<Histogram>) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} histogram\n");
    let histogram = histogram.lock().unwrap_or_else(|e| e.into_inner());
    let mut cumulative = 0;
    for (le, n) in LATENCY_BUCKETS.iter().zip(histogram.counts.iter()) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let _ = write!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}\n",
        histogram.count, histogram.sum, histogram.count
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_counts_requests_turns_and_latency_cumulatively() {
        let metrics = Metrics::default();
        metrics.record_request("/v1/emotions", 200);
        metrics.record_request("/v1/emotions", 200);
        metrics.record_request("/v1/emotions", 429);
        metrics.record_request(endpoint_label("/../etc/passwd"), 404);
        metrics.record_turns(5);
        metrics.record_latency(Duration::from_millis(3));
        metrics.record_latency(Duration::from_millis(40));
        metrics.record_latency(Duration::from_secs(60));
        metrics.record_early(true);
        metrics.record_early(false);
        metrics.record_early(true);
        metrics.record_batch(1);
        metrics.record_batch(3);
        let text = metrics.render(1, 4);
        for line in [
            "mmer_requests_total{endpoint=\"/v1/emotions\",status=\"200\"} 2",
            "mmer_requests_total{endpoint=\"/v1/emotions\",status=\"429\"} 1",
            "mmer_requests_total{endpoint=\"other\",status=\"404\"} 1",
            "mmer_turns_predicted_total 5",
            "mmer_request_duration_seconds_bucket{le=\"0.005\"} 1",
            "mmer_request_duration_seconds_bucket{le=\"0.025\"} 1",
            "mmer_request_duration_seconds_bucket{le=\"0.05\"} 2",
            "mmer_request_duration_seconds_bucket{le=\"30\"} 2",
            "mmer_request_duration_seconds_bucket{le=\"+Inf\"} 3",
            "mmer_request_duration_seconds_count 3",
            "mmer_stream_early_analyses_total{outcome=\"used\"} 2",
            "mmer_stream_early_analyses_total{outcome=\"dropped\"} 1",
            "mmer_batches_total 2",
            "mmer_batched_requests_total 4",
            "mmer_queue_requests 1",
            "mmer_queue_capacity 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        // Every sample line is `name{labels} value` with a numeric value,
        // and every metric has its HELP and TYPE.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        assert_eq!(text.matches("# TYPE").count(), 9);
        assert_eq!(text.matches("# HELP").count(), 9);
    }
}
