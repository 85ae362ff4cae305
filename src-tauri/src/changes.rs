//! Noticing changes made outside the app quickly and cheaply.
//!
//! Gathering the whole view (every config read and validated, the port plan,
//! locks, port owners) costs milliseconds; doing it every 100 ms would keep
//! an idle tray app busy. Instead the refresher compares a [`Stamp`] — the
//! modification times of the few files and directories a change outside
//! the app touches — every [`TICK`], and gathers only when the stamp moved
//! (or after [`FULL_EVERY`], for what leaves no trace in the files, such as
//! another program taking a port or a gateway killed with SIGKILL).
//!
//! What a stamp covers, for the home directory and every `~/.omniclaw*` and
//! `~/.openclaw*` state dir in it:
//! - the directory itself: a file created, removed or renamed over (every
//!   atomic write: configs, `gateway.json` when a gateway starts or stops,
//!   the instance lock, `profile.json`);
//! - the config files (`omniclaw.json`, `openclaw.json`): edits in place;
//! - the rescue bot's `telegram/` directory (its status and pairing files);
//! - `~/.omniclaw/desktop.json` (start with the app) and the service
//!   manager's unit directories (a service installed or removed).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the stamp is compared.
pub const TICK: Duration = Duration::from_millis(100);

/// The longest time between two full gatherings.
pub const FULL_EVERY: Duration = Duration::from_secs(1);

/// The files a stamp looks at inside each state dir.
const STATE_FILES: [&str; 3] = ["omniclaw.json", "openclaw.json", "telegram"];

/// Where service managers keep the units of this user, relative to home.
const UNIT_DIRS: [&str; 2] = [".config/systemd/user", "Library/LaunchAgents"];

/// Modification times of the places changes made elsewhere show up in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stamp(Vec<(PathBuf, Option<SystemTime>)>);

impl Stamp {
    /// The stamp of `home` now. Missing paths count too (their appearing
    /// is a change).
    pub fn of(home: &Path) -> Stamp {
        let mut paths = vec![
            home.to_path_buf(),
            home.join(".omniclaw").join("desktop.json"),
        ];
        paths.extend(UNIT_DIRS.iter().map(|d| home.join(d)));
        let mut dirs: Vec<PathBuf> = fs::read_dir(home)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with(".omniclaw") || name.starts_with(".openclaw")
            })
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            paths.extend(STATE_FILES.iter().map(|f| dir.join(f)));
            paths.push(dir);
        }
        Stamp(
            paths
                .into_iter()
                .map(|p| {
                    let modified = fs::metadata(&p).and_then(|m| m.modified()).ok();
                    (p, modified)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits until the clock has moved on far enough that a new write gets a
    /// different modification time than the last one on any file system.
    fn next_tick() {
        std::thread::sleep(Duration::from_millis(20));
    }

    #[test]
    fn changes_made_elsewhere_move_the_stamp() {
        let home = tempfile::tempdir().expect("tempdir");
        let home = home.path();
        let state = home.join(".omniclaw-main");
        fs::create_dir_all(state.join("telegram")).expect("state dir");
        fs::write(state.join("omniclaw.json"), "{}").expect("config");
        let mut last = Stamp::of(home);
        assert_eq!(Stamp::of(home), last, "nothing changed");

        let mut check = |what: &str, change: &dyn Fn()| {
            next_tick();
            change();
            let now = Stamp::of(home);
            assert_ne!(now, last, "{what} is not seen");
            last = now;
        };
        check("a config edited in place", &|| {
            fs::write(state.join("omniclaw.json"), "{ gateway: {} }").expect("edit")
        });
        check("a runtime file written by a starting gateway", &|| {
            fs::write(state.join("gateway.json.tmp"), "{}").expect("tmp");
            fs::rename(state.join("gateway.json.tmp"), state.join("gateway.json")).expect("mv");
        });
        check("the runtime file removed by a stopping gateway", &|| {
            fs::remove_file(state.join("gateway.json")).expect("rm")
        });
        check("a new profile", &|| {
            fs::create_dir(home.join(".omniclaw-rescue")).expect("mkdir")
        });
        check("a pairing request", &|| {
            fs::write(state.join("telegram").join("pairing.json"), "{}").expect("pairing")
        });
        check("a service installed", &|| {
            fs::create_dir_all(home.join(".config/systemd/user")).expect("units")
        });
        check("start with the app changed", &|| {
            fs::create_dir_all(home.join(".omniclaw")).expect("dir");
            fs::write(home.join(".omniclaw/desktop.json"), "{}").expect("settings")
        });
    }

    #[test]
    fn log_lines_do_not_move_the_stamp() {
        let home = tempfile::tempdir().expect("tempdir");
        let logs = home.path().join(".omniclaw-main").join("logs");
        fs::create_dir_all(&logs).expect("logs");
        fs::write(logs.join("gateway.log"), "one\n").expect("log");
        let before = Stamp::of(home.path());
        next_tick();
        fs::write(logs.join("gateway.log"), "one\ntwo\n").expect("log");
        assert_eq!(Stamp::of(home.path()), before);
    }
}
