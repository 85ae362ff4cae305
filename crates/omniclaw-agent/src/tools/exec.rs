//! `exec`: one program with its arguments, in the workspace, without a
//! shell.
//!
//! `tools.exec.mode` decides what may run: `deny` (the default) nothing,
//! `allowlist` only what `tools.exec.allowlist` names, `ask` what it names
//! plus anything an [`Approver`] allows (no approver, no answer or a no is
//! a deny), `full` anything. The command line is split into argv as a POSIX
//! shell would split words, but no shell runs it: no pipes, redirections,
//! globbing or variables. The child gets exactly `ToolContext::child_env`,
//! runs in its own process group, and that whole group is killed when the
//! call times out, is cancelled, or when the program exits leaving children
//! behind — nothing it started outlives the call.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::fs::Workspace;
use super::parse_args;
use crate::provider::ToolSpec;
use crate::tool::{Tool, ToolContext, ToolOutput};

/// `tools.exec.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExecMode {
    #[default]
    Deny,
    Allowlist,
    Ask,
    Full,
}

impl ExecMode {
    /// The config value; `None` for anything else.
    pub fn parse(s: &str) -> Option<ExecMode> {
        match s {
            "deny" => Some(ExecMode::Deny),
            "allowlist" => Some(ExecMode::Allowlist),
            "ask" => Some(ExecMode::Ask),
            "full" => Some(ExecMode::Full),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExecMode::Deny => "deny",
            ExecMode::Allowlist => "allowlist",
            ExecMode::Ask => "ask",
            ExecMode::Full => "full",
        }
    }
}

/// What an approver is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub session_key: String,
    /// The command as the model wrote it.
    pub command: String,
    /// The words it runs as.
    pub argv: Vec<String>,
    pub workdir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    Allow,
    /// No, with the reason to give the model (if any).
    Deny(Option<String>),
}

/// Asks a person whether a command may run (the app, Telegram buttons, a
/// protocol client). The first answer wins; no answer in time is a deny.
#[async_trait]
pub trait Approver: Send + Sync {
    async fn approve(&self, request: &ApprovalRequest) -> Approval;
}

/// `tools.exec.*`.
#[derive(Clone)]
pub struct ExecSettings {
    pub mode: ExecMode,
    /// A bare program name allows it with any arguments; an entry with
    /// spaces is one exact command line (compared word by word).
    pub allowlist: Vec<String>,
    /// `timeoutSeconds`: a call is killed after this.
    pub timeout: Duration,
    /// `maxOutputChars` (OmniClaw's own): stdout and stderr together.
    pub max_output_chars: usize,
    /// Who answers in `ask` mode; `None` denies what needs asking.
    pub approver: Option<Arc<dyn Approver>>,
}

impl Default for ExecSettings {
    fn default() -> ExecSettings {
        ExecSettings {
            mode: ExecMode::Deny,
            allowlist: Vec::new(),
            // OpenClaw's defaults.
            timeout: Duration::from_secs(1800),
            max_output_chars: 200_000,
            approver: None,
        }
    }
}

impl std::fmt::Debug for ExecSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSettings")
            .field("mode", &self.mode)
            .field("allowlist", &self.allowlist)
            .field("timeout", &self.timeout)
            .field("max_output_chars", &self.max_output_chars)
            .field("approver", &self.approver.as_ref().map(|_| "set"))
            .finish()
    }
}

impl ExecSettings {
    /// Refuses settings that cannot work, naming the key.
    pub fn check(&self) -> Result<(), String> {
        for (i, entry) in self.allowlist.iter().enumerate() {
            match shell_words::split(entry) {
                Ok(words) if !words.is_empty() => {}
                Ok(_) => return Err(format!("tools.exec.allowlist[{i}] is empty; remove it")),
                Err(e) => {
                    return Err(format!(
                        "tools.exec.allowlist[{i}] ({entry:?}) cannot be split into words ({e}); close its quotes"
                    ))
                }
            }
        }
        if self.timeout.is_zero() {
            return Err("tools.exec.timeoutSeconds must be at least 1".into());
        }
        if self.max_output_chars == 0 {
            return Err("tools.exec.maxOutputChars must be at least 1".into());
        }
        Ok(())
    }

    fn allowed(&self, argv: &[String]) -> bool {
        self.allowlist
            .iter()
            .any(|entry| match shell_words::split(entry) {
                Ok(words) if words.len() == 1 => words[0] == argv[0],
                Ok(words) => words == argv,
                Err(_) => false,
            })
    }
}

/// What the mode says about one command.
#[derive(Debug, PartialEq, Eq)]
enum Gate {
    Run,
    Ask,
    Refuse(String),
}

fn gate(settings: &ExecSettings, argv: &[String]) -> Gate {
    match settings.mode {
        ExecMode::Full => Gate::Run,
        ExecMode::Deny => Gate::Refuse(
            "exec is off (tools.exec.mode is deny): no command runs; the user can set tools.exec.mode \
             to allowlist, ask or full"
                .into(),
        ),
        _ if settings.allowed(argv) => Gate::Run,
        ExecMode::Ask => Gate::Ask,
        ExecMode::Allowlist => Gate::Refuse(format!(
            "{:?} is not in tools.exec.allowlist ({}); the user can add the program name (any arguments) \
             or this exact command line to it",
            argv[0],
            if settings.allowlist.is_empty() {
                "empty".to_string()
            } else {
                settings.allowlist.join(", ")
            }
        )),
    }
}

pub struct ExecTool {
    settings: ExecSettings,
}

impl ExecTool {
    pub fn new(settings: ExecSettings) -> ExecTool {
        ExecTool { settings }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecArgs {
    command: String,
    workdir: Option<String>,
    env: Option<BTreeMap<String, String>>,
    timeout_seconds: Option<f64>,
}

#[async_trait]
impl Tool for ExecTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "exec".into(),
            description: "Run one program with arguments in the workspace. No shell: no pipes, redirections, \
                          globbing or $variables; quote arguments as in a POSIX shell. Returns stdout and stderr \
                          and the exit code."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "Program and arguments, e.g. \"git status --short\"."},
                    "workdir": {"type": "string", "description": "Directory relative to the workspace; default the workspace."},
                    "env": {"type": "object", "additionalProperties": {"type": "string"},
                            "description": "Extra environment variables (only when tools.exec.mode is full)."},
                    "timeoutSeconds": {"type": "number", "description": "Kill after this many seconds (at most the configured limit)."}
                },
                "required": ["command"]
            }),
        }
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let args: ExecArgs = match parse_args("exec", args) {
            Ok(a) => a,
            Err(e) => return e,
        };
        match self.run(args, ctx).await {
            Ok(out) | Err(out) => out,
        }
    }
}

impl ExecTool {
    async fn run(&self, args: ExecArgs, ctx: &ToolContext) -> Result<ToolOutput, ToolOutput> {
        let argv = shell_words::split(&args.command).map_err(|e| {
            ToolOutput::error(format!(
                "the command cannot be split into words ({e}); close its quotes (exec runs no shell)"
            ))
        })?;
        if argv.is_empty() {
            return Err(ToolOutput::error(
                "the command is empty; give a program to run",
            ));
        }
        let workdir =
            workdir(&ctx.workspace, args.workdir.as_deref()).map_err(ToolOutput::error)?;
        match gate(&self.settings, &argv) {
            Gate::Run => {}
            Gate::Refuse(why) => return Err(ToolOutput::error(why)),
            Gate::Ask => {
                let Some(approver) = &self.settings.approver else {
                    return Err(ToolOutput::error(format!(
                        "{:?} needs the user's approval (tools.exec.mode is ask) and nobody can approve here, \
                         so it did not run; the user can add it to tools.exec.allowlist",
                        args.command
                    )));
                };
                let request = ApprovalRequest {
                    session_key: ctx.session_key.clone(),
                    command: args.command.clone(),
                    argv: argv.clone(),
                    workdir: workdir.clone(),
                };
                let answer = tokio::select! {
                    a = approver.approve(&request) => a,
                    () = ctx.cancel.cancelled() => Approval::Deny(Some("the run was aborted".into())),
                };
                if let Approval::Deny(reason) = answer {
                    return Err(ToolOutput::error(format!(
                        "the user did not approve {:?}{}",
                        args.command,
                        reason.map(|r| format!(": {r}")).unwrap_or_default()
                    )));
                }
            }
        }
        let mut env = ctx.child_env.clone();
        if let Some(extra) = args.env.filter(|e| !e.is_empty()) {
            // Variables such as LD_PRELOAD or GIT_SSH_COMMAND would run other
            // programs than the ones allowed.
            if self.settings.mode != ExecMode::Full {
                return Err(ToolOutput::error(
                    "env needs tools.exec.mode full (variables can make an allowed program run another); \
                     run the command without env",
                ));
            }
            env.extend(
                extra
                    .into_iter()
                    .map(|(k, v)| (OsString::from(k), OsString::from(v))),
            );
        }
        let program = find_program(&argv[0], &workdir, &env).map_err(ToolOutput::error)?;
        let timeout = match args.timeout_seconds {
            Some(s) if s > 0.0 && s.is_finite() => {
                self.settings.timeout.min(Duration::from_secs_f64(s))
            }
            _ => self.settings.timeout,
        };
        Ok(spawn_and_wait(
            &program,
            &argv,
            &workdir,
            &env,
            timeout,
            self.settings.max_output_chars,
            ctx,
        )
        .await)
    }
}

/// The working directory: the workspace or a directory inside it.
fn workdir(root: &Path, raw: Option<&str>) -> Result<PathBuf, String> {
    let raw = raw.filter(|w| !w.is_empty()).unwrap_or(".");
    if raw.trim().is_empty() {
        return Err("workdir is only whitespace; omit it to run in the workspace".into());
    }
    let ws = Workspace::open(root)?;
    let rel = ws.relative(raw)?;
    if !rel.as_os_str().is_empty() {
        // Opened beneath the workspace: a link out of it is refused.
        ws.open_dir(&rel).map_err(|e| ws.io_error(raw, &e))?;
    }
    Ok(root.join(rel))
}

/// The program to start: a path (relative ones from the workdir), or a
/// bare name looked up in the child's own `PATH` — absolute entries only,
/// so a file the model wrote into the workspace never stands in for an
/// allowed program.
fn find_program(
    name: &str,
    workdir: &Path,
    env: &BTreeMap<OsString, OsString>,
) -> Result<PathBuf, String> {
    if name.contains('/') || name.contains(std::path::MAIN_SEPARATOR) {
        let p = Path::new(name);
        return Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            workdir.join(p)
        });
    }
    let path = env.get(&OsString::from("PATH")).ok_or_else(|| {
        format!("{name:?} cannot be found: the environment tools get has no PATH; give the program's full path")
    })?;
    for dir in std::env::split_paths(path).filter(|d| d.is_absolute()) {
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(format!(
        "{name:?} was not found on the PATH tools get ({}); check the name or give the full path",
        path.to_string_lossy()
    ))
}

fn is_executable(p: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// How a call ended.
enum Ending {
    Exited(std::process::ExitStatus),
    TimedOut,
    Cancelled,
}

/// Output kept up to a cap; what does not fit is counted.
struct Capture {
    bytes: Vec<u8>,
    cap: usize,
    dropped: u64,
}

impl Capture {
    fn push(&mut self, chunk: &[u8]) {
        let room = self.cap.saturating_sub(self.bytes.len());
        let take = room.min(chunk.len());
        self.bytes.extend_from_slice(&chunk[..take]);
        self.dropped += (chunk.len() - take) as u64;
    }

    /// The text, cut at `max_chars`, with a note when something was cut.
    fn text(&self, max_chars: usize) -> String {
        let all = String::from_utf8_lossy(&self.bytes);
        let mut chars = all.chars();
        let mut text: String = chars.by_ref().take(max_chars).collect();
        let cut_chars = chars.count();
        if cut_chars > 0 || self.dropped > 0 {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "[output truncated at {max_chars} characters (tools.exec.maxOutputChars); {} more not shown]",
                if self.dropped > 0 {
                    format!("{cut_chars} characters and {} bytes", self.dropped)
                } else {
                    format!("{cut_chars} characters")
                }
            ));
        }
        text
    }
}

async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> usize {
    match pipe {
        Some(p) => p.read(buf).await.unwrap_or(0),
        None => 0,
    }
}

/// After the program exits, how long children still holding its output
/// get before they are killed with it.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

async fn spawn_and_wait(
    program: &Path,
    argv: &[String],
    workdir: &Path,
    env: &BTreeMap<OsString, OsString>,
    timeout: Duration,
    max_chars: usize,
    ctx: &ToolContext,
) -> ToolOutput {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&argv[1..])
        .current_dir(workdir)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    {
        cmd.arg0(&argv[0]);
        // Its own group, so the group can be killed with every child in it.
        cmd.process_group(0);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return ToolOutput::error(format!("{:?} could not be started: {e}", argv[0]));
        }
    };
    let pid = child.id();
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let mut capture = Capture {
        bytes: Vec::new(),
        cap: max_chars.saturating_mul(4),
        dropped: 0,
    };
    let (mut out_buf, mut err_buf) = (vec![0u8; 8192], vec![0u8; 8192]);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut exited: Option<std::process::ExitStatus> = None;
    let mut draining = false;
    let ending = loop {
        if let Some(status) = exited {
            if out_pipe.is_none() && err_pipe.is_none() {
                break Ending::Exited(status);
            }
        }
        tokio::select! {
            n = read_some(&mut out_pipe, &mut out_buf), if out_pipe.is_some() => {
                if n == 0 { out_pipe = None } else { capture.push(&out_buf[..n]) }
            }
            n = read_some(&mut err_pipe, &mut err_buf), if err_pipe.is_some() => {
                if n == 0 { err_pipe = None } else { capture.push(&err_buf[..n]) }
            }
            status = child.wait(), if exited.is_none() => {
                match status {
                    Ok(s) => exited = Some(s),
                    Err(e) => return ToolOutput::error(format!("waiting for {:?} failed: {e}", argv[0])),
                }
                if out_pipe.is_some() || err_pipe.is_some() {
                    // Something it started still holds the output open: a
                    // member of its group, so the group still exists.
                    kill_group(pid);
                    deadline.as_mut().reset(tokio::time::Instant::now() + DRAIN_GRACE);
                    draining = true;
                }
            }
            () = &mut deadline => {
                if draining {
                    // Whatever still holds the pipes left the group; stop
                    // reading it.
                    if let Some(status) = exited {
                        break Ending::Exited(status);
                    }
                }
                break Ending::TimedOut;
            }
            () = ctx.cancel.cancelled() => break Ending::Cancelled,
        }
    };
    if !matches!(ending, Ending::Exited(_)) {
        kill_group(pid);
        // Killed above; reap it (kill_on_drop covers a platform without groups).
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let mut text = capture.text(max_chars);
    let (note, is_error) = match ending {
        Ending::Exited(status) if status.success() => (None, false),
        Ending::Exited(status) => (
            Some(match status.code() {
                Some(code) => format!("[exit code {code}]"),
                None => format!("[ended by a signal: {status}]"),
            }),
            true,
        ),
        Ending::TimedOut => (
            Some(format!(
                "[killed with its child processes: it ran longer than {} s (tools.exec.timeoutSeconds)]",
                timeout.as_secs_f64()
            )),
            true,
        ),
        Ending::Cancelled => (
            Some("[killed with its child processes: the run was aborted]".into()),
            true,
        ),
    };
    if text.is_empty() && note.is_none() {
        text.push_str("(no output)");
    }
    if let Some(note) = note {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&note);
    }
    ToolOutput { text, is_error }
}

/// Kills the process group `pid` leads (it was started as its leader).
#[cfg(unix)]
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    // Gone already is fine.
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

#[cfg(not(unix))]
fn kill_group(_pid: Option<u32>) {}

#[cfg(test)]
mod tests;
