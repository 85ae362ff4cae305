//! The rescue command executor: turns a parsed operator command into the
//! reply text by running the `omniclaw` binary with explicit arguments
//! (`--profile <target> gateway restart`, `config set`, `logs -n`, …).
//!
//! Running the CLI rather than calling its code keeps one implementation of
//! every action — the same validation, atomic writes and backups, and the
//! same route to whoever owns a target (its service, the terminal-run
//! process behind the instance lock) — and it works when a target's config
//! is invalid, which is when a rescue bot is needed. The child gets the
//! gateway's minimal child environment ([`ChildEnv`]): what it needs to
//! reach the keychain and the profiles, never the rescue profile's own
//! `OMNICLAW_*` variables (so an explicit `--profile` always speaks about
//! the target) and never a credential. Replies never carry a
//! secret: the CLI redacts config values by key, and every secret value the
//! gateway knows of (its own and every other profile's bot token, gateway
//! token and password, provider keys: [`SecretSource`]) is masked here by
//! value, so a token a target wrote into its log or a misnamed config key
//! reaches neither Telegram nor the rescue assistant's model.

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use omniclaw_core::env::ChildEnv;
use omniclaw_core::profile::Profile;
use omniclaw_core::rescue::{help_text, Command};

/// How long one command may run before it is stopped.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs rescue commands for one rescue profile.
#[derive(Debug, Clone)]
pub struct Executor {
    /// The `omniclaw` binary.
    pub program: PathBuf,
    /// The rescue profile (never a target of itself).
    pub own: Profile,
    /// `rescue.targets`; empty means every other profile.
    pub targets: Vec<Profile>,
    /// The values masked in every reply, read at each command (a token
    /// rotated meanwhile is masked at once).
    pub secrets: Arc<dyn SecretSource>,
    /// The whole environment of each `omniclaw` call.
    pub env: ChildEnv,
}

/// Where the secret values to mask come from.
pub trait SecretSource: Send + Sync {
    fn values(&self) -> Vec<String>;
}

/// A fixed list (a bot's own token; tests).
impl SecretSource for Vec<String> {
    fn values(&self) -> Vec<String> {
        self.clone()
    }
}

/// Several sources, masked together.
impl SecretSource for Vec<Arc<dyn SecretSource>> {
    fn values(&self) -> Vec<String> {
        self.iter().flat_map(|s| s.values()).collect()
    }
}

// Never print a value.
impl fmt::Debug for dyn SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretSource")
    }
}

/// What stands in a reply where a secret was.
pub const MASK: &str = "<redacted>";

/// Values this short are not masked: a secret of 5 characters protects
/// nothing, and masking it would garble every reply it occurs in.
const MIN_MASKED: usize = 6;

/// `text` with every value of `secrets` replaced by [`MASK`], longest
/// first (a secret inside another is masked with it); a bot token's
/// secret half (after `id:`) is masked on its own too, as it shows in
/// URL-encoded or cut log lines.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut values: Vec<&str> = Vec::new();
    for s in secrets {
        values.push(s);
        if let Some((id, half)) = s.split_once(':') {
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
                values.push(half);
            }
        }
    }
    values.retain(|v| v.chars().count() >= MIN_MASKED);
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    values
        .iter()
        .fold(text.to_string(), |t, v| t.replace(v, MASK))
}

/// The outcome of one command: the reply and whether it succeeded (for the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub ok: bool,
    pub reply: String,
}

impl Executor {
    /// Why `command` may not run here (a target outside `rescue.targets`, or the bot's own profile).
    pub fn refuse(&self, command: &Command) -> Option<String> {
        let target = command.target()?;
        if target == &self.own {
            return Some(format!(
                "{target} is this rescue bot's own profile; it acts on other gateways only"
            ));
        }
        if !self.targets.is_empty() && !self.targets.contains(target) {
            return Some(format!(
                "{target} is not a rescue target (targets: {}); add it with `omniclaw --profile {} config set rescue.targets '[…]'`",
                self.target_list(),
                self.own
            ));
        }
        None
    }

    fn target_list(&self) -> String {
        if self.targets.is_empty() {
            "every other profile".to_string()
        } else {
            self.targets
                .iter()
                .map(Profile::name)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// The help text for this bot.
    pub fn help(&self) -> String {
        let mut text = help_text(&self.targets);
        if self.targets.is_empty() {
            text = text.replacen("targets: none", "targets: every other profile", 1);
        }
        text
    }

    /// Runs `command` (already confirmed when it mutates) and returns the reply.
    pub async fn run(&self, command: &Command) -> Done {
        if let Some(why) = self.refuse(command) {
            return Done {
                ok: false,
                reply: why,
            };
        }
        let (title, calls) = self.plan(command);
        if calls.is_empty() {
            return Done {
                ok: true,
                reply: title,
            };
        }
        let mut ok = true;
        let mut parts = Vec::new();
        if !title.is_empty() {
            parts.push(title);
        }
        for args in calls {
            let (success, text) = self.call(&args).await;
            ok &= success;
            parts.push(text);
        }
        Done {
            ok,
            reply: self.mask(&parts.join("\n\n")),
        }
    }

    /// The reply without a call, or the `omniclaw` invocations to make.
    fn plan(&self, command: &Command) -> (String, Vec<Vec<String>>) {
        let on = |p: &Profile, rest: &[&str]| {
            let mut v = vec!["--profile".to_string(), p.name().to_string()];
            v.extend(rest.iter().map(|s| (*s).to_string()));
            v
        };
        match command {
            Command::Hello | Command::Help => (self.help(), vec![]),
            Command::Status if self.targets.is_empty() => {
                (String::new(), vec![vec!["status".into()]])
            }
            // A target's state, then its config's own errors: "invalid"
            // alone does not say what to fix.
            Command::Status => (
                String::new(),
                self.targets
                    .iter()
                    .flat_map(|t| {
                        [
                            on(t, &["gateway", "status"]),
                            on(t, &["config", "validate"]),
                        ]
                    })
                    .collect(),
            ),
            Command::Ports => (String::new(), vec![vec!["ports".into()]]),
            Command::Doctor => (String::new(), vec![vec!["doctor".into()]]),
            Command::Logs { profile, lines } => {
                let n = lines.to_string();
                (String::new(), vec![on(profile, &["logs", "-n", &n])])
            }
            Command::Start { profile } => (String::new(), vec![on(profile, &["gateway", "start"])]),
            // `--by rescue`: the stop is recorded as the rescue bot's.
            Command::Stop { profile } => (
                String::new(),
                vec![on(profile, &["gateway", "stop", "--by", "rescue"])],
            ),
            Command::Restart { profile } => {
                (String::new(), vec![on(profile, &["gateway", "restart"])])
            }
            Command::ConfigGet { profile, path } => {
                (String::new(), vec![on(profile, &["config", "get", path])])
            }
            Command::ConfigSet {
                profile,
                path,
                value,
            } => (
                String::new(),
                vec![on(profile, &["config", "set", path, value])],
            ),
            Command::Rollback { profile } => {
                (String::new(), vec![on(profile, &["config", "rollback"])])
            }
            // The running watch answers these; without one there is none.
            Command::Watch | Command::WatchSet { .. } | Command::Heal { .. } => (
                format!(
                    "this rescue bot does not watch its targets: turn it on with `omniclaw --profile {} config set rescue.watch.enabled true`",
                    self.own
                ),
                vec![],
            ),
        }
    }

    pub(crate) async fn call(&self, args: &[String]) -> (bool, String) {
        let shown = format!("$ omniclaw {}", args.join(" "));
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        self.env.apply(cmd.as_std_mut());
        let output = match cmd.spawn() {
            Ok(child) => tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output()).await,
            Err(e) => {
                return (
                    false,
                    format!("{shown}\ncannot run {}: {e}", self.program.display()),
                )
            }
        };
        match output {
            Err(_) => (
                false,
                format!(
                    "{shown}\nstopped after {} s without an answer",
                    COMMAND_TIMEOUT.as_secs()
                ),
            ),
            Ok(Err(e)) => (false, format!("{shown}\nfailed: {e}")),
            Ok(Ok(out)) => {
                let mut text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
                let err = String::from_utf8_lossy(&out.stderr);
                if !err.trim().is_empty() {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(err.trim_end());
                }
                let code = out.status.code().unwrap_or(-1);
                let mark = match code {
                    0 => "✓".to_string(),
                    n => format!("✗ exit {n}"),
                };
                (
                    code == 0,
                    format!("{shown}  {mark}\n{text}").trim_end().to_string(),
                )
            }
        }
    }

    fn mask(&self, text: &str) -> String {
        mask(text, &self.secrets.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omniclaw_core::rescue::parse;

    fn exec(targets: &[&str]) -> Executor {
        Executor {
            program: PathBuf::from("omniclaw"),
            own: Profile::parse("rescue").expect("valid"),
            targets: targets
                .iter()
                .map(|t| Profile::parse(t).expect("valid"))
                .collect(),
            secrets: Arc::new(vec!["123:SECRET-TOKEN".to_string()]),
            env: ChildEnv::default(),
        }
    }

    #[test]
    fn secrets_are_masked_by_value_longest_first() {
        fn check(text: &str, secrets: &[&str], expected: &str) {
            let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
            assert_eq!(mask(text, &secrets), expected, "{text:?}");
        }
        let token = "777000:AAHsecret-half-of-the-token";
        check(
            &format!("GET /bot{token}/getUpdates failed"),
            &[token],
            "GET /bot<redacted>/getUpdates failed",
        );
        // The secret half alone (URL-encoded colon, a cut line).
        check(
            "bot777000%3AAAHsecret-half-of-the-token",
            &[token],
            "bot777000%3A<redacted>",
        );
        check(
            "key=sk-long-provider-key and sk-long",
            &["sk-long", "sk-long-provider-key"],
            "key=<redacted> and <redacted>",
        );
        // Too short to be worth masking, or empty: left alone.
        check("a b c", &["a", ""], "a b c");
        check("nothing here", &["some-token-value"], "nothing here");
    }

    #[test]
    fn commands_become_explicit_cli_calls() {
        fn check(targets: &[&str], text: &str, expected: &[&[&str]]) {
            let (_, calls) = exec(targets).plan(&parse(text).expect("parses"));
            let expected: Vec<Vec<String>> = expected
                .iter()
                .map(|c| c.iter().map(|s| (*s).to_string()).collect())
                .collect();
            assert_eq!(calls, expected, "{text}");
        }
        check(&[], "/status", &[&["status"]]);
        check(
            &["main", "work"],
            "/status",
            &[
                &["--profile", "main", "gateway", "status"],
                &["--profile", "main", "config", "validate"],
                &["--profile", "work", "gateway", "status"],
                &["--profile", "work", "config", "validate"],
            ],
        );
        check(&[], "/ports", &[&["ports"]]);
        check(&[], "/doctor", &[&["doctor"]]);
        check(
            &[],
            "/logs main 5",
            &[&["--profile", "main", "logs", "-n", "5"]],
        );
        check(
            &[],
            "/restart main",
            &[&["--profile", "main", "gateway", "restart"]],
        );
        check(
            &[],
            "/stop main",
            &[&["--profile", "main", "gateway", "stop", "--by", "rescue"]],
        );
        check(
            &[],
            "/config main set gateway.port 18800",
            &[&[
                "--profile",
                "main",
                "config",
                "set",
                "gateway.port",
                "18800",
            ]],
        );
        check(
            &[],
            "/rollback main",
            &[&["--profile", "main", "config", "rollback"]],
        );
        check(&[], "/help", &[]);
    }

    #[test]
    fn only_targets_are_acted_on() {
        fn check(targets: &[&str], text: &str, refused: bool) {
            let c = parse(text).expect("parses");
            assert_eq!(
                exec(targets).refuse(&c).is_some(),
                refused,
                "{targets:?} {text}"
            );
        }
        check(&[], "/stop main", false);
        check(&[], "/stop rescue", true);
        check(&["main"], "/stop main", false);
        check(&["main"], "/stop work", true);
        check(&["main"], "/status", false);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn commands_run_with_the_minimal_environment_only() {
        use omniclaw_core::env::EnvSnapshot;
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().expect("tempdir");
        let program = dir.path().join("omniclaw");
        std::fs::write(&program, "#!/bin/sh\nexec /usr/bin/env\n").expect("write");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let parent = EnvSnapshot::from_vars([
            ("HOME", "/home/u"),
            ("PATH", "/usr/bin:/bin"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1/bus"),
            ("OMNICLAW_GATEWAY_TOKEN", "gateway-token-value"),
            ("OMNICLAW_PROFILE", "rescue"),
            ("OMNICLAW_SERVICE", "1"),
            ("REMOTE_TOKEN", "remote-token-value"),
        ]);
        let mut e = exec(&[]);
        e.program = program;
        e.env = ChildEnv::minimal(&parent, ["REMOTE_TOKEN"]);
        let done = e.run(&parse("/ports").expect("parses")).await;
        assert!(done.ok, "{}", done.reply);
        for present in [
            "HOME=/home/u",
            "PATH=/usr/bin:/bin",
            "DBUS_SESSION_BUS_ADDRESS=",
        ] {
            assert!(
                done.reply.contains(present),
                "{present} missing: {}",
                done.reply
            );
        }
        for absent in [
            "gateway-token-value",
            "remote-token-value",
            "OMNICLAW_PROFILE",
            "OMNICLAW_SERVICE",
        ] {
            assert!(
                !done.reply.contains(absent),
                "{absent} leaked: {}",
                done.reply
            );
        }
    }

    #[test]
    fn replies_mask_the_token() {
        assert_eq!(
            exec(&[]).mask("token 123:SECRET-TOKEN here"),
            "token <redacted> here"
        );
    }
}
