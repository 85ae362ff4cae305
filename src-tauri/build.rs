//! Build script of the desktop shell: validates the Tauri config
//! (`tauri.conf.json` beside it, merged with `tauri.<os>.conf.json`),
//! generates the permission (ACL) manifests and embeds the app metadata. A broken config fails the build here instead of at start-up.

fn main() {
    let attributes = tauri_build::Attributes::new();
    if let Err(error) = tauri_build::try_build(attributes) {
        // `cargo:warning` lines are shown even when the build script fails.
        println!("cargo:warning=tauri build step failed: {error:#}");
        eprintln!("error: tauri build step failed (check src-tauri/tauri.conf.json, src-tauri/tauri.<os>.conf.json and icons/): {error:#}");
        std::process::exit(1);
    }
}
