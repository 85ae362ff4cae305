//! The tray icon and its menu.
//!
//! Linux trays (StatusNotifierItem / AppIndicator) show no left-click menu,
//! so every action lives in the right-click menu. Menu item ids are typed as
//! [`TrayAction`] so a click is matched against an enum, never a loose string.

use tauri::image::Image;
use tauri::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Runtime};

use crate::window;

/// Id of the one tray icon the app owns.
pub const TRAY_ID: &str = "omniclaw";

/// Tooltip shown when hovering the tray icon.
pub const TOOLTIP: &str = "OmniClaw";

/// The tray icon while every gateway is healthy.
const ICON_OK: Image<'static> = tauri::include_image!("../icons/tray-ok.png");

/// What a tray menu item does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Show and focus the dashboard window.
    OpenDashboard,
    /// Leave the app.
    Quit,
}

impl TrayAction {
    /// Every action, in menu order.
    pub const ALL: [TrayAction; 2] = [TrayAction::OpenDashboard, TrayAction::Quit];

    /// The menu item id that carries this action.
    pub fn id(self) -> &'static str {
        match self {
            TrayAction::OpenDashboard => "open-dashboard",
            TrayAction::Quit => "quit",
        }
    }

    /// The label the user sees.
    pub fn label(self) -> &'static str {
        match self {
            TrayAction::OpenDashboard => "Open dashboard",
            TrayAction::Quit => "Quit",
        }
    }

    /// The action behind a clicked menu item id, if it is one of ours.
    pub fn from_id(id: &str) -> Option<TrayAction> {
        TrayAction::ALL.into_iter().find(|action| action.id() == id)
    }
}

/// Builds the tray menu: "Open dashboard", a separator, "Quit".
fn menu<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<Menu<R>> {
    let item = |action: TrayAction| {
        MenuItem::with_id(app, action.id(), action.label(), true, None::<&str>)
    };
    let open = item(TrayAction::OpenDashboard)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let quit = item(TrayAction::Quit)?;
    Menu::with_items(app, &[&open, &separator, &quit])
}

/// Carries out a tray menu click.
fn on_menu_event<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
    match TrayAction::from_id(event.id().as_ref()) {
        Some(TrayAction::OpenDashboard) => {
            if let Err(error) = window::show_dashboard(app) {
                eprintln!("omniclaw-desktop: could not open the dashboard: {error}");
            }
        }
        Some(TrayAction::Quit) => app.exit(0),
        None => eprintln!(
            "omniclaw-desktop: ignoring a click on unknown tray menu item {:?}",
            event.id().as_ref()
        ),
    }
}

/// Puts the OmniClaw icon with its menu into the system tray. The returned
/// handle is also kept by the app (look it up with `app.tray_by_id(TRAY_ID)`).
pub fn install<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<TrayIcon<R>> {
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(ICON_OK)
        .tooltip(TOOLTIP)
        .menu(&menu(app)?)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu_event)
        .build(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str, expected: Option<TrayAction>) {
        assert_eq!(TrayAction::from_id(id), expected, "menu item id {id:?}");
    }

    #[test]
    fn menu_ids_map_to_actions() {
        let cases = [
            ("open-dashboard", Some(TrayAction::OpenDashboard)),
            ("quit", Some(TrayAction::Quit)),
            ("Quit", None),
            ("open dashboard", None),
            ("", None),
        ];
        for (id, expected) in cases {
            check(id, expected);
        }
    }

    #[test]
    fn every_action_round_trips_and_has_a_distinct_label() {
        for action in TrayAction::ALL {
            check(action.id(), Some(action));
        }
        let labels: Vec<_> = TrayAction::ALL.iter().map(|a| a.label()).collect();
        assert_eq!(labels, ["Open dashboard", "Quit"]);
    }

    /// Width, height, bit depth and colour type from a PNG's IHDR chunk.
    fn png_header(bytes: &[u8]) -> (u32, u32, u8, u8) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR", "first chunk is IHDR");
        let be = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        (be(16), be(20), bytes[24], bytes[25])
    }

    #[test]
    fn icons_are_rgba_pngs_of_the_right_size() {
        // Tauri only accepts 8-bit RGBA (colour type 6) PNGs.
        let cases: [(&str, &[u8], u32); 6] = [
            ("icon.png", include_bytes!("../../icons/icon.png"), 512),
            (
                "128x128.png",
                include_bytes!("../../icons/128x128.png"),
                128,
            ),
            ("32x32.png", include_bytes!("../../icons/32x32.png"), 32),
            ("tray-ok.png", include_bytes!("../../icons/tray-ok.png"), 64),
            (
                "tray-warning.png",
                include_bytes!("../../icons/tray-warning.png"),
                64,
            ),
            (
                "tray-error.png",
                include_bytes!("../../icons/tray-error.png"),
                64,
            ),
        ];
        for (name, bytes, side) in cases {
            assert_eq!(png_header(bytes), (side, side, 8, 6), "icons/{name}");
        }
    }

    #[test]
    fn the_tray_icon_is_decoded_at_its_size() {
        assert_eq!((ICON_OK.width(), ICON_OK.height()), (64, 64));
        assert_eq!(ICON_OK.rgba().len(), 64 * 64 * 4);
    }
}
