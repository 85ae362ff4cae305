//! Build script of the desktop shell: validates the Tauri config at the
//! workspace root, generates the permission (ACL) manifests and embeds the app
//! metadata. A broken config fails the build here instead of at start-up.

fn main() {
    let attributes = tauri_build::Attributes::new().config_path("../tauri.conf.json");
    if let Err(error) = tauri_build::try_build(attributes) {
        // `cargo:warning` lines are shown even when the build script fails.
        println!("cargo:warning=tauri build step failed: {error:#}");
        eprintln!("error: tauri build step failed (check tauri.conf.json at the workspace root and icons/): {error:#}");
        std::process::exit(1);
    }
}
