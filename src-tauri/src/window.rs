//! The dashboard window: created on demand, destroyed on close.
//!
//! A tray app outlives its window. Closing the dashboard destroys it (and
//! with it the web view's processes and memory); the app keeps running in
//! the tray until "Quit", and "Open dashboard" builds the window again from
//! `tauri.conf.json`. The window is never created at start with `--hidden`
//! (the login item), so a login costs no web view at all.

use std::sync::Mutex;

use tauri::webview::WebviewWindowBuilder;
use tauri::{AppHandle, Emitter, Manager, Runtime};

/// Label of the dashboard window, as configured in `tauri.conf.json`.
pub const MAIN: &str = "main";

/// Event telling an open dashboard which page to show.
pub const NAVIGATE_EVENT: &str = "omniclaw://navigate";

/// The dashboard's pages.
pub const PAGES: [&str; 6] = [
    "gateways",
    "chat",
    "ports",
    "settings",
    "setup",
    "assistant",
];

/// The page a dashboard that is still loading shows first (it asks once).
#[derive(Default)]
pub struct PendingPage(Mutex<Option<String>>);

impl PendingPage {
    /// Takes the page asked for, if any.
    pub fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn set(&self, page: &str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(page.to_string());
    }
}

/// The page to show for a request: a known page, else the gateways.
pub fn page_for(requested: &str) -> &'static str {
    PAGES
        .into_iter()
        .find(|p| *p == requested)
        .unwrap_or(PAGES[0])
}

/// Brings the dashboard to the front on `page`: builds it when it is closed,
/// else un-minimises, shows and focuses it.
pub fn show_dashboard<R: Runtime>(app: &AppHandle<R>, page: &str) -> tauri::Result<()> {
    let page = page_for(page);
    if let Some(window) = app.get_webview_window(MAIN) {
        window.unminimize()?;
        window.show()?;
        window.set_focus()?;
        return app.emit_to(MAIN, NAVIGATE_EVENT, page);
    }
    app.state::<PendingPage>().set(page);
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN)
        .cloned()
        .ok_or(tauri::Error::WindowNotFound)?;
    let window = WebviewWindowBuilder::from_config(app, &config)?
        .visible(true)
        .build()?;
    window.set_focus()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(requested: &str, expected: &str) {
        assert_eq!(page_for(requested), expected, "page for {requested:?}");
    }

    #[test]
    fn unknown_pages_fall_back_to_the_gateways() {
        let cases = [
            ("gateways", "gateways"),
            ("ports", "ports"),
            ("settings", "settings"),
            ("setup", "setup"),
            ("chat", "chat"),
            ("Ports", "gateways"),
            ("", "gateways"),
            ("../etc", "gateways"),
        ];
        for (requested, expected) in cases {
            check(requested, expected);
        }
    }

    #[test]
    fn a_pending_page_is_taken_once() {
        let pending = PendingPage::default();
        assert_eq!(pending.take(), None);
        pending.set("ports");
        assert_eq!(pending.take().as_deref(), Some("ports"));
        assert_eq!(pending.take(), None);
    }
}
