//! Who watches the watcher: a rescue profile that cannot look after its
//! targets — one names no profile here, or it shares something with one
//! (a port, its state dir or another path, the gateway token, the
//! Telegram bot) and so goes down, or is locked out, with it. Shown by
//! `status` and `doctor`, each with its fix.

use omniclaw_core::env::EnvSnapshot;
use omniclaw_gateway::profile::{Overrides, PASSWORD_ENV, TOKEN_ENV};
use omniclaw_gateway::Auth;
use omniclaw_os::profiles::{ConfigState, ProfileRecord};
use omniclaw_os::secrets::{Scope, SecretName, SecretStore};

use super::audit::{command_of, Audit, Problem};
use super::target::{credentials_of, resolved_of};

/// Every problem of every rescue profile (one whose config names
/// `rescue.targets`), in profile order.
pub fn problems(a: &Audit, env: &EnvSnapshot, store: &dyn SecretStore) -> Vec<Problem> {
    // A token exported in this shell would make every profile's the same.
    let env = EnvSnapshot::from_vars(
        env.iter()
            .filter(|(k, _)| *k != TOKEN_ENV && *k != PASSWORD_ENV),
    );
    let mut out = Vec::new();
    for rescue in &a.inv.profiles {
        let ConfigState::Valid { loaded, .. } = &rescue.config else {
            continue;
        };
        let targets = &loaded.config.rescue.targets;
        let cmd = command_of(&rescue.label);
        for t in targets {
            let Some(target) = a.inv.profiles.iter().find(|p| p.profile == *t && p.set_up) else {
                let rest: Vec<String> = targets
                    .iter()
                    .filter(|o| *o != t)
                    .map(|o| format!("{:?}", o.name()))
                    .collect();
                out.push(Problem {
                    kind: "rescueTargetMissing",
                    message: format!(
                        "{}'s rescue.targets names {t}, which is no profile here: there is nothing to watch",
                        rescue.label
                    ),
                    fix: format!(
                        "set it up (`omniclaw --profile {t} setup`), or drop it: `{cmd} config set rescue.targets '[{}]'`",
                        rest.join(", ")
                    ),
                    profiles: vec![rescue.label.clone()],
                });
                continue;
            };
            out.extend(shared(a, rescue, target, &env, store));
        }
    }
    out
}

/// What `rescue` shares with its target `target`.
fn shared(
    a: &Audit,
    rescue: &ProfileRecord,
    target: &ProfileRecord,
    env: &EnvSnapshot,
    store: &dyn SecretStore,
) -> Vec<Problem> {
    let (r, t) = (rescue.label.as_str(), target.label.as_str());
    let pair = vec![r.to_string(), t.to_string()];
    let shares = |what: String, fix: String| {
        Problem {
        kind: "rescueShares",
        message: format!(
            "rescue {r} shares {what} with its target {t}: it would go down, or be locked out, with it"
        ),
        fix,
        profiles: pair.clone(),
    }
    };
    // Ports, paths and a bot token written in both configs: the plan has
    // compared them already.
    let mut out: Vec<Problem> = a
        .plan
        .conflicts
        .iter()
        .filter(|c| {
            let (x, y) = c.instances();
            (x == r && y == t) || (x == t && y == r)
        })
        .map(|c| {
            shares(
                format!("rescue {r} is not isolated from its target {t} ({c})"),
                c.fix(),
            )
        })
        .collect();
    let cmd = command_of(r);
    let token = |p: &ProfileRecord| {
        let resolved = resolved_of(p, &a.resolved);
        match credentials_of(&resolved, &p.config, &Overrides::default(), env, store) {
            Ok(Auth::Token(s) | Auth::Password(s)) => Some(s),
            _ => None,
        }
    };
    if let Some(mine) = token(rescue) {
        if token(target).as_ref() == Some(&mine) {
            out.push(shares(
                format!("rescue {r} shares its gateway token with its target {t}"),
                format!(
                    "give {r} its own: `openssl rand -hex 32 | {cmd} secrets set gateway.auth.token`, then restart its gateway (`{cmd} gateway restart`)"
                ),
            ));
        }
    }
    let bot = |p: &ProfileRecord| {
        let scope = Scope::new(p.profile.name(), p.state_dir.clone());
        store
            .get(&scope, SecretName::TelegramBotToken)
            .ok()
            .flatten()
    };
    if let Some(mine) = bot(rescue) {
        if bot(target).as_ref() == Some(&mine) {
            out.push(shares(
                format!("rescue {r} shares its Telegram bot token with its target {t}"),
                format!(
                    "create another bot with @BotFather and give {r} its token: `{cmd} secrets set channels.telegram.botToken` (read from stdin)"
                ),
            ));
        }
    }
    out
}
