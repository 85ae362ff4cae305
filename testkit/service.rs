//! A stand-in for the service manager: a `systemctl` that runs `main`'s
//! gateway as a service would, for tests and benches of what restarts it.

use std::path::{Path, PathBuf};

/// Writes into `dir` (put it first on PATH, with
/// `OMNICLAW_SERVICE_MANAGER=systemd`) a `systemctl` that runs main's
/// gateway in the background with the service marker, as a user unit
/// would, records its pid in `dir/main.pid` and every call in
/// `dir/calls.log`. Starting waits 1 s, stopping 1 s when it ran. Returns
/// the script's path.
pub fn fake_systemctl(dir: &Path) -> PathBuf {
    fake_systemctl_running(dir, &crate::omniclaw_bin())
}

/// [`fake_systemctl`] whose service runs the `omniclaw` at `bin` (an
/// installed one).
pub fn fake_systemctl_running(dir: &Path, bin: &Path) -> PathBuf {
    let script = dir.join("systemctl");
    std::fs::write(&script, script_for(bin)).expect("write the fake systemctl");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the fake systemctl");
    }
    script
}

fn script_for(bin: &Path) -> String {
    format!(
        r#"#!/bin/sh
dir=$(dirname "$0")
echo "systemctl $*" >> "$dir/calls.log"
alive() {{ [ -f "$dir/main.pid" ] && kill -0 "$(cat "$dir/main.pid")" 2>/dev/null; }}
start() {{ OMNICLAW_SERVICE=1 "{bin}" --profile main gateway >> "$dir/main.out" 2>&1 &
  echo $! > "$dir/main.pid"; sleep 1; }}
stop() {{ if alive; then kill "$(cat "$dir/main.pid")"; sleep 1; fi; rm -f "$dir/main.pid"; }}
case "$*" in
  "--user show --property=Version") echo "Version=252" ;;
  "--user show "*) if [ ! -f "$HOME/.config/systemd/user/$3" ]; then
      printf 'LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nResult=success\n'
    elif alive; then
      printf 'LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=%s\nResult=success\n' "$(cat "$dir/main.pid")"
    else
      printf 'LoadState=loaded\nActiveState=failed\nSubState=failed\nMainPID=0\nResult=exit-code\n'
    fi ;;
  "--user enable --now "*|"--user start "*) alive || start ;;
  "--user restart "*) stop; start ;;
  "--user disable --now "*|"--user stop "*) stop ;;
esac
exit 0
"#,
        bin = bin.display()
    )
}

/// Stops the stand-in's service when dropped, so a test that fails
/// between starting and stopping it leaves no gateway behind.
pub struct StopOnDrop(PathBuf);

/// A [`StopOnDrop`] for the stand-in written into `dir`.
pub fn stop_on_drop(dir: &Path) -> StopOnDrop {
    StopOnDrop(dir.join("main.pid"))
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let Ok(pid) = std::fs::read_to_string(&self.0) else {
            return;
        };
        let _ = std::process::Command::new("kill")
            .arg(pid.trim())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
