//! Locating and running the `ffmpeg` / `ffprobe` programs.
//!
//! Why subprocesses and not libav bindings: the Debian `ffmpeg` package reads
//! every container and codec users bring (FLV/VP6/MP3 in CREMA-D, phone MP4s,
//! MKV), needs no C toolchain or headers at build time, and a crash on a
//! hostile file kills a child process, not the extraction batch.
//!
//! Paths are passed as `OsStr` arguments with a `file:` prefix, so names that
//! are not UTF-8, start with `-`, or contain `:` reach ffmpeg unchanged and
//! are never read as options or protocols.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Lines of ffmpeg's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 6;

/// Where the two programs are. Cheap to clone; holds no process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ffmpeg {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
}

impl Default for Ffmpeg {
    fn default() -> Self {
        Self::from_env()
    }
}

impl Ffmpeg {
    /// Explicit program paths (or bare names looked up on `PATH`).
    pub fn new(ffmpeg: impl Into<PathBuf>, ffprobe: impl Into<PathBuf>) -> Self {
        Self {
            ffmpeg: ffmpeg.into(),
            ffprobe: ffprobe.into(),
        }
    }

    /// `$MMER_FFMPEG` / `$MMER_FFPROBE` when set, else `ffmpeg` / `ffprobe`
    /// on `PATH` (what `scripts/setup.sh` installs).
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        Self::new(var("MMER_FFMPEG", "ffmpeg"), var("MMER_FFPROBE", "ffprobe"))
    }

    /// The first line of `ffmpeg -version` (e.g. `ffmpeg version 5.1.9-0+deb12u1 ...`).
    ///
    /// # Errors
    /// [`Error::FfmpegNotFound`], [`Error::Spawn`].
    pub fn version(&self) -> Result<String> {
        let out = Command::new(&self.ffmpeg)
            .arg("-version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| spawn_error(Program::Ffmpeg, &self.ffmpeg, Path::new("-version"), e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.lines().next().unwrap_or_default().to_string())
    }

    /// Whether both programs can be started.
    pub fn is_available(&self) -> bool {
        let runs = |p: &Path| {
            Command::new(p)
                .arg("-version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        runs(&self.ffmpeg) && runs(&self.ffprobe)
    }

    pub(crate) fn command(&self, program: Program) -> Command {
        let exe = match program {
            Program::Ffmpeg => &self.ffmpeg,
            Program::Ffprobe => &self.ffprobe,
        };
        let mut cmd = Command::new(exe);
        cmd.stdin(Stdio::null());
        cmd
    }

    pub(crate) fn exe(&self, program: Program) -> &Path {
        match program {
            Program::Ffmpeg => &self.ffmpeg,
            Program::Ffprobe => &self.ffprobe,
        }
    }
}

/// Which of the two programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Program {
    Ffmpeg,
    Ffprobe,
}

impl Program {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Program::Ffmpeg => "ffmpeg",
            Program::Ffprobe => "ffprobe",
        }
    }
}

/// `file:<path>` as an OS string: ffmpeg's explicit file protocol, so the
/// path is never taken for an option (`-x.mp4`) or a protocol (`a:b.mp4`).
pub(crate) fn input_arg(path: &Path) -> OsString {
    let mut arg = OsString::from("file:");
    arg.push(path.as_os_str());
    arg
}

pub(crate) fn spawn_error(
    program: Program,
    exe: &Path,
    path: &Path,
    source: std::io::Error,
) -> Error {
    if source.kind() == std::io::ErrorKind::NotFound {
        Error::FfmpegNotFound {
            program: program.name(),
            tried: exe.display().to_string(),
        }
    } else {
        Error::Spawn {
            program: program.name(),
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Checks that `path` exists and is not empty before any program runs, so
/// the two commonest bad inputs get a precise message.
pub(crate) fn check_file(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "is a directory"),
        });
    }
    if meta.len() == 0 {
        return Err(Error::ZeroLength {
            path: path.to_path_buf(),
        });
    }
    Ok(meta.len())
}

/// What a finished run left on stderr.
#[derive(Debug, Default)]
pub(crate) struct StderrLog {
    /// Last lines that are not `showinfo` reports.
    pub tail: VecDeque<String>,
    /// `pts_time` of every frame `showinfo` reported, in order.
    pub pts_times: Vec<f64>,
    /// `(pts_time, lavfi.scene_score)` of every frame a `metadata=print`
    /// filter reported, in order.
    pub scene_scores: Vec<(f64, f64)>,
    /// Whether ffprobe warned that it estimated the duration from the
    /// bitrate (an MP3 without a Xing/VBRI header, ...): such a duration
    /// can be off by a factor of two.
    pub duration_estimated: bool,
    /// Time of the last `metadata=print` frame line, waiting for its score.
    pending_time: Option<f64>,
}

/// The number after `key` in an ffmpeg log line (`pts_time:1.52`).
fn number_after(line: &str, key: &str) -> Option<f64> {
    line.split(key)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
}

impl StderrLog {
    fn push(&mut self, line: &str) {
        let line = line.trim_end();
        if line.is_empty() {
            return;
        }
        if line.contains("Estimating duration from bitrate") {
            self.duration_estimated = true;
        }
        if line.contains("Parsed_showinfo") {
            if line.contains(" n:")
                && let Some(t) = number_after(line, "pts_time:")
            {
                self.pts_times.push(t);
            }
            return;
        }
        if line.contains("Parsed_metadata") {
            if let Some(score) = number_after(line, "lavfi.scene_score=") {
                if let Some(t) = self.pending_time.take() {
                    self.scene_scores.push((t, score));
                }
            } else if line.contains("frame:") {
                self.pending_time = number_after(line, "pts_time:");
            }
            return;
        }
        if self.tail.len() == STDERR_TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
    }

    pub(crate) fn tail_text(&self) -> String {
        self.tail.iter().cloned().collect::<Vec<_>>().join(" | ")
    }
}

/// Runs `program args...` on `path`, hands its stdout to `consume`, and
/// collects stderr on a second thread (so a chatty stderr can never block
/// the pipe we read). A non-zero exit is [`Error::Corrupt`] with the tail
/// of stderr.
pub(crate) fn run<T>(
    ffmpeg: &Ffmpeg,
    program: Program,
    path: &Path,
    args: &[&OsStr],
    consume: impl FnOnce(&mut dyn Read) -> std::io::Result<T>,
) -> Result<(T, StderrLog)> {
    let exe = ffmpeg.exe(program);
    let mut child = ffmpeg
        .command(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(program, exe, path, e))?;
    let stderr = child.stderr.take();
    let stderr_thread = std::thread::spawn(move || {
        let mut log = StderrLog::default();
        if let Some(stderr) = stderr {
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            // ffmpeg ends progress lines with '\r'; split on '\n' and keep the rest.
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                for piece in String::from_utf8_lossy(&buf).split('\r') {
                    log.push(piece);
                }
                buf.clear();
            }
        }
        log
    });
    let consumed = match child.stdout.take() {
        Some(mut stdout) => consume(&mut stdout),
        None => Err(std::io::Error::other("no stdout pipe")),
    };
    if consumed.is_err() {
        // We stopped reading: make sure the child does not block on a full pipe.
        let _ = child.kill();
    }
    let status = child.wait().map_err(|source| Error::Spawn {
        program: program.name(),
        path: path.to_path_buf(),
        source,
    })?;
    let log = stderr_thread.join().unwrap_or_default();
    let value = consumed.map_err(|source| Error::Spawn {
        program: program.name(),
        path: path.to_path_buf(),
        source,
    })?;
    if !status.success() {
        let tail = log.tail_text();
        return Err(Error::Corrupt {
            program: program.name(),
            path: path.to_path_buf(),
            stderr: if tail.is_empty() {
                format!("exit status {status}")
            } else {
                tail
            },
        });
    }
    Ok((value, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showinfo_lines_give_times_and_stay_out_of_the_tail() {
        let mut log = StderrLog::default();
        log.push("[Parsed_showinfo_1 @ 0x5] n:   7 pts:   1895 pts_time:1.895   pos: 1");
        log.push("[Parsed_showinfo_1 @ 0x5] color_range:unknown");
        log.push("Error while decoding stream #0:0");
        assert_eq!(log.pts_times, vec![1.895]);
        log.push("[Parsed_metadata_1 @ 0x5] frame:0    pts:19456   pts_time:1.52");
        log.push("[Parsed_metadata_1 @ 0x5] lavfi.scene_score=0.682453");
        assert_eq!(log.scene_scores, vec![(1.52, 0.682453)]);
        assert_eq!(log.tail_text(), "Error while decoding stream #0:0");
        assert!(!log.duration_estimated);
        log.push("[mp3 @ 0x5] Estimating duration from bitrate, this may be inaccurate");
        assert!(log.duration_estimated);
    }

    #[test]
    fn input_arg_keeps_non_utf8_bytes() {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = Path::new(OsStr::from_bytes(b"/tmp/clip_\xff.mp4"));
            assert_eq!(input_arg(p).as_bytes(), b"file:/tmp/clip_\xff.mp4");
        }
    }

    #[test]
    fn missing_program_names_the_setup_script() {
        let ff = Ffmpeg::new("/nonexistent/ffmpeg-xyz", "/nonexistent/ffprobe-xyz");
        let err = ff.version().unwrap_err();
        assert!(matches!(err, Error::FfmpegNotFound { .. }), "{err}");
        assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
        assert!(!ff.is_available());
    }
}
