//! The login item ("Start at login"): an XDG autostart entry on Linux, a
//! launch agent on macOS, a Run key on Windows, written by `auto-launch`.
//!
//! It points at the app by the same rule as a gateway service's unit
//! ([`omniclaw_core::executable`]): the installed app when OmniClaw is
//! installed from a package, otherwise the path the user started it by (a
//! symlink stays a symlink, never its resolved build folder). The Tauri
//! autostart plugin always writes the resolved executable, hence this
//! module instead of it.

use std::path::{Path, PathBuf};

use auto_launch::{AutoLaunch, AutoLaunchBuilder};
use omniclaw_core::executable::Chosen;

use crate::HIDDEN_FLAG;

/// The login item of this app, managed by the app.
pub struct Login {
    launcher: Result<AutoLaunch, String>,
}

/// The program the login item starts.
const PROGRAM: &str = "omniclaw-desktop";

impl Login {
    /// The login item named `app_name` (its entry's file name) for this
    /// process, from its `argv[0]`, working directory and `PATH`.
    pub fn for_this_app(app_name: &str) -> Login {
        let path_var = std::env::var_os("PATH");
        let cwd = std::env::current_dir().ok();
        let chosen = omniclaw_os::executable::choose(PROGRAM, path_var.as_deref(), cwd.as_deref());
        // An AppImage runs from a mount that changes every start: the
        // image's own file is what the user started.
        let appimage = std::env::var_os("APPIMAGE")
            .filter(|_| cfg!(target_os = "linux"))
            .map(PathBuf::from);
        let launcher = match appimage.or(chosen.map(Chosen::into_path)) {
            Some(path) => build(app_name, &path),
            None => Err("cannot tell where this app's executable is".to_string()),
        };
        Login { launcher }
    }

    fn launcher(&self) -> Result<&AutoLaunch, String> {
        self.launcher.as_ref().map_err(Clone::clone)
    }

    /// Whether the login item exists.
    pub fn is_enabled(&self) -> bool {
        self.launcher()
            .and_then(|l| l.is_enabled().map_err(|e| e.to_string()))
            .unwrap_or(false)
    }

    /// Writes or removes the login item.
    pub fn set(&self, on: bool) -> Result<(), String> {
        let verb = if on { "turn on" } else { "turn off" };
        let launcher = self
            .launcher()
            .map_err(|e| format!("could not {verb} start at login: {e}"))?;
        let result = if on {
            launcher.enable()
        } else {
            launcher.disable()
        };
        result.map_err(|e| format!("could not {verb} start at login: {e}"))
    }
}

/// The login item named `app_name` that starts `path --hidden`.
fn build(app_name: &str, path: &Path) -> Result<AutoLaunch, String> {
    let mut builder = AutoLaunchBuilder::new();
    builder
        .set_app_name(app_name)
        .set_app_path(&exec_path(path))
        .set_args(&[HIDDEN_FLAG]);
    #[cfg(target_os = "macos")]
    builder.set_macos_launch_mode(auto_launch::MacOSLaunchMode::LaunchAgent);
    builder.build().map_err(|e| e.to_string())
}

/// The path as the entry writes it: quoted on Linux when it holds a space
/// (an XDG entry's `Exec=` splits on spaces outside quotes).
fn exec_path(path: &Path) -> String {
    let text = path.display().to_string();
    if cfg!(target_os = "linux") && text.contains(char::is_whitespace) {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_spaces_stays_one_word_of_exec() {
        let cases = [
            ("/usr/bin/omniclaw-desktop", "/usr/bin/omniclaw-desktop"),
            (
                "/home/u/My Apps/omniclaw-desktop",
                if cfg!(target_os = "linux") {
                    "\"/home/u/My Apps/omniclaw-desktop\""
                } else {
                    "/home/u/My Apps/omniclaw-desktop"
                },
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(exec_path(Path::new(path)), expected);
        }
    }
}
