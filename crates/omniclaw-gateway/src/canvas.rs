//! The canvas host: static files from `<workspace>/canvas`.
//!
//! Every request path is decoded, split, and refused if any segment could
//! leave the root (`..`, encoded or not, backslashes, drive prefixes, NUL);
//! the resolved file is then canonicalized and must still lie inside the
//! canonical root, which also stops symlinks pointing outside.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use percent_encoding::percent_decode_str;

/// Why a canvas path is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The path tries to leave the canvas root.
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

/// The file to serve for `raw_path` below `root`, after following symlinks.
pub async fn resolve(root: &Path, raw_path: &str) -> Result<PathBuf, Refused> {
    let parts = segments(raw_path)?;
    let root = tokio::fs::canonicalize(root)
        .await
        .map_err(|_| Refused::Missing)?;
    let mut path = root.clone();
    path.extend(&parts);
    let mut real = tokio::fs::canonicalize(&path)
        .await
        .map_err(|_| Refused::Missing)?;
    if !real.starts_with(&root) {
        return Err(Refused::Outside);
    }
    if tokio::fs::metadata(&real)
        .await
        .map_err(|_| Refused::Missing)?
        .is_dir()
    {
        real = tokio::fs::canonicalize(real.join("index.html"))
            .await
            .map_err(|_| Refused::Missing)?;
        if !real.starts_with(&root) {
            return Err(Refused::Outside);
        }
    }
    let meta = tokio::fs::metadata(&real)
        .await
        .map_err(|_| Refused::Missing)?;
    if meta.is_file() {
        Ok(real)
    } else {
        Err(Refused::Missing)
    }
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
    let path = uri.path();
    match resolve(&root, path).await {
        Ok(file) => match tokio::fs::read(&file).await {
            Ok(bytes) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type(&file)),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                    (header::CACHE_CONTROL, "no-cache".to_string()),
                ],
                Body::from(bytes),
            )
                .into_response(),
            Err(_) => text(
                StatusCode::NOT_FOUND,
                format!("Not Found: {path} is not a readable file in the canvas\n"),
            ),
        },
        Err(Refused::Outside) => text(
            StatusCode::FORBIDDEN,
            format!("Forbidden: {path} points outside the canvas root\n"),
        ),
        Err(Refused::Missing) => text(
            StatusCode::NOT_FOUND,
            format!("Not Found: {path} is not a file in the canvas\n"),
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

    #[tokio::test]
    async fn resolve_stays_inside_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("canvas");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("index.html"), "<h1>hi</h1>").expect("write");
        std::fs::write(root.join("sub/a.txt"), "a").expect("write");
        std::fs::write(dir.path().join("secret.txt"), "s").expect("write");
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt"))
            .expect("symlink");
        let root = root.as_path();
        let ok = |p: &'static str| resolve(root, p);
        assert!(ok("/").await.expect("index").ends_with("index.html"));
        assert!(ok("/sub/a.txt").await.expect("file").ends_with("a.txt"));
        assert_eq!(ok("/sub").await, Err(Refused::Missing));
        assert_eq!(ok("/nope").await, Err(Refused::Missing));
        assert_eq!(ok("/../secret.txt").await, Err(Refused::Outside));
        #[cfg(unix)]
        assert_eq!(ok("/link.txt").await, Err(Refused::Outside));
    }
}
