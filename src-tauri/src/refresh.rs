//! Keeps the tray, the dashboard and the notifications in step with reality.
//!
//! One background task gathers the view whenever something changed in this
//! app (an action, a gateway's state stream), when the files a change made
//! elsewhere touches moved (a config edited by hand, a gateway started from
//! a terminal, a service installed: [`changes::Stamp`], compared every
//! [`changes::TICK`]), and at least every [`changes::FULL_EVERY`] (log
//! tails, ports taken by other programs). An unchanged view costs nothing
//! on screen. Gathering reads files, so it runs on the blocking pool: the
//! tray never waits on IO.

use std::sync::Arc;
use std::time::Instant;

use omniclaw_core::tray::{self, Notice, Snapshot};
use tauri::Manager as _;
use tauri::{AppHandle, Emitter, Wry};
use tauri_plugin_notification::NotificationExt as _;

use crate::changes::{self, Stamp};
use crate::desktop::Desktop;
use crate::view::{self, View};
use crate::window;

/// Event carrying the dashboard's data to the web UI on every change.
pub const STATE_EVENT: &str = "omniclaw://state";

/// Gathers the current view off the async threads.
pub async fn current(app: &AppHandle<Wry>, desktop: &Arc<Desktop>) -> Option<View> {
    let autostart = app.state::<crate::login::Login>().is_enabled();
    let desktop = Arc::clone(desktop);
    tauri::async_runtime::spawn_blocking(move || view::gather(&desktop, autostart))
        .await
        .ok()
}

/// Starts the refresher; it runs as long as the app.
pub fn spawn(app: AppHandle<Wry>, desktop: Arc<Desktop>) {
    tauri::async_runtime::spawn(async move {
        let mut last: Option<View> = None;
        // Budget levels told so far: once per level, day and cap.
        let mut told = tray::BudgetTold::new();
        // Remotes told unreachable: once until they answer again.
        let mut remotes_told = tray::RemotesTold::new();
        loop {
            let stamp = Stamp::of(desktop.home());
            let gathered = Instant::now();
            if let Some(view) = current(&app, &desktop).await {
                let mut running: std::collections::BTreeSet<String> = view
                    .snapshot
                    .gateways
                    .iter()
                    .filter(|g| matches!(g.status, tray::Status::Running(_)))
                    .map(|g| g.name.clone())
                    .collect();
                // Remote gateways are followed while their URL can be dialled.
                running.extend(
                    desktop
                        .remotes
                        .entries()
                        .into_iter()
                        .filter(crate::remotes::Entry::reachable)
                        .map(|e| e.remote.name),
                );
                crate::link::follow(&app, &desktop, &running);
                if last.as_ref() != Some(&view) {
                    show(&app, last.as_ref(), &view);
                    let (notices, next) = tray::budget_notices(&told, &view.snapshot);
                    told = next;
                    for notice in notices {
                        notify(&app, notice);
                    }
                    let (notices, next) = tray::remote_notices(&remotes_told, &view.snapshot);
                    remotes_told = next;
                    for notice in notices {
                        notify(&app, notice);
                    }
                    last = Some(view);
                }
            }
            loop {
                tokio::select! {
                    () = desktop.changed.notified() => break,
                    () = tokio::time::sleep(changes::TICK) => {}
                }
                if gathered.elapsed() >= changes::FULL_EVERY || Stamp::of(desktop.home()) != stamp {
                    break;
                }
            }
        }
    });
}

fn show(app: &AppHandle<Wry>, before: Option<&View>, view: &View) {
    let menu = tray::menu(&view.snapshot);
    if let Err(e) = crate::tray::render(app, &menu) {
        eprintln!("omniclaw-desktop: could not update the tray menu: {e}");
    }
    if let Err(e) = app.emit_to(window::MAIN, STATE_EVENT, &view.dashboard) {
        eprintln!("omniclaw-desktop: could not update the dashboard: {e}");
    }
    let empty = Snapshot::default();
    let before = before.map_or(&empty, |v| &v.snapshot);
    for notice in tray::notices(before, &view.snapshot) {
        notify(app, notice);
    }
}

/// Shows one desktop notification; without a notification daemon (a bare
/// session) it is only logged.
pub fn notify(app: &AppHandle<Wry>, notice: Notice) {
    let app = app.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let shown = app
            .notification()
            .builder()
            .title(notice.title())
            .body(notice.body())
            .show();
        if let Err(e) = shown {
            eprintln!(
                "omniclaw-desktop: notification not shown ({e}): {}: {}",
                notice.title(),
                notice.body()
            );
        }
    });
}
