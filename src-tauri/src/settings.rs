//! The app's own settings: which gateways start with the app.
//!
//! Kept in `~/.omniclaw/desktop.json` (`{"startWithApp": ["main"]}`), written
//! atomically under the file's lock. A missing file means defaults; a broken one is reported and
//! never overwritten behind the user's back. Whether the app starts at login
//! is not stored here: the autostart entry itself is the truth.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use omniclaw_os::fsx;
use serde::{Deserialize, Serialize};

/// File name of the settings, in the default state dir.
pub const FILE: &str = "desktop.json";

/// What the user chose.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Profiles whose gateway the app starts when it starts.
    #[serde(default)]
    pub start_with_app: BTreeSet<String>,
}

/// Why the settings could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the desktop settings {}: {source}; check its permissions", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("the desktop settings {} are not valid: {source}; fix the file or delete it to start from defaults", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write the desktop settings {}: {source}; check that the folder is writable", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// `~/.omniclaw/desktop.json` under `home`.
pub fn path(home: &Path) -> PathBuf {
    home.join(".omniclaw").join(FILE)
}

/// Reads the settings; a missing file gives the defaults.
pub fn load(path: &Path) -> Result<Settings, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Settings::default()),
        Err(source) => {
            return Err(SettingsError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_str(&text).map_err(|source| SettingsError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Changes the settings as they are on disk now (re-read under the file's
/// lock, so a concurrent writer's change is kept), then writes them
/// atomically, creating the folder (private) when needed. A broken file is
/// refused, never overwritten. Returns the settings written.
pub fn update(path: &Path, change: impl FnOnce(&mut Settings)) -> Result<Settings, SettingsError> {
    let write_error = |source| SettingsError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fsx::create_private_dir(dir).map_err(write_error)?;
    }
    fsx::update(path, fsx::Options::default(), |_| {
        let mut settings = load(path)?;
        change(&mut settings);
        let mut text = serde_json::to_string_pretty(&settings)
            .map_err(|e| write_error(io::Error::other(e)))?;
        text.push('\n');
        Ok((Some(text.into_bytes()), settings))
    })
    .map_err(|e| match e {
        fsx::UpdateError::Refused(e) => e,
        fsx::UpdateError::Io { source, .. } => write_error(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<&[&str], &str>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join(FILE);
        std::fs::write(&file, text).expect("write");
        let got = load(&file)
            .map(|s| s.start_with_app.into_iter().collect::<Vec<_>>())
            .map_err(|e| e.to_string());
        match expected {
            Ok(names) => assert_eq!(
                got.ok().as_deref(),
                Some(
                    names
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .as_slice()
                ),
                "{text:?}"
            ),
            Err(fragment) => {
                let message = got.expect_err("should be refused");
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
                assert!(
                    message.contains(&file.display().to_string()),
                    "{message:?} names the file"
                );
            }
        }
    }

    #[test]
    fn reads_what_it_should_and_names_the_file_otherwise() {
        check(
            r#"{"startWithApp": ["rescue", "main"]}"#,
            Ok(&["main", "rescue"]),
        );
        check("{}", Ok(&[]));
        check(r#"{"startWithApp": "main"}"#, Err("are not valid"));
        check(r#"{"startAtLogin": true}"#, Err("unknown field"));
        check("not json", Err("delete it to start from defaults"));
    }

    #[test]
    fn missing_file_is_defaults_and_update_round_trips() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join(".omniclaw").join(FILE);
        assert_eq!(load(&file).expect("defaults"), Settings::default());
        let written = update(&file, |s| {
            s.start_with_app.insert("main".to_string());
        })
        .expect("update");
        assert_eq!(load(&file).expect("load"), written);
        let text = std::fs::read_to_string(&file).expect("read");
        assert_eq!(text, "{\n  \"startWithApp\": [\n    \"main\"\n  ]\n}\n");
    }

    #[test]
    fn an_update_keeps_what_another_writer_saved_and_refuses_a_broken_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join(FILE);
        update(&file, |s| {
            s.start_with_app.insert("main".to_string());
        })
        .expect("first");
        // Another writer's change since this one read the file is kept.
        std::fs::write(&file, "{\"startWithApp\": [\"main\", \"rescue\"]}").expect("write");
        let got = update(&file, |s| {
            s.start_with_app.insert("work".to_string());
        })
        .expect("second");
        assert_eq!(got.start_with_app.len(), 3, "{got:?}");
        std::fs::write(&file, "{broken").expect("write");
        assert!(update(&file, |_| {}).is_err());
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "{broken");
    }
}
