//! `omniclaw-desktop`: the OmniClaw tray app.
//!
//! A thin shell around Tauri: it runs gateways in-process (embedded) through
//! the gateway host, shows every profile in the tray menu and the dashboard
//! (the web UI in `ui/`), and stays in the tray with no window open until
//! "Quit", which stops the embedded gateways gracefully (services keep
//! running). One instance per user: a second launch focuses the first.
//! Labels, enabled states and routing come from `omniclaw_core::tray`; this
//! binary must never grow domain logic of its own, and never hands its own
//! environment to a gateway.

#![deny(clippy::unwrap_used)]
// Release builds on Windows are GUI apps and must not open a console window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod assistant;
mod changes;
mod chat;
mod commands;
mod desktop;
mod link;
mod login;
mod markdown;
mod memory;
mod onboarding;
mod refresh;
mod remotes;
mod settings;
mod tray;
mod view;
mod window;

use std::sync::Arc;

use anyhow::Context as _;
use tauri::{Manager, RunEvent};

use crate::desktop::Desktop;

/// Start without showing the dashboard (what the login item passes).
pub const HIDDEN_FLAG: &str = "--hidden";

/// The app's embedded assets and `src-tauri/tauri.conf.json`.
fn context() -> tauri::Context<tauri::Wry> {
    tauri::generate_context!()
}

/// Why there is no graphical session to show a tray in, if there is none:
/// on Linux and the BSDs that is neither `DISPLAY` nor `WAYLAND_DISPLAY`.
fn missing_display(display: Option<&str>, wayland: Option<&str>) -> Option<String> {
    let set = |v: Option<&str>| v.is_some_and(|v| !v.is_empty());
    if !cfg!(all(unix, not(target_os = "macos"))) || set(display) || set(wayland) {
        return None;
    }
    Some(
        "no graphical session: DISPLAY and WAYLAND_DISPLAY are unset; start the tray app from a \
         desktop session, or run gateways headless with `omniclaw [--profile NAME] gateway`"
            .to_string(),
    )
}

fn run() -> anyhow::Result<()> {
    let var = |k: &str| std::env::var(k).ok();
    if let Some(problem) =
        missing_display(var("DISPLAY").as_deref(), var("WAYLAND_DISPLAY").as_deref())
    {
        anyhow::bail!(problem);
    }
    let args: Vec<String> = std::env::args_os()
        .filter_map(|a| a.into_string().ok())
        .collect();
    let hidden = args.iter().any(|a| a == HIDDEN_FLAG);
    // Embedded gateways hold a descriptor per client: lift the soft
    // open-file limit (often 1024) to the hard one.
    let _ = omniclaw_os::limits::raise_open_files();
    let env = desktop::gateway_env(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    );
    let store = Box::new(omniclaw_os::secrets::Routed::system(false));
    let desktop =
        Arc::new(Desktop::new(env, store).context("cannot find the home directory (set HOME)")?);
    let for_setup = Arc::clone(&desktop);
    let builder = tauri::Builder::default()
        // First, so a second launch hands over before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            tray::navigate(app, "gateways");
        }))
        .plugin(tauri_plugin_notification::init())
        .manage(Arc::clone(&desktop))
        .manage(window::PendingPage::default())
        .manage(onboarding::Wizard::default())
        .manage(assistant::AssistantWizard::default())
        .invoke_handler(tauri::generate_handler![
            commands::dashboard,
            commands::gateway_action,
            commands::set_autostart,
            commands::set_start_with_app,
            commands::apply_fix,
            commands::open_folder,
            commands::setup_profile,
            commands::initial_page,
            commands::decide_pairing,
            commands::dismiss,
            commands::copy_token,
            commands::copy_path,
            commands::roll_back,
            commands::use_secrets_file,
            commands::set_daily_cap,
            commands::remote_logs,
            commands::remote_test,
            commands::remote_logs_target,
            chat::chat_open,
            chat::chat_close,
            chat::chat_send,
            chat::chat_abort,
            chat::chat_new_session,
            chat::chat_target,
            chat::resolve_approval,
            chat::open_link,
            onboarding::onboard_plan,
            onboarding::onboard_check_token,
            onboarding::onboard_wait_operator,
            onboarding::onboard_stop_wait,
            onboarding::onboard_cancel,
            onboarding::onboard_finish,
            assistant::assistant_providers,
            assistant::assistant_models,
            assistant::assistant_test,
            assistant::assistant_cancel,
            assistant::assistant_finish,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            app.manage(login::Login::for_this_app(&app.package_info().name));
            let desktop = for_setup;
            let view = view::gather(&desktop, false);
            tray::install(&handle, &omniclaw_core::tray::menu(&view.snapshot))?;
            // A first start (no profile yet) opens the assistant wizard, even
            // at login: without it the app has nothing to run.
            if view.snapshot.gateways.is_empty() {
                window::show_dashboard(&handle, "assistant")?;
            } else if !hidden {
                window::show_dashboard(&handle, "gateways")?;
            }
            remotes::keep_tunnels(&desktop);
            refresh::spawn(handle.clone(), Arc::clone(&desktop));
            desktop.serve_control();
            tauri::async_runtime::spawn(async move { desktop.start_marked().await });
            Ok(())
        });
    // The windowing toolkit panics when it cannot reach the display named by
    // DISPLAY; turn that into an error like any other.
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.build(context())))
        .map_err(|_| anyhow::anyhow!("cannot open the display (DISPLAY={:?}, WAYLAND_DISPLAY={:?}): is the graphical session running?", var("DISPLAY").unwrap_or_default(), var("WAYLAND_DISPLAY").unwrap_or_default()))?;
    let app = built.context("the OmniClaw desktop app failed to start")?;
    app.run(move |handle, event| match event {
        // Closing the last window must not quit a tray app; only "Quit" does.
        RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        RunEvent::WindowEvent {
            label,
            event: tauri::WindowEvent::Destroyed,
            ..
        } if label == window::MAIN => {
            // Nobody shows a chat any more: stop pacing updates for it.
            handle.state::<Arc<Desktop>>().links.watch(None);
            let app = handle.clone();
            memory::release_after_dashboard(move || app.get_webview_window(window::MAIN).is_none());
        }
        RunEvent::Exit => {
            let desktop = handle.state::<Arc<Desktop>>().inner().clone();
            tauri::async_runtime::block_on(desktop.shutdown());
        }
        _ => {}
    });
    Ok(())
}

/// What `omniclaw-desktop --version` prints: its name and version, the
/// form `omniclaw --version` reads the app's version from.
fn version_line() -> String {
    format!("omniclaw-desktop {}", env!("CARGO_PKG_VERSION"))
}

fn main() {
    // Answered before anything starts: no display, no tray, no lock.
    if std::env::args()
        .skip(1)
        .any(|a| a == "--version" || a == "-V")
    {
        println!("{}", version_line());
        return;
    }
    memory::lean_start();
    if let Err(error) = run() {
        eprintln!("omniclaw-desktop: error: {error:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_line_names_the_app_and_its_version() {
        assert_eq!(
            version_line(),
            format!("omniclaw-desktop {}", context().package_info().version)
        );
    }

    #[test]
    fn a_session_needs_a_display() {
        let cases = [
            (Some(":0"), None, false),
            (None, Some("wayland-0"), false),
            (Some(":0"), Some("wayland-0"), false),
            (None, None, true),
            (Some(""), Some(""), true),
        ];
        for (display, wayland, missing) in cases {
            let got = missing_display(display, wayland);
            let expected = missing && cfg!(all(unix, not(target_os = "macos")));
            assert_eq!(
                got.is_some(),
                expected,
                "DISPLAY={display:?} WAYLAND_DISPLAY={wayland:?}"
            );
            if let Some(message) = got {
                assert!(
                    message.contains("omniclaw [--profile NAME] gateway"),
                    "{message}"
                );
            }
        }
    }

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
        // Built by the app at start unless `--hidden` (the login item) says
        // otherwise, so a launch at login costs no web view.
        assert!(!w.create, "the dashboard is created on demand");
        assert!(w.visible, "once created, the dashboard shows");
    }

    #[test]
    fn the_dashboard_page_is_embedded() {
        let context = context();
        let cases = [
            ("index.html", "<h1>OmniClaw</h1>"),
            ("app.js", "gateway_action"),
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
    fn the_page_may_reach_nothing_but_the_app() {
        let config = config();
        let csp = config
            .app
            .security
            .csp
            .as_ref()
            .map(|c| c.to_string())
            .expect("a content security policy");
        // The page talks to the app over IPC only: no socket to a gateway,
        // no inline or remote script, no frame, no plugin.
        for needed in [
            "default-src 'self'",
            "script-src 'self'",
            "connect-src 'self' ipc: http://ipc.localhost;",
            "object-src 'none'",
            "frame-src 'none'",
        ] {
            assert!(csp.contains(needed), "{needed:?} missing from {csp}");
        }
        for banned in [
            "ws:",
            "127.0.0.1",
            "localhost:",
            "unsafe-inline",
            "unsafe-eval",
            "*",
        ] {
            assert!(!csp.contains(banned), "{banned:?} in {csp}");
        }
    }

    #[test]
    fn bundles_carry_every_icon_size_and_the_licence() {
        let config = config();
        assert!(config.bundle.active, "scripts/package.sh bundles");
        for size in [
            "16x16", "24x24", "32x32", "48x48", "64x64", "128x128", "256x256",
        ] {
            let icon = format!("../icons/{size}.png");
            assert!(
                config.bundle.icon.contains(&icon),
                "bundle.icon lists {icon}"
            );
        }
        for icon in [
            "../icons/icon.png",
            "../icons/icon.ico",
            "../icons/icon.icns",
        ] {
            assert!(
                config.bundle.icon.iter().any(|listed| listed == icon),
                "bundle.icon lists {icon}"
            );
        }
        assert_eq!(
            config.bundle.license_file.as_deref(),
            Some(std::path::Path::new("../LICENSE"))
        );
    }
}
