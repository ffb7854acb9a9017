//! Progress of long work that reaches a terminal and a log file alike.
//!
//! On a terminal, [`Progress`] draws an `indicatif` bar. When stderr is not
//! a terminal (a batch job, CI, `nohup … > log`), a bar draws nothing, so
//! it writes a `tracing` line instead at most every
//! [`Progress::log_interval`] (30 s, or `MMER_PROGRESS_SECS`) and one when
//! the work ends: a log shows that minutes of embedding are moving, how
//! fast and until when.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on a terminal, periodic log lines elsewhere.
#[derive(Debug)]
pub struct Progress {
    what: String,
    unit: &'static str,
    bar: ProgressBar,
    /// Log-line state when not drawing: start, last line, interval.
    log: Option<Mutex<LogState>>,
}

#[derive(Debug)]
struct LogState {
    started: Instant,
    last: Instant,
    interval: Duration,
}

impl Progress {
    /// Progress of `total` `unit`s (e.g. "texts", "epochs") of the work
    /// named `what`, drawn as `what [bar] done/total unit rate eta message`
    /// on a terminal; `show = false` reports nothing at all.
    pub fn new(what: impl Into<String>, unit: &'static str, total: u64, show: bool) -> Self {
        let what = what.into();
        let on_terminal = std::io::stderr().is_terminal();
        let bar = ProgressBar::new(total);
        if show && on_terminal {
            let template = format!(
                "{} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} eta {{eta}} {{msg}}",
                what.replace('{', "{{").replace('}', "}}")
            );
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let log = (show && !on_terminal).then(|| {
            let now = Instant::now();
            Mutex::new(LogState {
                started: now,
                last: now,
                interval: Self::log_interval(),
            })
        });
        Self {
            what,
            unit,
            bar,
            log,
        }
    }

    /// Seconds between log lines when not on a terminal: 30, or the value
    /// of `MMER_PROGRESS_SECS`.
    pub fn log_interval() -> Duration {
        let secs = std::env::var("MMER_PROGRESS_SECS")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(30.0);
        Duration::from_secs_f64(secs)
    }

    /// The underlying bar, e.g. for `suspend` around a log line.
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }

    /// Sets the message shown after the bar (and in log lines).
    pub fn set_message(&self, message: impl Into<std::borrow::Cow<'static, str>>) {
        self.bar.set_message(message);
    }

    /// Sets how many units are done.
    pub fn set_position(&self, done: u64) {
        self.bar.set_position(done);
        self.maybe_log(false);
    }

    /// Adds `n` units done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        self.maybe_log(false);
    }

    /// Ends the work: clears the bar, writes the last log line.
    pub fn finish(&self) {
        self.maybe_log(true);
        self.bar.finish_and_clear();
    }

    fn maybe_log(&self, last: bool) {
        let Some(log) = &self.log else { return };
        let Ok(mut state) = log.lock() else { return };
        let now = Instant::now();
        if !last && now.duration_since(state.last) < state.interval {
            return;
        }
        state.last = now;
        let done = self.bar.position();
        let total = self.bar.length().unwrap_or(0);
        let elapsed = now.duration_since(state.started).as_secs_f64();
        let rate = if elapsed > 0.0 {
            done as f64 / elapsed
        } else {
            0.0
        };
        let eta = if rate > 0.0 {
            format!("{:.0} s", total.saturating_sub(done) as f64 / rate)
        } else {
            "unknown".to_string()
        };
        let message = self.bar.message();
        tracing::info!(
            "{} {}: {done}/{total} {}, {rate:.1}/s, {elapsed:.0} s elapsed, eta {eta}{}{}",
            self.what,
            if last { "done" } else { "progress" },
            self.unit,
            if message.is_empty() { "" } else { " — " },
            message
        );
    }
}
