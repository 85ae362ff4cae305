//! The headless fallback: `<state dir>/secrets.json`, a JSON object from
//! dotted secret path to value, mode 0600. A file whose permissions are
//! wider is refused (read and write), never silently tightened: someone
//! else may already have read it, and the user should know.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use super::{check_value, Scope, SecretError, SecretName, SecretStore, StoreMode};

/// The file's name inside the state dir.
pub const FILE_NAME: &str = "secrets.json";

/// Secrets in a 0600 file of each profile's state dir.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileStore;

type Entries = BTreeMap<String, String>;

fn read(path: &Path) -> Result<Entries, SecretError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Entries::new()),
        Err(source) => {
            return Err(SecretError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    check_mode(path, &meta)?;
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(Entries::new());
    }
    // serde_json's messages name line and column, never the content.
    serde_json::from_str::<Entries>(&text).map_err(|e| SecretError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("line {} column {}", e.line(), e.column()),
    })
}

#[cfg(unix)]
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), SecretError> {
    // The state dir's ACL (private to the user) protects the file on Windows.
    Ok(())
}

/// Temp file created 0600 from the start, fsynced, renamed over the file;
/// no `.bak` (a second copy of secrets helps nobody).
fn write(path: &Path, entries: &Entries) -> Result<(), SecretError> {
    let err = |source| SecretError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        let text = serde_json::to_string_pretty(entries).map_err(io::Error::other)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

impl SecretStore for FileStore {
    fn get(&self, scope: &Scope, name: SecretName) -> Result<Option<String>, SecretError> {
        Ok(read(&scope.secrets_file())?.remove(name.path()))
    }

    fn set(&self, scope: &Scope, name: SecretName, value: &str) -> Result<(), SecretError> {
        check_value(name, value)?;
        let path = scope.secrets_file();
        let mut entries = read(&path)?;
        entries.insert(name.path().to_string(), value.to_string());
        write(&path, &entries)
    }

    fn remove(&self, scope: &Scope, name: SecretName) -> Result<bool, SecretError> {
        let path = scope.secrets_file();
        let mut entries = read(&path)?;
        let had = entries.remove(name.path()).is_some();
        if had {
            write(&path, &entries)?;
        }
        Ok(had)
    }

    fn mode(&self, scope: &Scope) -> StoreMode {
        StoreMode::File(scope.secrets_file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let scope = Scope::new("main", dir.path());
        let n = SecretName::TelegramBotToken;
        assert_eq!(FileStore.get(&scope, n).expect("get"), None);
        FileStore.set(&scope, n, "123:abc").expect("set");
        assert_eq!(
            FileStore.get(&scope, n).expect("get"),
            Some("123:abc".into())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(scope.secrets_file())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(FileStore.remove(&scope, n).expect("rm"));
        assert_eq!(FileStore.get(&scope, n).expect("get"), None);
    }

    #[cfg(unix)]
    #[test]
    fn wider_permissions_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let scope = Scope::new("main", dir.path());
        FileStore
            .set(&scope, SecretName::GatewayAuthToken, "t")
            .expect("set");
        let path = scope.secrets_file();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let before = std::fs::read(&path).expect("read");
        let err = FileStore
            .get(&scope, SecretName::GatewayAuthToken)
            .expect_err("too open");
        assert!(
            err.to_string().contains("mode 644") && err.to_string().contains("chmod 600"),
            "{err}"
        );
        assert!(FileStore
            .set(&scope, SecretName::GatewayAuthToken, "u")
            .is_err());
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn corrupt_file_names_position_not_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let scope = Scope::new("main", dir.path());
        let path = scope.secrets_file();
        std::fs::write(&path, "{\"gateway.auth.token\": hunter2}").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let err = FileStore
            .get(&scope, SecretName::GatewayAuthToken)
            .expect_err("corrupt")
            .to_string();
        assert!(err.contains("line 1") && !err.contains("hunter2"), "{err}");
    }
}
