//! Per-profile rolling log files and the reader behind `logs` and
//! `logs.tail`.
//!
//! A gateway logs structured JSON lines (tracing + tracing-appender) into
//! `<state dir>/logs/gateway.YYYY-MM-DD.log`, one file a day, the newest 7
//! kept. Every byte passes a [`Redactor`] first: the secret values the
//! gateway runs with are replaced by `<redacted>` before they reach the
//! disk, whatever code logged them. The level can change while running
//! (`logging.level` is a hot setting).
//!
//! The reader side ([`tail`], [`Follower`]) works on the files alone, so it
//! serves a gateway that runs in the CLI, in a service or in the tray alike.
//! This module must never write a secret, and never print: callers do.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{reload, Registry};

/// Log file names: `gateway.2026-01-31.log`.
pub const PREFIX: &str = "gateway";
pub const SUFFIX: &str = "log";
/// Daily files kept.
pub const KEEP: usize = 7;
/// What replaces a secret in a log line.
pub const REDACTED: &str = "<redacted>";
/// Secrets shorter than this are not searched for: replacing every `a`
/// would make logs unreadable, and such a secret protects nothing anyway.
const MIN_SECRET_LEN: usize = 4;

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot create the log dir {path}: {source}; check the permissions of the state dir", path = path.display())]
    Dir { path: PathBuf, source: io::Error },
    #[error("cannot open a log file in {path}: {detail}", path = path.display())]
    Appender { path: PathBuf, detail: String },
}

/// The secret values to keep out of log lines; shared with the gateway,
/// which updates it when a reload changes a secret.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl Redactor {
    /// Replaces the set of secrets (longest first, so a secret containing
    /// another is replaced whole).
    pub fn set(&self, secrets: impl IntoIterator<Item = String>) {
        let mut list: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
        list.dedup();
        *self
            .secrets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = list;
    }

    /// `text` with every known secret replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let secrets = self
            .secrets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = text.to_string();
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }
}

/// A writer that redacts each formatted event before passing it on.
pub struct RedactingWriter<W: Write> {
    inner: W,
    redactor: Redactor,
    buf: Vec<u8>,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return self.inner.flush();
        }
        let text = String::from_utf8_lossy(&self.buf);
        let clean = self.redactor.redact(&text);
        self.buf.clear();
        self.inner.write_all(clean.as_bytes())?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        // One event is formatted into one writer; it is written out whole here.
        let _ = self.flush();
    }
}

/// [`MakeWriter`] wrapping another with a [`Redactor`].
pub struct Redacting<M> {
    inner: M,
    redactor: Redactor,
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.inner.make_writer(),
            redactor: self.redactor.clone(),
            buf: Vec::with_capacity(256),
        }
    }
}

/// A running file logger: its dispatch (install it globally or per task),
/// the redactor and a handle to change the level.
pub struct Logger {
    pub dispatch: tracing::Dispatch,
    pub redactor: Redactor,
    level: reload::Handle<LevelFilter, Registry>,
}

impl Logger {
    /// Changes the level (`trace` … `error`) of every later event.
    pub fn set_level(&self, level: &str) {
        let filter = parse_level(level);
        let _ = self.level.modify(|f| *f = filter);
    }
}

/// `logging.level` to a filter; unknown names mean `info` (the config
/// validator already refused them).
pub fn parse_level(level: &str) -> LevelFilter {
    match level {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "warn" => LevelFilter::WARN,
        "error" => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    }
}

/// Starts JSON-lines logging into `dir` (created 0700), rotating daily and
/// keeping [`KEEP`] files. `profile` is added to every line.
pub fn file_logger(dir: &Path, level: &str) -> Result<Logger, LogError> {
    logger(dir, level, false)
}

/// Like [`file_logger`], and warnings and errors also go to stderr (one
/// redacted line each), so a gateway run in a terminal shows a refused edit
/// or a failed restart where its operator is looking.
pub fn terminal_logger(dir: &Path, level: &str) -> Result<Logger, LogError> {
    logger(dir, level, true)
}

fn logger(dir: &Path, level: &str, echo_warnings: bool) -> Result<Logger, LogError> {
    crate::fsx::create_private_dir(dir).map_err(|source| LogError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let appender = tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(PREFIX)
        .filename_suffix(SUFFIX)
        .max_log_files(KEEP)
        .build(dir)
        .map_err(|e| LogError::Appender {
            path: dir.to_path_buf(),
            detail: e.to_string(),
        })?;
    let redactor = Redactor::default();
    let writer = Redacting {
        inner: appender,
        redactor: redactor.clone(),
    };
    let (filter, handle) = reload::Layer::new(parse_level(level));
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_ansi(false)
        .with_writer(writer);
    let stderr = echo_warnings.then(|| {
        tracing_subscriber::fmt::layer()
            .compact()
            .without_time()
            .with_target(false)
            .with_ansi(false)
            .with_writer(
                Redacting {
                    inner: std::io::stderr,
                    redactor: redactor.clone(),
                }
                .with_max_level(tracing::Level::WARN),
            )
    });
    let subscriber = Registry::default().with(filter).with(fmt).with(stderr);
    Ok(Logger {
        dispatch: tracing::Dispatch::new(subscriber),
        redactor,
        level: handle,
    })
}

/// The log files in `dir`, oldest first (the date in the name sorts them).
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(&format!("{PREFIX}.")) && n.ends_with(&format!(".{SUFFIX}"))
                })
        })
        .collect();
    out.sort();
    out
}

/// The last `n` lines across the files of `dir` (older files fill in when
/// the newest one is short).
pub fn tail(dir: &Path, n: usize) -> io::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for file in files(dir).iter().rev() {
        if out.len() >= n {
            break;
        }
        let text = std::fs::read_to_string(file)?;
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let need = n - out.len();
        if lines.len() > need {
            lines.drain(..lines.len() - need);
        }
        lines.append(&mut out);
        out = lines;
    }
    Ok(out)
}

/// Follows the newest log file of a dir: each [`Follower::poll`] returns the
/// complete lines written since the last one, moving on to the next file
/// when the day rolls over.
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    file: Option<PathBuf>,
    offset: u64,
    partial: String,
}

impl Follower {
    /// Starts at the current end of the newest file.
    pub fn from_end(dir: &Path) -> Follower {
        let file = files(dir).pop();
        let offset = file
            .as_deref()
            .and_then(|f| std::fs::metadata(f).ok())
            .map_or(0, |m| m.len());
        Follower {
            dir: dir.to_path_buf(),
            file,
            offset,
            partial: String::new(),
        }
    }

    pub fn poll(&mut self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let newest = files(&self.dir).pop();
        if let Some(current) = self.file.clone() {
            self.read_from(&current, &mut out)?;
        }
        if newest.is_some() && newest != self.file {
            self.file = newest;
            self.offset = 0;
            self.partial.clear();
            if let Some(current) = self.file.clone() {
                self.read_from(&current, &mut out)?;
            }
        }
        Ok(out)
    }

    fn read_from(&mut self, path: &Path, out: &mut Vec<String>) -> io::Result<()> {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let size = f.metadata()?.len();
        if size < self.offset {
            // Truncated or replaced: start over.
            self.offset = 0;
            self.partial.clear();
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.take(size - self.offset).read_to_end(&mut buf)?;
        self.offset = size;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            out.push(line.trim_end_matches(['\n', '\r']).to_string());
        }
        Ok(())
    }
}

/// One JSON log line as a person reads it:
/// `2026-01-31T10:00:00Z INFO message key=value`. Lines that are not JSON
/// are shown as they are.
pub fn render(line: &str) -> String {
    let Ok(serde_json::Value::Object(mut m)) = serde_json::from_str::<serde_json::Value>(line)
    else {
        return line.to_string();
    };
    let take = |m: &mut serde_json::Map<String, serde_json::Value>, k: &str| {
        m.remove(k).map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        })
    };
    let ts = take(&mut m, "timestamp").unwrap_or_default();
    let level = take(&mut m, "level").unwrap_or_default();
    let msg = take(&mut m, "message").unwrap_or_default();
    m.remove("target");
    let mut s = format!("{ts} {level:>5} {msg}");
    for (k, v) in m {
        let v = match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        s.push_str(&format!(" {k}={v}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(secrets: &[&str], input: &str, expected: &str) {
        let r = Redactor::default();
        r.set(secrets.iter().map(|s| s.to_string()));
        assert_eq!(r.redact(input), expected);
    }

    #[test]
    fn redaction() {
        check(
            &["s3cret-token"],
            "auth s3cret-token ok",
            "auth <redacted> ok",
        );
        check(
            &["abcd", "abcdef"],
            "x abcdef y abcd",
            "x <redacted> y <redacted>",
        );
        check(
            &["ab"],
            "ab stays: too short to matter",
            "ab stays: too short to matter",
        );
        check(&[], "nothing", "nothing");
    }

    fn check_render(line: &str, expected: &str) {
        assert_eq!(render(line), expected);
    }

    #[test]
    fn rendering() {
        check_render(
            r#"{"timestamp":"2026-01-31T10:00:00Z","level":"INFO","message":"config reloaded","target":"x","port":18789}"#,
            "2026-01-31T10:00:00Z  INFO config reloaded port=18789",
        );
        check_render("plain text", "plain text");
    }

    #[test]
    fn logger_writes_redacted_json_lines_and_tail_reads_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("logs");
        let logger = file_logger(&logs, "info").expect("logger");
        logger.redactor.set(["hunter2-secret".to_string()]);
        tracing::dispatcher::with_default(&logger.dispatch, || {
            tracing::info!(profile = "main", "token is hunter2-secret");
            tracing::debug!("hidden at info");
        });
        logger.set_level("debug");
        tracing::dispatcher::with_default(&logger.dispatch, || {
            tracing::debug!("shown at debug");
        });
        let lines = tail(&logs, 10).expect("tail");
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("token is <redacted>") && lines[0].contains("\"profile\":\"main\"")
        );
        assert!(lines[1].contains("shown at debug"));
        assert!(!lines.concat().contains("hunter2"));
        assert_eq!(tail(&logs, 1).expect("tail").len(), 1);
        assert_eq!(files(&logs).len(), 1);
    }

    #[test]
    fn follower_sees_appends_and_new_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("gateway.2026-01-01.log");
        std::fs::write(&a, "old\n").expect("write");
        let mut f = Follower::from_end(dir.path());
        assert_eq!(f.poll().expect("poll"), Vec::<String>::new());
        let mut h = std::fs::OpenOptions::new()
            .append(true)
            .open(&a)
            .expect("open");
        h.write_all(b"one\ntw").expect("append");
        assert_eq!(f.poll().expect("poll"), vec!["one"]);
        h.write_all(b"o\n").expect("append");
        assert_eq!(f.poll().expect("poll"), vec!["two"]);
        std::fs::write(dir.path().join("gateway.2026-01-02.log"), "next day\n").expect("write");
        assert_eq!(f.poll().expect("poll"), vec!["next day"]);
    }
}
