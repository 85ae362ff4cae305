//! Whether an installed OmniClaw service still fits: its profile, its
//! port, its binary, and what `gateway install` would write now. Read by
//! `gateway status --deep` and by the desktop app, which offers "Update
//! service" for a service that no longer fits.

use std::fs;
use std::path::Path;

use omniclaw_core::paths::{self, Resolved};
use omniclaw_core::service::{self, Platform, ServiceFile, ServiceSpec};

use crate::profiles::{self, ConfigState};

/// What `gateway install` would write now, for `--deep` to compare an
/// installed service with: the binary it picks, and for the current
/// profile the whole spec.
#[derive(Clone, Copy, Default)]
pub struct Now<'a> {
    pub binary: Option<&'a Path>,
    pub resolved: Option<&'a Resolved>,
}

/// Facts about one installed OmniClaw service file, and why it is stale.
pub fn inspect(
    platform: Platform,
    home: &Path,
    profile: &omniclaw_core::profile::Profile,
    command_file: &Path,
    now: Now<'_>,
) -> (service::Installed, Vec<service::Stale>) {
    let text = fs::read(command_file)
        .ok()
        .and_then(|b| ServiceFile::decode(&b))
        .unwrap_or_default();
    let installed = service::parse(platform, &text);
    let state_dir = installed
        .state_dir
        .clone()
        .unwrap_or_else(|| paths::default_state_dir(home, profile));
    let config_path = installed
        .config_path
        .clone()
        .unwrap_or_else(|| state_dir.join(paths::CONFIG_FILE));
    let config_port = match profiles::read_config(&config_path) {
        ConfigState::Valid { loaded, .. } => Some(service::config_port(&loaded.config)),
        _ => None,
    };
    let facts = service::Facts {
        profile: profile.clone(),
        state_dir_exists: state_dir.is_dir(),
        binary_exists: installed.binary.as_ref().is_some_and(|b| b.is_file()),
        config_port,
    };
    let mut stale = service::stale_reasons(&installed, &facts);
    // The port `drift` leaves to `stale_reasons`; the spec's is not compared.
    let spec = now.resolved.zip(now.binary).map(|(r, b)| {
        ServiceSpec::for_profile(r, b, installed.port.unwrap_or(paths::DEFAULT_GATEWAY_PORT))
    });
    if facts.state_dir_exists {
        stale.extend(service::drift(&installed, now.binary, spec.as_ref()));
    }
    if let Some(spec) = spec.filter(|_| stale.is_empty()) {
        stale.extend(service::outdated(&spec, platform, &text));
    }
    (installed, stale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use omniclaw_core::env::EnvSnapshot;
    use omniclaw_core::service::Stale;

    #[test]
    #[cfg_attr(
        windows,
        ignore = "a systemd unit names its binary by a Unix absolute path"
    )]
    fn a_unit_install_would_write_again_fits_and_another_binary_does_not() {
        let home = tempfile::tempdir().expect("temp home");
        // The home by the variable every platform reads first.
        let env = EnvSnapshot::from_vars([("OMNICLAW_HOME", home.path().to_str().expect("utf-8"))]);
        let resolved = paths::resolve(paths::Inputs {
            profile_flag: Some("main"),
            env: &env,
            cwd: None,
        })
        .expect("profile main");
        fs::create_dir_all(&resolved.state_dir).expect("state dir");
        let bin = home.path().join("bin/omniclaw");
        fs::create_dir_all(bin.parent().expect("bin dir")).expect("bin dir");
        fs::write(&bin, "").expect("binary");
        let spec = ServiceSpec::for_profile(&resolved, &bin, paths::DEFAULT_GATEWAY_PORT);
        let file = &spec.render(Platform::Systemd).expect("renders")[0];
        fs::create_dir_all(file.path.parent().expect("unit dir")).expect("unit dir");
        fs::write(&file.path, file.bytes()).expect("unit");
        let check = |now_bin: &Path| {
            let now = Now {
                binary: Some(now_bin),
                resolved: Some(&resolved),
            };
            inspect(
                Platform::Systemd,
                home.path(),
                &resolved.profile,
                &file.path,
                now,
            )
            .1
        };
        assert_eq!(check(&bin), Vec::<Stale>::new());
        let other = home.path().join("other/omniclaw");
        assert_eq!(
            check(&other),
            vec![Stale::BinaryDiffers {
                service: bin.clone(),
                now: other.clone()
            }]
        );
        // Edited by hand: same command, another file.
        let mut edited = file.contents.clone();
        edited.push_str("# edited\n");
        fs::write(&file.path, edited).expect("unit");
        assert_eq!(check(&bin), vec![Stale::Outdated]);
    }
}
