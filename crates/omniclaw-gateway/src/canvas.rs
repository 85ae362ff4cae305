//! The canvas host: static files from `<workspace>/canvas`.
//!
//! Every request path is decoded, split, and refused if any segment could
//! leave the root (`..`, encoded or not, backslashes, drive prefixes, NUL).
//! The file is then opened relative to a handle on the root directory
//! (`cap-std`), which resolves every component, symlinks included, beneath
//! that handle: a symlink pointing outside is refused, and so is a directory
//! swapped for one while the request runs — there is no check-then-open gap.
//! Files are streamed in chunks, never read whole into memory.

use std::io;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use cap_std::fs::Dir;
use percent_encoding::percent_decode_str;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

/// Bytes read from a file per chunk of the response body.
const CHUNK: usize = 64 * 1024;

/// Why a canvas path is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The path tries to leave the canvas root (or may not be read).
    Outside,
    /// Nothing servable there.
    Missing,
}

/// Checks the decoded request path and returns the relative parts to join.
pub fn segments(raw_path: &str) -> Result<Vec<String>, Refused> {
    let decoded = percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|_| Refused::Missing)?;
    if decoded.contains('\0') || decoded.contains('\\') {
        return Err(Refused::Outside);
    }
    let mut out = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(Refused::Outside),
            s if s.contains(':') => return Err(Refused::Outside),
            s => out.push(s.to_string()),
        }
    }
    Ok(out)
}

/// A file opened for serving, beneath the canvas root.
#[derive(Debug)]
pub struct Opened {
    pub file: std::fs::File,
    /// Its path relative to the root (`index.html` for a directory).
    pub path: PathBuf,
    pub len: u64,
}

fn refusal(e: &io::Error) -> Refused {
    // cap-std reports a path that would leave the directory (an absolute
    // or escaping symlink) as PermissionDenied; so is a file we may not read.
    if e.kind() == io::ErrorKind::PermissionDenied {
        Refused::Outside
    } else {
        Refused::Missing
    }
}

/// Opens the file to serve for `raw_path` beneath `root`; a directory
/// serves its `index.html`. Blocking: call it off the async workers.
pub fn open(root: &Path, raw_path: &str) -> Result<Opened, Refused> {
    let parts = segments(raw_path)?;
    let dir =
        Dir::open_ambient_dir(root, cap_std::ambient_authority()).map_err(|_| Refused::Missing)?;
    let mut path: PathBuf = parts.iter().collect();
    // Only a look: what is opened below is checked again on the handle.
    let is_dir = if path.as_os_str().is_empty() {
        true
    } else {
        dir.metadata(&path).map_err(|e| refusal(&e))?.is_dir()
    };
    if is_dir {
        path.push("index.html");
    }
    let file = dir.open(&path).map_err(|e| refusal(&e))?;
    let meta = file.metadata().map_err(|_| Refused::Missing)?;
    if !meta.is_file() {
        return Err(Refused::Missing);
    }
    Ok(Opened {
        file: file.into_std(),
        path,
        len: meta.len(),
    })
}

/// The `Content-Type` for a served file.
pub fn content_type(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            mime.essence_str(),
            "application/javascript" | "application/json" | "image/svg+xml"
        );
    if textual {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    }
}

pub(crate) fn router(root: PathBuf) -> Router {
    Router::new().fallback(serve).with_state(root)
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn serve(State(root): State<PathBuf>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method Not Allowed: the canvas host serves files with GET, not {method}\n"),
        );
    }
    let path = uri.path().to_string();
    let opened = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || open(&root, &path)).await
    };
    match opened {
        Ok(Ok(opened)) => {
            let ct = content_type(&opened.path);
            // `take` keeps the body at the length announced, should the
            // file grow while it is sent.
            let file = tokio::fs::File::from_std(opened.file).take(opened.len);
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, ct),
                    (header::CONTENT_LENGTH, opened.len.to_string()),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                    (header::CACHE_CONTROL, "no-cache".to_string()),
                ],
                Body::from_stream(ReaderStream::with_capacity(file, CHUNK)),
            )
                .into_response()
        }
        Ok(Err(Refused::Outside)) => text(
            StatusCode::FORBIDDEN,
            format!("Forbidden: {path} points outside the canvas root or may not be read\n"),
        ),
        Ok(Err(Refused::Missing)) => text(
            StatusCode::NOT_FOUND,
            format!("Not Found: {path} is not a file in the canvas\n"),
        ),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Internal Server Error: opening {path} failed: {e}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Result<Vec<&str>, Refused>) {
        let expected = expected.map(|v| v.into_iter().map(String::from).collect());
        assert_eq!(segments(raw), expected, "{raw}");
    }

    #[test]
    fn segment_table() {
        check("/", Ok(vec![]));
        check("/a/b.html", Ok(vec!["a", "b.html"]));
        check("/./a//b", Ok(vec!["a", "b"]));
        check("//etc/passwd", Ok(vec!["etc", "passwd"]));
        check("/../x", Err(Refused::Outside));
        check("/a/%2e%2e/%2e%2e/x", Err(Refused::Outside));
        check("/a/%2E%2E/x", Err(Refused::Outside));
        check("/a/..%2fx", Err(Refused::Outside));
        check("/a%5c..%5cx", Err(Refused::Outside));
        check("/C:/x", Err(Refused::Outside));
        check("/a%00b", Err(Refused::Outside));
        check("/%ff", Err(Refused::Missing));
    }

    #[test]
    fn content_types() {
        for (file, ct) in [
            ("a.html", "text/html; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.png", "image/png"),
            ("a.json", "application/json; charset=utf-8"),
            ("a.unknownext", "application/octet-stream"),
        ] {
            assert_eq!(content_type(Path::new(file)), ct, "{file}");
        }
    }

    #[test]
    fn open_stays_beneath_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("canvas");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("index.html"), "<h1>hi</h1>").expect("write");
        std::fs::write(root.join("sub/a.txt"), "a").expect("write");
        std::fs::write(dir.path().join("secret.txt"), "s").expect("write");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt"))
                .expect("symlink");
            std::os::unix::fs::symlink("../secret.txt", root.join("rel.txt")).expect("symlink");
            std::os::unix::fs::symlink("sub", root.join("alias")).expect("symlink");
        }
        let got = |p: &str| open(&root, p).map(|o| (o.path, o.len));
        assert_eq!(got("/"), Ok((PathBuf::from("index.html"), 11)));
        assert_eq!(got("/sub/a.txt"), Ok((PathBuf::from("sub/a.txt"), 1)));
        assert_eq!(got("/sub").map(|_| ()), Err(Refused::Missing));
        assert_eq!(got("/nope").map(|_| ()), Err(Refused::Missing));
        assert_eq!(got("/../secret.txt").map(|_| ()), Err(Refused::Outside));
        #[cfg(unix)]
        {
            assert_eq!(got("/link.txt").map(|_| ()), Err(Refused::Outside));
            assert_eq!(got("/rel.txt").map(|_| ()), Err(Refused::Outside));
            // A link that stays inside the root is followed.
            assert_eq!(got("/alias/a.txt"), Ok((PathBuf::from("alias/a.txt"), 1)));
        }
        assert_eq!(
            open(&dir.path().join("absent"), "/").map(|_| ()),
            Err(Refused::Missing)
        );
    }
}
