//! The app's own settings: which gateways start with the app.
//!
//! Kept in `~/.omniclaw/desktop.json` (`{"startWithApp": ["main"]}`), written
//! atomically. A missing file means defaults; a broken one is reported and
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

/// Writes the settings atomically, creating the folder (private) when needed.
pub fn save(path: &Path, settings: &Settings) -> Result<(), SettingsError> {
    let write_error = |source| SettingsError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fsx::create_private_dir(dir).map_err(write_error)?;
    }
    let mut text =
        serde_json::to_string_pretty(settings).map_err(|e| write_error(io::Error::other(e)))?;
    text.push('\n');
    fsx::atomic_replace(path, text.as_bytes()).map_err(write_error)
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
    fn missing_file_is_defaults_and_save_round_trips() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join(".omniclaw").join(FILE);
        assert_eq!(load(&file).expect("defaults"), Settings::default());
        let settings = Settings {
            start_with_app: ["main".to_string()].into_iter().collect(),
        };
        save(&file, &settings).expect("save");
        assert_eq!(load(&file).expect("load"), settings);
        let text = std::fs::read_to_string(&file).expect("read");
        assert_eq!(text, "{\n  \"startWithApp\": [\n    \"main\"\n  ]\n}\n");
    }
}
