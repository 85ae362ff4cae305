//! The facts [`omniclaw_core::executable::choose`] decides on, read from
//! this process: `argv[0]`, the running executable with symlinks resolved,
//! and whether a candidate is a file. Shared by `gateway install` (the
//! binary a service runs) and the desktop app (its login item).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use omniclaw_core::executable::{self, Chosen, Invocation};

/// This process's invocation; `path_var` and `cwd` are the caller's
/// (`PATH` and the working directory it was started with).
pub fn invocation(path_var: Option<&OsStr>, cwd: Option<&Path>) -> Invocation {
    Invocation {
        argv0: std::env::args_os().next().map(PathBuf::from),
        cwd: cwd.map(Path::to_path_buf),
        path_dirs: path_var
            .map(|p| std::env::split_paths(p).collect())
            .unwrap_or_default(),
        resolved: std::env::current_exe()
            .ok()
            .map(|p| p.canonicalize().unwrap_or(p)),
        exe_suffix: std::env::consts::EXE_SUFFIX.to_string(),
    }
}

/// The program `name` (`omniclaw`, `omniclaw-desktop`) a service or login
/// item should run, by the rule of [`omniclaw_core::executable`].
pub fn choose(name: &str, path_var: Option<&OsStr>, cwd: Option<&Path>) -> Option<Chosen> {
    executable::choose(&invocation(path_var, cwd), name, &mut |p| p.is_file())
}

/// The program `sibling` installed with this one (the CLI beside the app,
/// the app beside the CLI), by [`omniclaw_core::executable::beside`].
pub fn beside(sibling: &str, path_var: Option<&OsStr>, cwd: Option<&Path>) -> Option<PathBuf> {
    executable::beside(&invocation(path_var, cwd), sibling, &mut |p| p.is_file())
}
