//! `omniclaw-desktop`: the OmniClaw tray app.
//!
//! A thin shell around Tauri: it opens the dashboard window (the web UI in
//! `ui/`), puts the OmniClaw icon in the system tray and routes tray menu
//! clicks. The window hides instead of closing, so the app keeps running in
//! the tray until "Quit". Everything about gateways, profiles and ports lives
//! in the core crates; this binary must never grow domain logic of its own.

#![deny(clippy::unwrap_used)]
// Release builds on Windows are GUI apps and must not open a console window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod tray;
mod window;

use anyhow::Context as _;

/// The app's embedded assets and `tauri.conf.json` (from the workspace root).
fn context() -> tauri::Context<tauri::Wry> {
    tauri::generate_context!("../tauri.conf.json")
}

fn run() -> anyhow::Result<()> {
    tauri::Builder::default()
        .setup(|app| {
            tray::install(app.handle())?;
            Ok(())
        })
        .on_window_event(window::on_event)
        .run(context())
        .context("the OmniClaw desktop app failed to start or stopped with an error (is a graphical session available? check $DISPLAY or $WAYLAND_DISPLAY)")
}

fn main() {
    if let Err(error) = run() {
        eprintln!("omniclaw-desktop: error: {error:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config that ships inside the binary, as Tauri parsed it.
    fn config() -> tauri::Config {
        context().config().clone()
    }

    fn check(field: &str, actual: Option<String>, expected: &str) {
        assert_eq!(
            actual.as_deref(),
            Some(expected),
            "tauri.conf.json: {field}"
        );
    }

    #[test]
    fn app_identity_comes_from_the_config() {
        let config = config();
        let window = config.app.windows.first().cloned();
        let cases = [
            ("productName", config.product_name.clone(), "OmniClaw"),
            (
                "identifier",
                Some(config.identifier.clone()),
                "ai.omniclaw.desktop",
            ),
            (
                "app.windows[0].label",
                window.as_ref().map(|w| w.label.clone()),
                window::MAIN,
            ),
            (
                "app.windows[0].title",
                window.as_ref().map(|w| w.title.clone()),
                "OmniClaw",
            ),
        ];
        for (field, actual, expected) in cases {
            check(field, actual, expected);
        }
    }

    #[test]
    fn version_comes_from_the_workspace_manifest() {
        let context = context();
        check(
            "version (from the workspace Cargo.toml)",
            Some(context.package_info().version.to_string()),
            env!("CARGO_PKG_VERSION"),
        );
    }

    #[test]
    fn main_window_geometry_is_as_designed() {
        let config = config();
        assert_eq!(
            config.app.windows.len(),
            1,
            "exactly one window is configured"
        );
        let w = &config.app.windows[0];
        let cases = [
            ("width", Some(w.width), 1000.0),
            ("height", Some(w.height), 700.0),
            ("minWidth", w.min_width, 800.0),
            ("minHeight", w.min_height, 600.0),
        ];
        for (field, actual, expected) in cases {
            assert_eq!(actual, Some(expected), "app.windows[0].{field}");
        }
        assert!(w.visible, "the dashboard opens visible on start");
    }

    #[test]
    fn the_dashboard_page_is_embedded() {
        let context = context();
        let cases = [
            ("index.html", "<h1>OmniClaw</h1>"),
            ("app.js", "getVersion"),
            ("style.css", "font-family"),
        ];
        for (asset, needle) in cases {
            let key = tauri::utils::assets::AssetKey::from(asset);
            let bytes = context
                .assets()
                .get(&key)
                .unwrap_or_else(|| panic!("ui/{asset} is not embedded"));
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                text.contains(needle),
                "ui/{asset} should contain {needle:?}"
            );
        }
    }

    #[test]
    fn bundling_is_off_but_icons_are_listed() {
        let config = config();
        assert!(!config.bundle.active, "bundle.active stays false");
        for icon in ["icons/32x32.png", "icons/128x128.png", "icons/icon.png"] {
            assert!(
                config.bundle.icon.iter().any(|listed| listed == icon),
                "bundle.icon lists {icon}"
            );
        }
    }
}
