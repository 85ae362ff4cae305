//! Keeping the tray app small while it sits in the tray.
//!
//! Two costs dominate a tray-only process on Linux, and neither buys the
//! user anything while no window is open:
//! - GTK probes OpenGL when it opens the display, to choose visuals for GL
//!   windows. That loads the Mesa driver and, with it, LLVM (about 50 MB
//!   resident with a software renderer). The dashboard's web view does its
//!   own GL set-up when it is opened, so the probe at start is switched off
//!   (`GDK_GL=disable`) unless the user set `GDK_GL` themselves.
//! - A dashboard that was opened and closed leaves behind what it touched:
//!   freed heap with the allocator, and the pages of the libraries the web
//!   view ran (WebKit, JavaScriptCore, the GL driver and LLVM). When the
//!   window is destroyed the heap is trimmed (`malloc_trim`) and the pages
//!   of read-only file mappings are handed back (`madvise(MADV_PAGEOUT)`):
//!   they are clean copies of files, so the kernel drops them and reads
//!   them back if the dashboard opens again. Pages other processes share
//!   are left alone by the kernel.
//! - WebKit keeps its network process (about 60 MB) after the last web view
//!   is gone. Once the dashboard has stayed closed for a moment, that
//!   process — a child of this one, checked by parent pid and name, never
//!   anything else — is asked to end (SIGTERM); WebKit starts a new one when
//!   the dashboard opens again.

/// Switches off GTK's OpenGL probe at start. Call first thing in `main`,
/// before any thread exists (the environment is process-wide).
pub fn lean_start() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("GDK_GL").is_none() {
        std::env::set_var("GDK_GL", "disable");
    }
}

/// Hands memory the closed dashboard used back to the system, once the web
/// view's teardown (which runs on after the window is gone) has settled and
/// if `still_closed` says no dashboard has been opened again meanwhile.
pub fn release_after_dashboard(still_closed: impl Fn() -> bool + Send + 'static) {
    let settled = std::thread::Builder::new()
        .name("memory-release".into())
        .spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(2));
            if still_closed() {
                release_now();
            }
        });
    if let Err(e) = settled {
        eprintln!("omniclaw-desktop: memory is not released after the dashboard closed: {e}");
    }
}

fn release_now() {
    #[cfg(target_os = "linux")]
    end_web_helpers();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under
    // the allocator's locks; it takes no pointers from us.
    unsafe {
        libc::malloc_trim(0);
    }
    #[cfg(target_os = "linux")]
    page_out_file_mappings();
}

/// The names (`/proc/PID/comm`, cut at 15 bytes) of the WebKit helper
/// processes that outlive the last web view.
#[cfg(any(target_os = "linux", test))]
const LINGERING_HELPERS: [&str; 1] = ["WebKitNetworkPr"];

/// The pid of every child of `parent` among `(pid, stat)` pairs whose
/// command name is one of [`LINGERING_HELPERS`]. `stat` is the content of
/// `/proc/PID/stat`: `pid (comm) state ppid ...`.
#[cfg(any(target_os = "linux", test))]
fn lingering_helpers<'a>(parent: u32, stats: impl IntoIterator<Item = (u32, &'a str)>) -> Vec<u32> {
    stats
        .into_iter()
        .filter_map(|(pid, stat)| {
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let comm = stat.get(open + 1..close)?;
            let ppid: u32 = stat
                .get(close + 1..)?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent && LINGERING_HELPERS.contains(&comm)).then_some(pid)
        })
        .collect()
}

/// Asks this process's lingering WebKit helpers to end.
#[cfg(target_os = "linux")]
fn end_web_helpers() {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let stats: Vec<(u32, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((pid, std::fs::read_to_string(e.path().join("stat")).ok()?))
        })
        .collect();
    let me = std::process::id();
    for pid in lingering_helpers(me, stats.iter().map(|(p, s)| (*p, s.as_str()))) {
        let Ok(raw) = libc::pid_t::try_from(pid) else {
            continue;
        };
        // SAFETY: kill has no memory effects; the pid is a child of this
        // process (its parent pid is ours, so it cannot have been reused by
        // another process while it is still our unreaped child).
        unsafe {
            libc::kill(raw, libc::SIGTERM);
        }
    }
}

/// The read-only, file-backed ranges of `/proc/self/maps`.
#[cfg(any(target_os = "linux", test))]
fn file_ranges(maps: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let path = fields.nth(3)?;
            if !path.starts_with('/') || perms.as_bytes().get(1) != Some(&b'-') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some((start, end - start))
        })
        .collect()
}

#[cfg(target_os = "linux")]
fn page_out_file_mappings() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for (start, len) in file_ranges(&maps) {
        // SAFETY: the range is a whole mapping of this process, read-only
        // and backed by a file: MADV_PAGEOUT only drops its clean pages,
        // which fault back in from the file on the next access. It never
        // changes memory contents, and fails harmlessly on old kernels.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_lingering_web_helpers_are_ended() {
        let stats = [
            (10, "10 (WebKitNetworkPr) S 7 10 10 0 -1"),
            (11, "11 (WebKitNetworkPr) S 99 11 11 0 -1"),
            (12, "12 (WebKitWebProces) S 7 12 12 0 -1"),
            (13, "13 (odd) name (x)) S 7 13 13 0 -1"),
            (14, "14 (omniclaw) S 7 14 14 0 -1"),
            (15, "garbage"),
        ];
        assert_eq!(lingering_helpers(7, stats), vec![10]);
    }

    #[test]
    fn only_read_only_file_mappings_are_paged_out() {
        let maps = "\
5581a000-5581c000 r--p 00000000 fd:01 123 /usr/bin/app
5581c000-5581f000 r-xp 00002000 fd:01 123 /usr/bin/app
5581f000-55820000 rw-p 00005000 fd:01 123 /usr/bin/app
55820000-55841000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
7f1000000000-7f1000400000 r-xp 00000000 fd:01 456 /usr/lib/libLLVM.so.15 (deleted)
7ffd0000-7ffd1000 r-xp 00000000 00:00 0 [vdso]
";
        assert_eq!(
            file_ranges(maps),
            vec![
                (0x5581_a000, 0x2000),
                (0x5581_c000, 0x3000),
                (0x7f10_0000_0000, 0x40_0000),
            ]
        );
    }
}
