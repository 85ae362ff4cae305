//! The tray icon: renders the core's menu model and routes clicks.
//!
//! The menu itself (labels, enabled flags, ids, icon variant) is decided by
//! `omniclaw_core::tray::menu`; this module only turns it into Tauri menu
//! items. When a new model has the same shape and the same submenu titles
//! as the one on screen, items are updated in place (label, enabled,
//! checked), so an open menu does not flicker and D-Bus menu readers see
//! property updates; otherwise the menu is rebuilt (a submenu's own title
//! does not reach the Linux tray's exported menu when changed in place). Linux trays (StatusNotifierItem) show no left-click menu, so
//! every action is in the right-click menu. Clicks never block: actions run
//! on the async runtime. Approve / Deny of a pending Telegram pairing
//! request go through `Desktop::decide_pairing`, like the dashboard's
//! buttons and `omniclaw pairing approve|deny`. A remote gateway's
//! "Chat…" and "Logs…" open the dashboard on it; "Test connection" tells
//! how it went in a notification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use omniclaw_core::heal::StopBy;
use omniclaw_core::rescue::PairingCode;
use omniclaw_core::tray::{self as model, Icon, Item, ItemId};
use tauri::image::Image;
use tauri::menu::{
    CheckMenuItem, Menu, MenuEvent, MenuItem, MenuItemKind, PredefinedMenuItem, Submenu,
};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Wry};

use crate::desktop::{self, Desktop};
use crate::window;

/// Id of the one tray icon the app owns.
pub const TRAY_ID: &str = "omniclaw";

const ICON_IDLE: Image<'static> = tauri::include_image!("../icons/tray-idle.png");
const ICON_OK: Image<'static> = tauri::include_image!("../icons/tray-ok.png");
const ICON_WARNING: Image<'static> = tauri::include_image!("../icons/tray-warning.png");
const ICON_ERROR: Image<'static> = tauri::include_image!("../icons/tray-error.png");

fn image(icon: Icon) -> Image<'static> {
    match icon {
        Icon::Idle => ICON_IDLE,
        Icon::Ok => ICON_OK,
        Icon::Warning => ICON_WARNING,
        Icon::Error => ICON_ERROR,
    }
}

/// What is on screen now, to update in place.
#[derive(Default)]
pub struct Rendered {
    shape: Vec<Option<ItemId>>,
    titles: Vec<String>,
    handles: HashMap<ItemId, MenuItemKind<Wry>>,
    icon: Option<Icon>,
    tooltip: String,
}

/// The renderer's state, managed by the app.
pub type RenderState = Mutex<Rendered>;

/// Puts the icon with the menu for `menu` into the tray.
pub fn install(app: &AppHandle<Wry>, menu: &model::Menu) -> tauri::Result<TrayIcon<Wry>> {
    let mut rendered = Rendered::default();
    let built = build(app, menu, &mut rendered)?;
    let tray = TrayIconBuilder::with_id(TRAY_ID)
        .icon(image(menu.icon))
        .tooltip(&menu.tooltip)
        .menu(&built)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu_event)
        .build(app)?;
    rendered.icon = Some(menu.icon);
    rendered.tooltip = menu.tooltip.clone();
    app.manage::<RenderState>(Mutex::new(rendered));
    Ok(tray)
}

/// Shows `menu`: in place when only labels and states changed.
pub fn render(app: &AppHandle<Wry>, menu: &model::Menu) -> tauri::Result<()> {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return Ok(());
    };
    let state = app.state::<RenderState>();
    let mut rendered = state.lock().unwrap_or_else(|p| p.into_inner());
    if rendered.shape == menu.shape() && rendered.titles == titles(&menu.items) {
        update(&menu.items, &rendered.handles)?;
    } else {
        let mut fresh = Rendered::default();
        let built = build(app, menu, &mut fresh)?;
        tray.set_menu(Some(built))?;
        rendered.shape = fresh.shape;
        rendered.titles = fresh.titles;
        rendered.handles = fresh.handles;
    }
    if rendered.icon != Some(menu.icon) {
        tray.set_icon(Some(image(menu.icon)))?;
        rendered.icon = Some(menu.icon);
    }
    if rendered.tooltip != menu.tooltip {
        tray.set_tooltip(Some(&menu.tooltip))?;
        rendered.tooltip = menu.tooltip.clone();
    }
    Ok(())
}

/// The menu id of "Set up assistant…", an item of the app's own (the
/// core's menu model knows the gateways, not the app's wizards).
const SET_UP_ASSISTANT: &str = "set-up-assistant";

fn build(
    app: &AppHandle<Wry>,
    menu: &model::Menu,
    rendered: &mut Rendered,
) -> tauri::Result<Menu<Wry>> {
    let mut items = build_items(app, &menu.items, &mut rendered.handles)?;
    // "Set up assistant…" sits just above "Set up rescue bot…".
    let at = menu
        .items
        .iter()
        .position(|i| i.id() == Some(&ItemId::SetUpRescue))
        .unwrap_or(items.len());
    items.insert(
        at,
        MenuItemKind::MenuItem(MenuItem::with_id(
            app,
            SET_UP_ASSISTANT,
            "Set up assistant…",
            true,
            None::<&str>,
        )?),
    );
    let refs: Vec<&dyn tauri::menu::IsMenuItem<Wry>> = items.iter().map(|i| i as _).collect();
    rendered.shape = menu.shape();
    rendered.titles = titles(&menu.items);
    Menu::with_items(app, &refs)
}

/// The titles of the submenus, in order.
fn titles(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Submenu { label, .. } => Some(label.clone()),
            _ => None,
        })
        .collect()
}

fn build_items(
    app: &AppHandle<Wry>,
    items: &[Item],
    handles: &mut HashMap<ItemId, MenuItemKind<Wry>>,
) -> tauri::Result<Vec<MenuItemKind<Wry>>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let kind = match item {
            Item::Separator => MenuItemKind::Predefined(PredefinedMenuItem::separator(app)?),
            Item::Action { id, label, enabled } => MenuItemKind::MenuItem(MenuItem::with_id(
                app,
                id.to_string(),
                label,
                *enabled,
                None::<&str>,
            )?),
            Item::Check { id, label, checked } => MenuItemKind::Check(CheckMenuItem::with_id(
                app,
                id.to_string(),
                label,
                true,
                *checked,
                None::<&str>,
            )?),
            Item::Submenu { id, label, items } => {
                let children = build_items(app, items, handles)?;
                let refs: Vec<&dyn tauri::menu::IsMenuItem<Wry>> =
                    children.iter().map(|i| i as _).collect();
                MenuItemKind::Submenu(Submenu::with_id_and_items(
                    app,
                    id.to_string(),
                    label,
                    true,
                    &refs,
                )?)
            }
        };
        if let Some(id) = item.id() {
            handles.insert(id.clone(), kind.clone());
        }
        out.push(kind);
    }
    Ok(out)
}

fn update(items: &[Item], handles: &HashMap<ItemId, MenuItemKind<Wry>>) -> tauri::Result<()> {
    for item in items {
        let Some(handle) = item.id().and_then(|id| handles.get(id)) else {
            continue;
        };
        match (item, handle) {
            (Item::Action { label, enabled, .. }, MenuItemKind::MenuItem(h)) => {
                if h.text()? != *label {
                    h.set_text(label)?;
                }
                if h.is_enabled()? != *enabled {
                    h.set_enabled(*enabled)?;
                }
            }
            (Item::Check { label, checked, .. }, MenuItemKind::Check(h)) => {
                if h.text()? != *label {
                    h.set_text(label)?;
                }
                if h.is_checked()? != *checked {
                    h.set_checked(*checked)?;
                }
            }
            // Same title (see `render`): only the children can have changed.
            (Item::Submenu { items, .. }, MenuItemKind::Submenu(_)) => update(items, handles)?,
            _ => {}
        }
    }
    Ok(())
}

/// Carries out a tray menu click.
fn on_menu_event(app: &AppHandle<Wry>, event: MenuEvent) {
    let raw = event.id().as_ref().to_string();
    if raw == SET_UP_ASSISTANT {
        navigate(app, "assistant");
        return;
    }
    let id: ItemId = match raw.parse() {
        Ok(id) => id,
        Err(e) => {
            eprintln!("omniclaw-desktop: ignoring a click: {e}");
            return;
        }
    };
    let desktop = app.state::<Arc<Desktop>>().inner().clone();
    match id {
        ItemId::GatewayAction(action, name) => {
            tauri::async_runtime::spawn(async move {
                if let Err(e) = desktop.act(&name, action, Some(StopBy::Tray)).await {
                    eprintln!("omniclaw-desktop: {} {name}: {e}", action.as_str());
                }
            });
        }
        ItemId::ApprovePairing(name, code) => decide_pairing(desktop, name, code, true),
        ItemId::DenyPairing(name, code) => decide_pairing(desktop, name, code, false),
        ItemId::OpenLogs(name) => open_folder(app, desktop, name, Folder::Logs),
        ItemId::OpenConfigFolder(name) => open_folder(app, desktop, name, Folder::Config),
        ItemId::RefusedEdit(_) => navigate(app, "gateways"),
        ItemId::Chat(name) | ItemId::Approvals(name) => {
            desktop.links.set_target(&name);
            navigate(app, "chat");
        }
        ItemId::RemoteChat(name) => {
            desktop.links.set_target(&name);
            navigate(app, "chat");
        }
        ItemId::RemoteLogs(name) => {
            desktop.remotes.set_logs_target(&name);
            navigate(app, "gateways");
        }
        ItemId::RemoteTest(name) => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let outcome = crate::remotes::test(&desktop, &name).await;
                crate::refresh::notify(&app, model::Notice::RemoteTested { name, outcome });
            });
        }
        ItemId::Warning(_) => navigate(app, "ports"),
        ItemId::SetUpRescue => navigate(app, "setup"),
        ItemId::OpenDashboard => navigate(app, "gateways"),
        ItemId::UpdateService(name) => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let result = desktop.update_service(&name).await;
                if let Err(e) = &result {
                    eprintln!("omniclaw-desktop: update service of {name}: {e}");
                }
                crate::refresh::notify(&app, model::Notice::ServiceUpdated { name, result });
            });
        }
        ItemId::StartAtLogin => {
            if let Err(e) = toggle_autostart(app) {
                eprintln!("omniclaw-desktop: {e}");
            }
            desktop.changed.notify_one();
        }
        ItemId::Quit => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                desktop.shutdown().await;
                app.exit(0);
            });
        }
        ItemId::Gateway(_)
        | ItemId::Watched(..)
        | ItemId::Spend(_)
        | ItemId::NoGateways
        | ItemId::ServiceDrift(_)
        | ItemId::Versions
        | ItemId::About
        | ItemId::AboutApp
        | ItemId::AboutCli
        | ItemId::AboutGateway(_)
        | ItemId::PairingRequests
        | ItemId::PairingRequest(..)
        | ItemId::Remote(_)
        | ItemId::RemoteTunnel(_)
        | ItemId::RemoteProblem(_) => {}
    }
}

/// Approves or denies a pairing request from the menu; the outcome shows on
/// the gateway's card (activity, or the last error with its fix) and the
/// request leaves the menu once the store changed.
fn decide_pairing(desktop: Arc<Desktop>, name: String, code: PairingCode, approve: bool) {
    tauri::async_runtime::spawn(async move {
        match desktop.decide_pairing(&name, code.as_str(), approve).await {
            Ok(decision) => {
                if let Err(why) = decision.told {
                    eprintln!(
                        "omniclaw-desktop: {name}: the decision on {} stands, but they were not told: {why}",
                        decision.request.who
                    );
                }
            }
            Err(e) => eprintln!("omniclaw-desktop: pairing {code} of {name}: {e}"),
        }
    });
}

/// Shows the dashboard on `page`.
pub fn navigate(app: &AppHandle<Wry>, page: &str) {
    if let Err(e) = window::show_dashboard(app, page) {
        eprintln!("omniclaw-desktop: could not open the dashboard on {page}: {e}");
    }
}

/// Flips "Start at login".
pub fn toggle_autostart(app: &AppHandle<Wry>) -> Result<bool, String> {
    let login = app.state::<crate::login::Login>();
    let on = !login.is_enabled();
    login.set(on)?;
    Ok(on)
}

/// Turns "Start at login" on or off.
pub fn set_autostart(app: &AppHandle<Wry>, on: bool) -> Result<(), String> {
    app.state::<crate::login::Login>().set(on)
}

/// Which folder of a profile to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Logs,
    Config,
}

impl Folder {
    pub fn as_str(self) -> &'static str {
        match self {
            Folder::Logs => "logs",
            Folder::Config => "config",
        }
    }
}

/// How long a file manager opener gets to fail before it counts as
/// having opened the folder (openers hand over and exit 0 at once).
const OPENER_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens `target` (a folder, or a web link) with the platform's opener:
/// the file manager or the browser the user chose. `Err` when nothing
/// could open it (no opener on PATH, or the opener found nothing).
pub async fn open_with_system(target: impl Into<std::ffi::OsString>) -> Result<(), String> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let target: std::ffi::OsString = target.into();
    tauri::async_runtime::spawn_blocking(move || {
        // One argument, no shell: the target is never parsed as a command.
        let mut child = std::process::Command::new(opener)
            .arg(&target)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("{opener}: {e}"))?;
        let start = std::time::Instant::now();
        while start.elapsed() < OPENER_WAIT {
            match child.try_wait() {
                // xdg-open says 3 or 4 when it finds nothing to open with.
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("{opener} ended with {status}")),
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
                Err(e) => return Err(format!("{opener}: {e}")),
            }
        }
        // Still running: a file manager or browser took over. Reap it later.
        std::thread::spawn(move || child.wait());
        Ok(())
    })
    .await
    .map_err(|e| format!("the opener did not finish: {e}"))?
}

/// Opens a profile's logs or config folder from the tray: when no file
/// manager opens it, the dashboard shows the folder's path on the
/// gateway's card instead.
fn open_folder(app: &AppHandle<Wry>, desktop: Arc<Desktop>, name: String, folder: Folder) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        match try_open_folder(&desktop, &name, folder).await {
            Ok(None) => {}
            Ok(Some(_)) => navigate(&app, "gateways"),
            Err(e) => eprintln!("omniclaw-desktop: {e}"),
        }
    });
}

/// Opens `name`'s `folder` with the platform's opener. `Ok(None)`: it
/// opened; `Ok(Some(path))`: nothing could open it (no opener on PATH, or
/// the opener found no file manager), so the path is kept for the card to
/// show, selectable, until the next attempt succeeds.
pub async fn try_open_folder(
    desktop: &Desktop,
    name: &str,
    folder: Folder,
) -> Result<Option<String>, String> {
    let resolved = desktop::resolve(desktop.env(), Some(name)).map_err(|e| e.to_string())?;
    let dir = match folder {
        Folder::Logs => resolved.logs_dir(),
        Folder::Config => resolved
            .config_path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| resolved.state_dir.clone()),
    };
    omniclaw_os::fsx::create_private_dir(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let opened = open_with_system(dir.clone()).await;
    let shown = dir.display().to_string();
    match opened {
        Ok(()) => {
            desktop.unopened_folder(name, folder, None);
            Ok(None)
        }
        Err(why) => {
            desktop.unopened_folder(name, folder, Some((shown.clone(), why)));
            Ok(Some(shown))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let cases: [(&str, &[u8], u32); 7] = [
            (
                "tray-idle.png",
                include_bytes!("../../icons/tray-idle.png"),
                64,
            ),
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

    fn check(icon: Icon, expected_rgba_len: usize) {
        let image = image(icon);
        assert_eq!((image.width(), image.height()), (64, 64), "{icon:?}");
        assert_eq!(image.rgba().len(), expected_rgba_len, "{icon:?}");
    }

    #[test]
    fn every_icon_variant_is_decoded_at_its_size() {
        for icon in [Icon::Idle, Icon::Ok, Icon::Warning, Icon::Error] {
            check(icon, 64 * 64 * 4);
        }
        assert_ne!(ICON_IDLE.rgba(), ICON_OK.rgba());
        assert_ne!(ICON_OK.rgba(), ICON_WARNING.rgba());
        assert_ne!(ICON_WARNING.rgba(), ICON_ERROR.rgba());
    }
}
