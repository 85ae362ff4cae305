//! The dashboard window: showing it on demand and hiding it on close.
//!
//! A tray app outlives its window. Closing the window only hides it; the app
//! keeps running in the tray until the user picks "Quit".

use tauri::{AppHandle, Manager, Runtime, Window, WindowEvent};

/// Label of the dashboard window, as configured in `tauri.conf.json`.
pub const MAIN: &str = "main";

/// What to do when the user asks to close a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseAction {
    /// Keep the process alive and just hide the window.
    Hide,
    /// Let the window close normally.
    Close,
}

/// Decides what closing the window with this label does: the dashboard hides,
/// any other (future, transient) window closes for real.
pub fn close_action(label: &str) -> CloseAction {
    if label == MAIN {
        CloseAction::Hide
    } else {
        CloseAction::Close
    }
}

/// Window event hook installed on the app builder.
pub fn on_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    if let WindowEvent::CloseRequested { api, .. } = event {
        if close_action(window.label()) == CloseAction::Hide {
            api.prevent_close();
            if let Err(error) = window.hide() {
                eprintln!("omniclaw-desktop: could not hide the {MAIN:?} window: {error}");
            }
        }
    }
}

/// Brings the dashboard to the front: un-minimises, shows and focuses it.
pub fn show_dashboard<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let window = app
        .get_webview_window(MAIN)
        .ok_or_else(|| tauri::Error::WindowNotFound)?;
    window.unminimize()?;
    window.show()?;
    window.set_focus()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(label: &str, expected: CloseAction) {
        assert_eq!(close_action(label), expected, "closing window {label:?}");
    }

    #[test]
    fn closing_the_dashboard_hides_it_and_other_windows_close() {
        let cases = [
            ("main", CloseAction::Hide),
            ("Main", CloseAction::Close),
            ("onboarding", CloseAction::Close),
            ("", CloseAction::Close),
        ];
        for (label, expected) in cases {
            check(label, expected);
        }
    }
}
