//! Watching a config file for edits, debounced.
//!
//! The file's directory is watched, not the file: editors save by writing
//! in place, by writing a temp file and renaming it over the config, or by
//! deleting and recreating it, and only a directory watch sees all three
//! (a watch on the file itself dies with the old inode). Events for other
//! names in the directory are ignored; a burst of events for the config
//! fires the callback once, after `debounce` without further events.
//!
//! This module only says "the file may have changed": it never reads,
//! parses or judges the config (the reload logic does), and never blocks
//! the caller: the callback runs on the watcher's own thread.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// Why a watch could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path} for config edits: {detail}; hot reload is off until the gateway restarts", path = path.display())]
    Start { path: PathBuf, detail: String },
}

enum Msg {
    Touched,
    Stop,
}

/// A running watch; dropping it stops the watch and its thread.
pub struct ConfigWatcher {
    watcher: Option<RecommendedWatcher>,
    tx: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

/// Whether a notify event may have changed the content of a file.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

impl ConfigWatcher {
    /// Watches `config`'s directory and calls `on_change` once per burst of
    /// edits to `config`, `debounce` after the last one.
    pub fn start(
        config: &Path,
        debounce: Duration,
        on_change: impl Fn() + Send + 'static,
    ) -> Result<ConfigWatcher, WatchError> {
        let err = |detail: String| WatchError::Start {
            path: config.to_path_buf(),
            detail,
        };
        let dir = match config.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = config
            .file_name()
            .ok_or_else(|| err("the path names no file".into()))?
            .to_os_string();
        let (tx, rx) = mpsc::channel::<Msg>();
        let events = tx.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else {
                // An overflowed or failed watch may have lost an edit: check.
                let _ = events.send(Msg::Touched);
                return;
            };
            let ours = event
                .paths
                .iter()
                .any(|p| p.file_name() == Some(name.as_os_str()));
            if ours && is_change(&event.kind) {
                let _ = events.send(Msg::Touched);
            }
        })
        .map_err(|e| err(e.to_string()))?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| err(e.to_string()))?;
        let thread = std::thread::Builder::new()
            .name("omniclaw-config-watch".into())
            .spawn(move || debounce_loop(&rx, debounce, &on_change))
            .map_err(|e| err(e.to_string()))?;
        Ok(ConfigWatcher {
            watcher: Some(watcher),
            tx,
            thread: Some(thread),
        })
    }
}

fn debounce_loop(rx: &mpsc::Receiver<Msg>, debounce: Duration, on_change: &dyn Fn()) {
    let mut due: Option<Instant> = None;
    loop {
        let msg = match due {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        match msg {
            Ok(Msg::Touched) => due = Some(Instant::now() + debounce),
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                due = None;
                on_change();
            }
        }
    }
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        // Stop the OS watch first so no event arrives after the thread ends.
        self.watcher.take();
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn watch(path: &Path) -> (ConfigWatcher, Arc<AtomicUsize>) {
        let n = Arc::new(AtomicUsize::new(0));
        let count = n.clone();
        let w = ConfigWatcher::start(path, Duration::from_millis(50), move || {
            count.fetch_add(1, Ordering::SeqCst);
        })
        .expect("watch");
        (w, n)
    }

    fn wait_for(n: &AtomicUsize, want: usize) -> usize {
        let end = Instant::now() + Duration::from_secs(5);
        while n.load(Ordering::SeqCst) < want && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Give a would-be extra callback the chance to show up.
        std::thread::sleep(Duration::from_millis(150));
        n.load(Ordering::SeqCst)
    }

    #[test]
    fn sees_in_place_rename_and_recreate_edits_once_each() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("omniclaw.json");
        std::fs::write(&cfg, "{}").expect("write");
        let (_w, n) = watch(&cfg);

        std::fs::write(&cfg, "{ gateway: {} }").expect("in place");
        assert_eq!(wait_for(&n, 1), 1);

        let tmp = dir.path().join(".omniclaw.json.swp");
        std::fs::write(&tmp, "{ logging: {} }").expect("tmp");
        std::fs::rename(&tmp, &cfg).expect("rename");
        assert_eq!(wait_for(&n, 2), 2);

        std::fs::remove_file(&cfg).expect("rm");
        std::fs::write(&cfg, "{}").expect("recreate");
        assert_eq!(wait_for(&n, 3), 3);

        std::fs::write(dir.path().join("other.txt"), "x").expect("other");
        std::fs::read_to_string(&cfg).expect("read");
        assert_eq!(wait_for(&n, 4), 3, "other files and reads are ignored");
    }

    #[test]
    fn missing_dir_is_a_clear_error() {
        let err = ConfigWatcher::start(
            Path::new("/nonexistent/dir/omniclaw.json"),
            Duration::ZERO,
            || {},
        )
        .err()
        .expect("error");
        assert!(
            err.to_string().contains("/nonexistent/dir/omniclaw.json"),
            "{err}"
        );
    }
}
