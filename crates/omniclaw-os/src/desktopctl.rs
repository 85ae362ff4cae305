//! The desktop app's control socket: how other processes (the CLI, and
//! through it the rescue bot) start, stop or restart a gateway the app runs
//! in-process.
//!
//! The app listens on `~/.omniclaw/desktop.sock` (a Unix socket, mode 0600
//! inside the 0700 OmniClaw dir) while it runs and removes it on quit. A
//! socket file nobody answers on is what a killed app left behind: the next
//! app replaces it; one somebody answers on is never taken over. The
//! protocol is one JSON request line, `{"op":"stop","profile":"main"}` (`op`
//! is `start`, `stop`, `restart` or `status`), answered by one JSON reply
//! line, `{"ok":true,"message":"…","state":"running"}`. The app carries a
//! request out exactly as a click on its tray menu, so its state, menu and
//! notifications stay in step.
//!
//! This module only moves bytes and checks their shape; what a request
//! does is the app's business. On platforms without Unix sockets every call
//! fails with [`CtlError::Unsupported`], which says what to do instead.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

/// The socket's file name in `~/.omniclaw`.
pub const FILE: &str = "desktop.sock";

/// How long a client waits for the app's answer: a restart may let a
/// gateway finish its requests and its rescue bot the update in hand.
pub const REPLY_WAIT: Duration = Duration::from_secs(30);

/// `<home>/.omniclaw/desktop.sock`, `home` being the OmniClaw home
/// (`OMNICLAW_HOME`, else `HOME`), as the CLI and the app both resolve it.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join(".omniclaw").join(FILE)
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Stop,
    Restart,
    Status,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Restart => "restart",
            Op::Status => "status",
        }
    }

    pub fn parse(s: &str) -> Option<Op> {
        match s {
            "start" => Some(Op::Start),
            "stop" => Some(Op::Stop),
            "restart" => Some(Op::Restart),
            "status" => Some(Op::Status),
            _ => None,
        }
    }
}

/// One request: an operation on one profile's gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub profile: String,
}

impl Request {
    pub fn new(op: Op, profile: &str) -> Request {
        Request {
            op,
            profile: profile.to_string(),
        }
    }

    /// The request as one line, newline included.
    pub fn to_line(&self) -> String {
        format!(
            "{}\n",
            json!({"op": self.op.as_str(), "profile": self.profile})
        )
    }

    /// Reads a request line; `Err` says what is wrong with it.
    pub fn parse(line: &str) -> Result<Request, String> {
        let v: Value = serde_json::from_str(line.trim())
            .map_err(|e| format!("a request is one JSON object per line: {e}"))?;
        let op = v
            .get("op")
            .and_then(Value::as_str)
            .ok_or("the request has no \"op\" string")?;
        let op = Op::parse(op)
            .ok_or_else(|| format!("unknown op {op:?}: expected start, stop, restart or status"))?;
        let profile = v
            .get("profile")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .ok_or("the request has no \"profile\" string")?;
        Ok(Request::new(op, profile))
    }
}

/// The app's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    /// What happened, or why not and what to do.
    pub message: String,
    /// The gateway's state afterwards (`stopped`, `starting`, `running`,
    /// `failed: …`) when the app knows the profile.
    pub state: Option<String>,
}

impl Reply {
    pub fn ok(message: impl Into<String>, state: Option<String>) -> Reply {
        Reply {
            ok: true,
            message: message.into(),
            state,
        }
    }

    pub fn refused(message: impl Into<String>, state: Option<String>) -> Reply {
        Reply {
            ok: false,
            message: message.into(),
            state,
        }
    }

    /// The reply as one line, newline included.
    pub fn to_line(&self) -> String {
        format!(
            "{}\n",
            json!({"ok": self.ok, "message": self.message, "state": self.state})
        )
    }

    pub fn parse(line: &str) -> Result<Reply, String> {
        let v: Value = serde_json::from_str(line.trim())
            .map_err(|e| format!("the reply is not JSON ({e}): {:?}", line.trim()))?;
        let ok = v
            .get("ok")
            .and_then(Value::as_bool)
            .ok_or("the reply has no \"ok\" boolean")?;
        let message = v
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let state = v.get("state").and_then(Value::as_str).map(str::to_string);
        Ok(Reply { ok, message, state })
    }
}

/// Why the app could not be reached or asked; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("the OmniClaw desktop app is not running (nothing answers on {}): start the desktop app, or run the gateway yourself with `omniclaw [--profile NAME] gateway`", path.display())]
    NotRunning { path: PathBuf },
    #[error("cannot talk to the OmniClaw desktop app over {}: {source}; quit and start the desktop app again", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("the OmniClaw desktop app answered on {} with {detail}; run the desktop app and the omniclaw CLI of the same version", path.display())]
    BadReply { path: PathBuf, detail: String },
    #[error("another OmniClaw desktop app already answers on {}: quit it first, or use that one", path.display())]
    InUse { path: PathBuf },
    #[error("the OmniClaw desktop app has no control socket on this platform ({}): use its tray menu", path.display())]
    Unsupported { path: PathBuf },
}

/// Sends `request` to the app listening on `path` and returns its reply,
/// waiting at most `wait` for it.
pub fn call(path: &Path, request: &Request, wait: Duration) -> Result<Reply, CtlError> {
    imp::call(path, request, wait)
}

/// Whether an app answers on `path`.
pub fn running(path: &Path) -> bool {
    imp::running(path)
}

#[cfg(unix)]
pub use imp::listen;

#[cfg(unix)]
mod imp {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::{UnixListener, UnixStream};

    use super::*;

    fn connect(path: &Path) -> Result<UnixStream, CtlError> {
        UnixStream::connect(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => CtlError::NotRunning {
                path: path.to_path_buf(),
            },
            _ => CtlError::Io {
                path: path.to_path_buf(),
                source,
            },
        })
    }

    pub fn call(path: &Path, request: &Request, wait: Duration) -> Result<Reply, CtlError> {
        let io_err = |source| CtlError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut stream = connect(path)?;
        stream.set_read_timeout(Some(wait)).map_err(io_err)?;
        stream.set_write_timeout(Some(wait)).map_err(io_err)?;
        stream
            .write_all(request.to_line().as_bytes())
            .map_err(io_err)?;
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .map_err(io_err)?;
        if line.trim().is_empty() {
            return Err(CtlError::BadReply {
                path: path.to_path_buf(),
                detail: "no reply at all".to_string(),
            });
        }
        Reply::parse(&line).map_err(|detail| CtlError::BadReply {
            path: path.to_path_buf(),
            detail,
        })
    }

    pub fn running(path: &Path) -> bool {
        UnixStream::connect(path).is_ok()
    }

    /// Binds the app's socket at `path` (its directory created 0700, the
    /// socket 0600). A socket file nobody answers on is replaced; one an
    /// app answers on is refused with [`CtlError::InUse`].
    pub fn listen(path: &Path) -> Result<UnixListener, CtlError> {
        let io_err = |source| CtlError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            crate::fsx::create_private_dir(dir).map_err(io_err)?;
        }
        if std::fs::symlink_metadata(path).is_ok() {
            if running(path) {
                return Err(CtlError::InUse {
                    path: path.to_path_buf(),
                });
            }
            // Left by an app that was killed: nobody answers on it.
            std::fs::remove_file(path).map_err(io_err)?;
        }
        let listener = UnixListener::bind(path).map_err(io_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
        Ok(listener)
    }
}

#[cfg(not(unix))]
mod imp {
    use super::*;

    pub fn call(path: &Path, _request: &Request, _wait: Duration) -> Result<Reply, CtlError> {
        Err(CtlError::Unsupported {
            path: path.to_path_buf(),
        })
    }

    pub fn running(_path: &Path) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_request(line: &str, expected: Result<Request, &str>) {
        match (Request::parse(line), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{line}"),
            (Err(got), Err(want)) => assert!(got.contains(want), "{line}: {got}"),
            (got, want) => panic!("{line}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn requests_parse_and_round_trip() {
        check_request(
            r#"{"op":"stop","profile":"main"}"#,
            Ok(Request::new(Op::Stop, "main")),
        );
        check_request(
            "{\"op\":\"status\",\"profile\":\"rescue\"}\n",
            Ok(Request::new(Op::Status, "rescue")),
        );
        check_request(
            r#"{"op":"kill","profile":"main"}"#,
            Err("unknown op \"kill\""),
        );
        check_request(r#"{"op":"stop"}"#, Err("no \"profile\""));
        check_request(r#"{"op":"stop","profile":""}"#, Err("no \"profile\""));
        check_request(r#"{"profile":"main"}"#, Err("no \"op\""));
        check_request("stop main", Err("one JSON object per line"));
        for op in [Op::Start, Op::Stop, Op::Restart, Op::Status] {
            let r = Request::new(op, "main");
            let line = r.to_line();
            assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
            assert_eq!(Request::parse(&line), Ok(r));
        }
    }

    #[test]
    fn replies_round_trip() {
        for r in [
            Reply::ok("stopped", Some("stopped".into())),
            Reply::refused("main is not running\nstart it first", None),
        ] {
            let line = r.to_line();
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            assert_eq!(Reply::parse(&line), Ok(r));
        }
        assert!(Reply::parse("{}").is_err());
        assert!(Reply::parse("nope").is_err());
    }

    #[test]
    fn the_socket_lives_in_the_omniclaw_dir() {
        assert_eq!(
            socket_path(Path::new("/home/u")),
            PathBuf::from("/home/u/.omniclaw/desktop.sock")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        use std::io::{BufRead, BufReader, Write};
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().expect("tempdir");
        let path = socket_path(dir.path());
        let err = call(&path, &Request::new(Op::Status, "main"), REPLY_WAIT).expect_err("no app");
        assert!(matches!(err, CtlError::NotRunning { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );

        // A socket file left behind by a killed app.
        drop(listen(&path).expect("first bind"));
        assert!(path.exists(), "the file outlives its listener");
        assert!(!running(&path));
        let err = call(&path, &Request::new(Op::Status, "main"), REPLY_WAIT).expect_err("stale");
        assert!(matches!(err, CtlError::NotRunning { .. }), "{err}");

        let listener = listen(&path).expect("a stale socket is replaced");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = listen(&path).expect_err("a live socket is kept");
        assert!(matches!(err, CtlError::InUse { .. }), "{err}");

        let server = std::thread::spawn(move || {
            // The probe of `listen` above connected and hung up first.
            for stream in listener.incoming() {
                let stream = stream.expect("accept");
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).expect("read");
                if line.is_empty() {
                    continue;
                }
                let req = Request::parse(&line).expect("request");
                let reply = Reply::ok(
                    format!("{} {}", req.op.as_str(), req.profile),
                    Some("running".into()),
                );
                (&stream)
                    .write_all(reply.to_line().as_bytes())
                    .expect("write");
                return;
            }
        });
        let reply = call(&path, &Request::new(Op::Restart, "main"), REPLY_WAIT).expect("reply");
        assert_eq!(reply, Reply::ok("restart main", Some("running".into())));
        server.join().expect("server");
    }
}
