//! Finding the profiles on disk, and the real OpenClaw installs beside them.
//!
//! Profiles are the `~/.omniclaw` and `~/.omniclaw-NAME` directories. A
//! profile whose config lives elsewhere (`OMNICLAW_CONFIG_PATH`) records that
//! in the marker file `profile.json` that `setup` writes into its state dir.
//! Real OpenClaw installs are `~/.openclaw` and `~/.openclaw-*` holding an
//! `openclaw.json`: their ports are reserved, never moved.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use omniclaw_core::paths::{self, MARKER_FILE};
use omniclaw_core::profile::Profile;

/// A profile found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundProfile {
    pub profile: Profile,
    pub state_dir: PathBuf,
    pub config_path: PathBuf,
}

/// A real OpenClaw install found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundForeign {
    /// `.openclaw` or `.openclaw-work`: how it is named in reports.
    pub dir_name: String,
    pub config_path: PathBuf,
}

/// What `setup` records in the state dir about the profile that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub profile: String,
    pub config_path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot list {}: {source}", dir.display())]
    ListHome { dir: PathBuf, source: io::Error },
}

/// Lists the OmniClaw profiles and OpenClaw installs under `home`, sorted:
/// the default profile first, then by name, then by state dir.
pub fn scan(home: &Path) -> Result<(Vec<FoundProfile>, Vec<FoundForeign>), DiscoveryError> {
    let entries = match fs::read_dir(home) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(source) => {
            return Err(DiscoveryError::ListHome {
                dir: home.to_path_buf(),
                source,
            })
        }
    };
    let mut profiles = Vec::new();
    let mut foreign = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if let Some(dir_profile) = paths::profile_of_dir_name(&name) {
            // The marker written by `setup` is the truth: a state dir set with
            // OMNICLAW_STATE_DIR may carry another profile's name.
            let marker = read_marker(&path);
            let profile = marker
                .as_ref()
                .and_then(|m| Profile::parse(&m.profile).ok())
                .unwrap_or(dir_profile);
            let config_path = match marker {
                Some(m) => m.config_path,
                None => path.join(paths::CONFIG_FILE),
            };
            // A bare `~/.omniclaw` that only holds workspaces of named
            // profiles is not a profile of its own.
            if profile.is_default() && !config_path.exists() && !path.join(MARKER_FILE).exists() {
                continue;
            }
            profiles.push(FoundProfile {
                profile,
                state_dir: path,
                config_path,
            });
        } else if name == ".openclaw" || name.starts_with(".openclaw-") {
            let config_path = path.join("openclaw.json");
            // Anything there (a directory, a broken link) is reported as
            // unreadable rather than skipped: its ports stay unknown.
            if fs::symlink_metadata(&config_path).is_ok() {
                foreign.push(FoundForeign {
                    dir_name: name,
                    config_path,
                });
            }
        }
    }
    profiles.sort_by(|a, b| (&a.profile, &a.state_dir).cmp(&(&b.profile, &b.state_dir)));
    foreign.sort_by(|a, b| a.dir_name.cmp(&b.dir_name));
    Ok((profiles, foreign))
}

/// Reads `<state dir>/profile.json`; a missing or unreadable marker is `None`.
pub fn read_marker(state_dir: &Path) -> Option<Marker> {
    let text = fs::read_to_string(state_dir.join(MARKER_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(Marker {
        profile: v.get("profile")?.as_str()?.to_string(),
        config_path: PathBuf::from(v.get("configPath")?.as_str()?),
    })
}

/// Writes `<state dir>/profile.json` atomically.
pub fn write_marker(state_dir: &Path, marker: &Marker) -> io::Result<()> {
    let v = serde_json::json!({
        "profile": marker.profile,
        "configPath": marker.config_path.to_string_lossy(),
    });
    let mut text = serde_json::to_string_pretty(&v).map_err(io::Error::other)?;
    text.push('\n');
    crate::fsx::atomic_replace(&state_dir.join(MARKER_FILE), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_profiles_and_foreign_installs() {
        let home = tempfile::tempdir().expect("tempdir");
        let h = home.path();
        for d in [
            ".omniclaw-rescue",
            ".omniclaw-main",
            ".omniclaw-Bad",
            ".openclaw",
            ".openclaw-work",
            ".openclaw-empty",
            "other",
        ] {
            fs::create_dir(h.join(d)).expect("mkdir");
        }
        // ~/.omniclaw holding only workspaces is no profile.
        fs::create_dir_all(h.join(".omniclaw/workspace-main")).expect("mkdir");
        fs::write(h.join(".openclaw/openclaw.json"), "{}").expect("write");
        fs::write(h.join(".openclaw-work/openclaw.json"), "{}").expect("write");
        let custom = h.join("elsewhere/main.json");
        write_marker(
            &h.join(".omniclaw-main"),
            &Marker {
                profile: "main".into(),
                config_path: custom.clone(),
            },
        )
        .expect("marker");

        let (profiles, foreign) = scan(h).expect("scan");
        let names: Vec<_> = profiles
            .iter()
            .map(|p| p.profile.name().to_string())
            .collect();
        assert_eq!(names, ["main", "rescue"]);
        assert_eq!(profiles[0].config_path, custom);
        assert_eq!(
            profiles[1].config_path,
            h.join(".omniclaw-rescue/omniclaw.json")
        );
        let dirs: Vec<_> = foreign.iter().map(|f| f.dir_name.as_str()).collect();
        assert_eq!(dirs, [".openclaw", ".openclaw-work"]);

        fs::write(h.join(".omniclaw/omniclaw.json"), "{}").expect("write");
        let (profiles, _) = scan(h).expect("scan");
        assert_eq!(profiles[0].profile, Profile::Default);
    }

    #[test]
    fn missing_home_is_empty() {
        let (p, f) = scan(Path::new("/nonexistent/omniclaw-home")).expect("scan");
        assert!(p.is_empty() && f.is_empty());
    }
}
