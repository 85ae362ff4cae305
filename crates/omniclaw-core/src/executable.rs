//! Which executable a service unit or the login item points at: one that
//! stays where it is after an upgrade, a rebuild or a `cargo clean`.
//!
//! The rule, in one place:
//!
//! 1. **Installed from a package**: the running executable, with symlinks
//!    resolved, lies in a package's directory (see [`is_package_dir`]):
//!    `/usr/bin`, `/usr/local/bin`, `/bin`, `/opt/omniclaw…`,
//!    `/usr/lib/omniclaw…`, an app bundle under `/Applications`, or
//!    `Program Files`, `AppData\Local\Programs` or the folder OmniClaw's
//!    installer uses, `AppData\Local\OmniClaw`, on Windows. Then the
//!    program named `name` in that directory is used: the installed CLI
//!    beside the installed CLI or app. The package manager keeps that path
//!    through upgrades.
//! 2. **Otherwise the path the user invoked**: `argv[0]` made absolute
//!    against the working directory when it holds a separator, else the
//!    first `PATH` directory that holds it. A symlink stays a symlink (a
//!    `~/.local/bin/omniclaw` pointing into a build folder keeps pointing
//!    wherever the user moves it to), and versioned directories a symlink
//!    hides (Homebrew's `Cellar/omniclaw/1.2/bin`) are never written.
//! 3. **Else** the running executable as resolved (`argv[0]` rewritten or
//!    no longer there).
//!
//! The caller gathers the [`Invocation`] facts and answers whether a path is
//! a file; this module does no IO.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::paths;

/// How this process was started, gathered by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// `argv[0]` as the process got it.
    pub argv0: Option<PathBuf>,
    /// The working directory.
    pub cwd: Option<PathBuf>,
    /// `PATH`'s directories, in order.
    pub path_dirs: Vec<PathBuf>,
    /// The running executable with symlinks resolved (`current_exe`, canonical).
    pub resolved: Option<PathBuf>,
    /// The platform's executable suffix (`.exe` on Windows, else empty).
    pub exe_suffix: String,
}

/// The executable chosen, and which part of the rule chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chosen {
    /// Installed from a package: the program in the package's directory.
    Packaged(PathBuf),
    /// The path the user invoked, symlinks kept.
    Invoked(PathBuf),
    /// The running executable as resolved: nothing better was found.
    Resolved(PathBuf),
}

impl Chosen {
    pub fn path(&self) -> &Path {
        match self {
            Chosen::Packaged(p) | Chosen::Invoked(p) | Chosen::Resolved(p) => p,
        }
    }

    pub fn into_path(self) -> PathBuf {
        match self {
            Chosen::Packaged(p) | Chosen::Invoked(p) | Chosen::Resolved(p) => p,
        }
    }
}

impl fmt::Display for Chosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Chosen::Packaged(p) => write!(f, "{} (installed package)", p.display()),
            Chosen::Invoked(p) => write!(f, "{} (the path it was run as)", p.display()),
            Chosen::Resolved(p) => write!(f, "{} (the running executable)", p.display()),
        }
    }
}

/// The executable a service (`name` = `omniclaw`) or the login item
/// (`name` = `omniclaw-desktop`) should run, by the rule above; `None` when
/// no fact names one. `name` (bare, without suffix) is looked up in a
/// package's directory; outside a package the running program itself is
/// chosen, so a caller passes its own name.
pub fn choose(
    inv: &Invocation,
    name: &str,
    is_file: &mut dyn FnMut(&Path) -> bool,
) -> Option<Chosen> {
    if let Some(dir) = inv.resolved.as_deref().and_then(Path::parent) {
        if is_package_dir(dir) {
            let installed = dir.join(format!("{name}{}", inv.exe_suffix));
            if is_file(&installed) {
                return Some(Chosen::Packaged(installed));
            }
        }
    }
    if let Some(invoked) = invoked(inv, is_file) {
        return Some(Chosen::Invoked(invoked));
    }
    inv.resolved.clone().map(Chosen::Resolved)
}

/// The program `sibling` (`omniclaw` beside the app, `omniclaw-desktop`
/// beside the CLI) installed with the running one: the package's when
/// installed from one, else the one beside the path the user invoked (a
/// symlink farm such as `~/.local/bin` holding both), else the one beside
/// the running executable as resolved (a build folder holds both).
pub fn beside(
    inv: &Invocation,
    sibling: &str,
    is_file: &mut dyn FnMut(&Path) -> bool,
) -> Option<PathBuf> {
    let file = format!("{sibling}{}", inv.exe_suffix);
    let own = match choose(inv, sibling, is_file)? {
        Chosen::Packaged(installed) => return Some(installed),
        Chosen::Invoked(p) | Chosen::Resolved(p) => p,
    };
    [Some(own), inv.resolved.clone()]
        .into_iter()
        .flatten()
        .map(|p| p.with_file_name(&file))
        .find(|c| is_file(c))
}

/// `argv[0]` as the file the shell ran: absolute against the working
/// directory when it holds a separator, else searched on `PATH`.
fn invoked(inv: &Invocation, is_file: &mut dyn FnMut(&Path) -> bool) -> Option<PathBuf> {
    let argv0 = inv.argv0.as_deref()?;
    let text = argv0.to_string_lossy();
    if text.is_empty() {
        return None;
    }
    let absolute = |p: &Path| -> Option<PathBuf> {
        if p.is_absolute() {
            Some(paths::normalize(p))
        } else {
            inv.cwd.as_deref().map(|cwd| paths::normalize(&cwd.join(p)))
        }
    };
    let with_suffix = |p: &Path| -> Vec<PathBuf> {
        let mut out = vec![p.to_path_buf()];
        if !inv.exe_suffix.is_empty() && !text.ends_with(inv.exe_suffix.as_str()) {
            let mut s = OsString::from(p.as_os_str());
            s.push(&inv.exe_suffix);
            out.push(PathBuf::from(s));
        }
        out
    };
    if text.contains('/') || text.contains(std::path::MAIN_SEPARATOR) {
        let p = absolute(argv0)?;
        return with_suffix(&p).into_iter().find(|c| is_file(c));
    }
    inv.path_dirs
        .iter()
        .filter(|d| !d.as_os_str().is_empty())
        .filter_map(|d| absolute(&d.join(argv0)))
        .flat_map(|p| with_suffix(&p))
        .find(|c| is_file(c))
}

/// Whether `dir` is where a package manager or installer puts OmniClaw:
/// the system's program directories, an OmniClaw directory under `/opt` or
/// `/usr/lib`, an app bundle in `/Applications`, or an installer's program
/// folder on Windows. A versioned store (Homebrew's Cellar, Nix's store) is
/// not one: its paths change with every upgrade, and the symlink the user
/// runs is what stays.
pub fn is_package_dir(dir: &Path) -> bool {
    let s = dir.to_string_lossy().replace('\\', "/");
    let s = s.trim_end_matches('/');
    let lower = s.to_ascii_lowercase();
    if matches!(s, "/usr/bin" | "/usr/local/bin" | "/bin") {
        return true;
    }
    if lower.starts_with("/opt/omniclaw") || lower.starts_with("/usr/lib/omniclaw") {
        return true;
    }
    if s.starts_with("/Applications/") && s.ends_with(".app/Contents/MacOS") {
        return true;
    }
    // `C:/Program Files/...`, `C:/Program Files (x86)/...`, a per-user
    // installer's `C:/Users/u/AppData/Local/Programs/...`, and the folder
    // OmniClaw's own per-user installer (NSIS) installs into,
    // `C:/Users/u/AppData/Local/OmniClaw`.
    let drive = lower.as_bytes();
    let on_drive =
        drive.len() > 3 && drive[0].is_ascii_alphabetic() && drive[1] == b':' && drive[2] == b'/';
    on_drive
        && (lower[3..].starts_with("program files/")
            || lower[3..].starts_with("program files (x86)/")
            || lower.contains("/appdata/local/programs/")
            || lower.ends_with("/appdata/local/omniclaw"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_dir(dir: &str, expected: bool) {
        assert_eq!(is_package_dir(Path::new(dir)), expected, "{dir}");
    }

    #[test]
    fn package_dirs() {
        for (dir, expected) in [
            ("/usr/bin", true),
            ("/usr/bin/", true),
            ("/usr/local/bin", true),
            ("/bin", true),
            ("/opt/omniclaw/bin", true),
            ("/opt/OmniClaw", true),
            ("/usr/lib/omniclaw", true),
            ("/Applications/OmniClaw.app/Contents/MacOS", true),
            (r"C:\Program Files\OmniClaw", true),
            (r"D:\Program Files (x86)\OmniClaw", true),
            (r"C:\Users\u\AppData\Local\Programs\OmniClaw", true),
            (r"C:\Users\u\AppData\Local\OmniClaw", true),
            (r"C:\Users\u\AppData\Local\OmniClaw\services", false),
            // Build folders, user folders and versioned stores are not.
            ("/home/u/src/omniclaw/target/release", false),
            ("/home/u/.local/bin", false),
            ("/home/u/.cargo/bin", false),
            ("/usr/bin/extra", false),
            ("/opt/homebrew/Cellar/omniclaw/1.2.0/bin", false),
            ("/nix/store/abc-omniclaw-1.2.0/bin", false),
            ("/Users/u/Applications/OmniClaw.app/Contents/MacOS", false),
            (r"C:\Users\u\src\omniclaw\target\release", false),
            ("Program Files/OmniClaw", false),
        ] {
            check_dir(dir, expected);
        }
    }

    struct Case {
        argv0: Option<&'static str>,
        cwd: Option<&'static str>,
        path: &'static [&'static str],
        resolved: Option<&'static str>,
        files: &'static [&'static str],
    }

    const NONE: Case = Case {
        argv0: None,
        cwd: None,
        path: &[],
        resolved: None,
        files: &[],
    };

    fn check(name: &str, case: Case, expected: Option<Chosen>) {
        let inv = Invocation {
            argv0: case.argv0.map(PathBuf::from),
            cwd: case.cwd.map(PathBuf::from),
            path_dirs: case.path.iter().map(PathBuf::from).collect(),
            resolved: case.resolved.map(PathBuf::from),
            exe_suffix: String::new(),
        };
        let got = choose(&inv, name, &mut |p| {
            case.files.iter().any(|f| Path::new(f) == p)
        });
        assert_eq!(got, expected, "{inv:?}");
    }

    fn packaged(p: &str) -> Option<Chosen> {
        Some(Chosen::Packaged(PathBuf::from(p)))
    }
    fn invoked(p: &str) -> Option<Chosen> {
        Some(Chosen::Invoked(PathBuf::from(p)))
    }
    fn resolved(p: &str) -> Option<Chosen> {
        Some(Chosen::Resolved(PathBuf::from(p)))
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "a table of Unix paths and package dirs; Windows' own is `the_rule_on_windows`"
    )]
    fn the_rule() {
        // A package's CLI, run by name from PATH.
        check(
            "omniclaw",
            Case {
                argv0: Some("omniclaw"),
                path: &["/usr/bin"],
                resolved: Some("/usr/bin/omniclaw"),
                files: &["/usr/bin/omniclaw"],
                ..NONE
            },
            packaged("/usr/bin/omniclaw"),
        );
        // A package's CLI reached through a user's symlink: the installed one.
        check(
            "omniclaw",
            Case {
                argv0: Some("/home/u/bin/oc"),
                resolved: Some("/usr/bin/omniclaw"),
                files: &["/usr/bin/omniclaw", "/home/u/bin/oc"],
                ..NONE
            },
            packaged("/usr/bin/omniclaw"),
        );
        // The installed app's login item and the CLI beside it.
        check(
            "omniclaw",
            Case {
                argv0: Some("omniclaw-desktop"),
                path: &["/usr/bin"],
                resolved: Some("/usr/bin/omniclaw-desktop"),
                files: &["/usr/bin/omniclaw", "/usr/bin/omniclaw-desktop"],
                ..NONE
            },
            packaged("/usr/bin/omniclaw"),
        );
        // A package directory without `name`: the running program, as invoked.
        check(
            "omniclaw",
            Case {
                argv0: Some("/usr/bin/omniclaw-desktop"),
                resolved: Some("/usr/bin/omniclaw-desktop"),
                files: &["/usr/bin/omniclaw-desktop"],
                ..NONE
            },
            invoked("/usr/bin/omniclaw-desktop"),
        );
        // A symlink into a build folder, found on PATH: the symlink.
        check(
            "omniclaw",
            Case {
                argv0: Some("omniclaw"),
                cwd: Some("/tmp"),
                path: &["/home/u/nothere", "/home/u/.local/bin", "/usr/bin"],
                resolved: Some("/home/u/src/omniclaw/target/debug/omniclaw"),
                files: &[
                    "/home/u/.local/bin/omniclaw",
                    "/home/u/src/omniclaw/target/debug/omniclaw",
                ],
            },
            invoked("/home/u/.local/bin/omniclaw"),
        );
        // A relative PATH entry counts from the working directory.
        check(
            "omniclaw",
            Case {
                argv0: Some("omniclaw"),
                cwd: Some("/home/u/src/omniclaw"),
                path: &["", "target/debug"],
                resolved: Some("/home/u/src/omniclaw/target/debug/omniclaw"),
                files: &["/home/u/src/omniclaw/target/debug/omniclaw"],
            },
            invoked("/home/u/src/omniclaw/target/debug/omniclaw"),
        );
        // A relative invocation, made absolute and tidied, never resolved.
        check(
            "omniclaw",
            Case {
                argv0: Some("./bin/../bin/omniclaw"),
                cwd: Some("/home/u"),
                resolved: Some("/mnt/builds/omniclaw"),
                files: &["/home/u/bin/omniclaw", "/mnt/builds/omniclaw"],
                ..NONE
            },
            invoked("/home/u/bin/omniclaw"),
        );
        // Homebrew: the Cellar is versioned, the prefix's symlink stays.
        check(
            "omniclaw",
            Case {
                argv0: Some("omniclaw"),
                path: &["/opt/homebrew/bin"],
                resolved: Some("/opt/homebrew/Cellar/omniclaw/1.2.0/bin/omniclaw"),
                files: &[
                    "/opt/homebrew/bin/omniclaw",
                    "/opt/homebrew/Cellar/omniclaw/1.2.0/bin/omniclaw",
                ],
                ..NONE
            },
            invoked("/opt/homebrew/bin/omniclaw"),
        );
        // argv[0] names nothing that exists (rewritten by `exec -a`): the
        // running executable.
        check(
            "omniclaw",
            Case {
                argv0: Some("gateway-main"),
                path: &["/usr/bin"],
                resolved: Some("/home/u/target/omniclaw"),
                files: &["/home/u/target/omniclaw"],
                ..NONE
            },
            resolved("/home/u/target/omniclaw"),
        );
        // A relative argv[0] without a working directory cannot be placed.
        check(
            "omniclaw",
            Case {
                argv0: Some("bin/omniclaw"),
                resolved: Some("/x/omniclaw"),
                files: &["/x/omniclaw"],
                ..NONE
            },
            resolved("/x/omniclaw"),
        );
        check("omniclaw", NONE, None);
    }

    #[test]
    #[cfg_attr(windows, ignore = "a table of Unix paths")]
    fn the_program_beside() {
        let check = |argv0: &str, resolved: &str, files: &[&str], expected: Option<&str>| {
            let inv = Invocation {
                argv0: Some(PathBuf::from(argv0)),
                cwd: Some(PathBuf::from("/home/u")),
                path_dirs: vec![PathBuf::from("/home/u/.local/bin")],
                resolved: Some(PathBuf::from(resolved)),
                exe_suffix: String::new(),
            };
            let got = beside(&inv, "omniclaw", &mut |p| {
                files.iter().any(|f| Path::new(f) == p)
            });
            assert_eq!(
                got.as_deref(),
                expected.map(Path::new),
                "{argv0} -> {resolved}"
            );
        };
        // Installed from a package: the package's CLI.
        check(
            "omniclaw-desktop",
            "/usr/bin/omniclaw-desktop",
            &["/usr/bin/omniclaw-desktop", "/usr/bin/omniclaw"],
            Some("/usr/bin/omniclaw"),
        );
        // Symlinks in ~/.local/bin to a build: the CLI's symlink beside the app's.
        check(
            "omniclaw-desktop",
            "/src/target/debug/omniclaw-desktop",
            &[
                "/home/u/.local/bin/omniclaw-desktop",
                "/home/u/.local/bin/omniclaw",
                "/src/target/debug/omniclaw-desktop",
                "/src/target/debug/omniclaw",
            ],
            Some("/home/u/.local/bin/omniclaw"),
        );
        // Only the app is linked: the CLI in the build folder it resolves to.
        check(
            "omniclaw-desktop",
            "/src/target/debug/omniclaw-desktop",
            &[
                "/home/u/.local/bin/omniclaw-desktop",
                "/src/target/debug/omniclaw-desktop",
                "/src/target/debug/omniclaw",
            ],
            Some("/src/target/debug/omniclaw"),
        );
        // No CLI anywhere near.
        check(
            "/opt/apps/omniclaw-desktop",
            "/opt/apps/omniclaw-desktop",
            &["/opt/apps/omniclaw-desktop"],
            None,
        );
    }

    #[test]
    fn windows_names_get_their_suffix() {
        use crate::paths::abs_here as abs;
        let inv = Invocation {
            argv0: Some(PathBuf::from("omniclaw")),
            path_dirs: vec![PathBuf::from(abs("/w/tools"))],
            resolved: Some(PathBuf::from(abs("/w/build/omniclaw.exe"))),
            exe_suffix: ".exe".into(),
            ..Invocation::default()
        };
        let installed = PathBuf::from(abs("/w/tools/omniclaw.exe"));
        let got = choose(&inv, "omniclaw", &mut |p| p == installed);
        assert_eq!(got, Some(Chosen::Invoked(installed.clone())));
    }

    /// The rule with Windows' own paths: an installer's program folder is
    /// a package's directory, a build folder is not.
    #[cfg(windows)]
    #[test]
    fn the_rule_on_windows() {
        let programs = r"C:\Users\u\AppData\Local\Programs\OmniClaw";
        let choose_for = |argv0: &str, dirs: &[&str], resolved: &str, files: &[PathBuf]| {
            let inv = Invocation {
                argv0: Some(PathBuf::from(argv0)),
                cwd: Some(PathBuf::from(r"C:\Users\u")),
                path_dirs: dirs.iter().map(PathBuf::from).collect(),
                resolved: Some(PathBuf::from(resolved)),
                exe_suffix: ".exe".into(),
            };
            choose(&inv, "omniclaw", &mut |p| files.iter().any(|f| f == p))
        };
        // The installed CLI, whichever program of the package runs, in a
        // per-user installer's folder or OmniClaw's own installer's.
        for programs in [programs, r"C:\Users\u\AppData\Local\OmniClaw"] {
            let cli = Path::new(programs).join("omniclaw.exe");
            let app = Path::new(programs).join("omniclaw-desktop.exe");
            assert_eq!(
                choose_for(
                    "omniclaw-desktop",
                    &[programs],
                    &app.to_string_lossy(),
                    &[cli.clone(), app.clone()]
                ),
                Some(Chosen::Packaged(cli))
            );
        }
        // A build run by its path: that path.
        let built = r"C:\src\omniclaw\target\debug\omniclaw.exe";
        assert_eq!(
            choose_for(built, &[], built, &[PathBuf::from(built)]),
            Some(Chosen::Invoked(PathBuf::from(built)))
        );
        // Run by name from PATH, `.exe` added as the shell does.
        let tools = PathBuf::from(r"C:\tools\omniclaw.exe");
        assert_eq!(
            choose_for("omniclaw", &[r"C:\tools"], built, &[tools.clone()]),
            Some(Chosen::Invoked(tools))
        );
    }
}
