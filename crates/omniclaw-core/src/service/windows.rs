//! The Windows scheduled task of a gateway: the task XML handed to
//! `schtasks /Create /XML`, and the launcher script it runs.
//!
//! Task Scheduler cannot set environment variables, so the task runs a
//! small `.cmd` script that sets them and starts `omniclaw gateway`,
//! appending its output to log files in the state dir. The task starts at
//! the user's log on; the script starts the gateway again when it exits
//! (except after bad input, exit 2), and Task Scheduler restarts a task
//! that fails to launch. Must never write a secret.

use std::fmt::Write as _;

use crate::profile::ServiceNames;

use super::{ServiceSpec, SpecError, BAD_INPUT_EXIT, RESTART_SECS};

/// File stem of the task's XML and script: the systemd unit name without `.service`.
pub(super) fn stem(names: &ServiceNames) -> &str {
    names
        .systemd_unit
        .strip_suffix(".service")
        .unwrap_or(&names.systemd_unit)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(super) fn render_task(spec: &ServiceSpec, script: &str) -> Result<String, SpecError> {
    let working_dir = super::text("state dir", &spec.state_dir)?;
    let user = spec
        .windows_user
        .as_deref()
        .map(|u| format!("\n      <UserId>{}</UserId>", escape(u)));
    let principal_user = spec
        .windows_user
        .as_deref()
        .map(|u| format!("\n      <UserId>{}</UserId>", escape(u)));
    let mut out = String::new();
    // Writing to a String cannot fail. No command line in the comment: `--`
    // may not appear inside an XML comment.
    let _ = write!(
        out,
        r#"<?xml version="1.0" encoding="UTF-16"?>
<!-- Written by OmniClaw's `gateway install`; OmniClaw owns this task. No secret is stored here. -->
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>{description}</Description>
    <URI>\{task}</URI>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>{user}
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">{principal_user}
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>false</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Priority>7</Priority>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>999</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{command}</Command>
      <WorkingDirectory>{working_dir}</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
"#,
        description = escape(&spec.description()),
        task = escape(&spec.names.windows_task),
        user = user.unwrap_or_default(),
        principal_user = principal_user.unwrap_or_default(),
        // Windows paths never hold `/`: normalize the separators of joined parts.
        command = escape(&script.replace('/', "\\")),
        working_dir = escape(&working_dir),
    );
    Ok(out)
}

/// `%` starts a variable in a batch file, even inside quotes.
fn batch(s: &str) -> String {
    s.replace('%', "%%")
}

/// The launcher script, with CRLF line ends as `cmd.exe` expects.
pub(super) fn render_script(spec: &ServiceSpec) -> Result<String, SpecError> {
    let mut lines = vec![
        "@echo off".to_string(),
        format!(
            "rem Written by `{} gateway install`; OmniClaw owns this file. No secret is stored here.",
            batch(&spec.command())
        ),
    ];
    for (k, v) in spec.env()? {
        // `set "K=V"` keeps spaces, `&` and `^` in V literal; Windows paths cannot contain `"`.
        lines.push(format!("set \"{k}={}\"", batch(&v)));
    }
    let binary = super::text("binary path", &spec.binary)?;
    let out_log = super::text("log file", &spec.stdout_log)?;
    let err_log = super::text("log file", &spec.stderr_log)?;
    // Task Scheduler's RestartOnFailure covers a task that fails to launch,
    // not a gateway that exits: the script restarts it itself, after
    // RESTART_SECS, except after bad input (exit 2), which a restart cannot
    // fix (as `RestartPreventExitStatus=2` in the systemd unit).
    lines.push(":run".to_string());
    // Task Scheduler has no ConditionPathExists; the script is its own
    // condition: once the binary is gone (uninstalled), it stops instead of
    // retrying a missing file every RESTART_SECS.
    lines.push(format!(
        "if not exist \"{}\" exit /b {BAD_INPUT_EXIT}",
        batch(&binary)
    ));
    lines.push(format!(
        "\"{}\" {} >> \"{}\" 2>> \"{}\"",
        batch(&binary),
        spec.args().join(" "),
        batch(&out_log),
        batch(&err_log)
    ));
    lines.push(format!(
        "if %ERRORLEVEL% EQU {BAD_INPUT_EXIT} exit /b {BAD_INPUT_EXIT}"
    ));
    // `timeout` refuses to run without a console; `ping` waits anywhere
    // (N echo requests one second apart take N-1 seconds).
    lines.push(format!("ping -n {} 127.0.0.1 >nul", RESTART_SECS + 1));
    lines.push("goto run".to_string());
    Ok(lines.iter().map(|l| format!("{l}\r\n")).collect())
}

/// The command words and `set` assignments of a launcher script.
pub(super) fn parse_script(text: &str) -> (Vec<String>, Vec<(String, String)>) {
    let unbatch = |s: &str| s.replace("%%", "%");
    let mut argv = Vec::new();
    let mut vars = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line
            .strip_prefix("set \"")
            .and_then(|r| r.strip_suffix('"'))
        {
            if let Some((k, v)) = rest.split_once('=') {
                vars.push((k.to_string(), unbatch(v)));
            }
        } else if let Some(rest) = line.strip_prefix('"') {
            let Some((binary, tail)) = rest.split_once('"') else {
                continue;
            };
            argv.push(unbatch(binary));
            argv.extend(
                tail.split_whitespace()
                    .take_while(|w| !w.starts_with('>') && !w.starts_with("2>"))
                    .map(unbatch),
            );
        }
    }
    (argv, vars)
}

#[cfg(test)]
mod tests {
    use super::super::tests::spec;
    use super::super::{parse as parse_installed, Platform, ServiceFile};
    use std::path::PathBuf;

    /// Parses the whole task XML (failing on any syntax error) and returns
    /// the text of the first element named `name`, entities resolved.
    fn element(xml: &str, name: &str) -> Option<String> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut found: Option<String> = None;
        let mut inside = false;
        loop {
            match reader.read_event().expect("well-formed task XML") {
                Event::Start(e) if found.is_none() && e.local_name().as_ref() == name => {
                    inside = true;
                    found = Some(String::new());
                }
                Event::Text(t) if inside => {
                    if let Some(f) = found.as_mut() {
                        f.push_str(&t.xml10_content());
                    }
                }
                Event::GeneralRef(r) if inside => {
                    let entity = r.xml10_content();
                    let resolved = quick_xml::escape::resolve_predefined_entity(&entity)
                        .expect("only predefined entities");
                    if let Some(f) = found.as_mut() {
                        f.push_str(resolved);
                    }
                }
                Event::End(_) => inside = false,
                Event::Eof => return found,
                _ => {}
            }
        }
    }

    #[test]
    fn task_named_profile() {
        let files = spec("rescue", false)
            .render(Platform::TaskScheduler)
            .expect("renders");
        assert_eq!(files.len(), 2);
        insta::assert_snapshot!("task_rescue_xml", files[0].contents);
        // Snapshot with LF; the script itself must use CRLF throughout.
        assert!(files[1]
            .contents
            .split_inclusive('\n')
            .all(|l| l.ends_with("\r\n")));
        insta::assert_snapshot!("task_rescue_cmd", files[1].contents.replace("\r\n", "\n"));
    }

    #[test]
    fn task_default_profile() {
        let mut s = spec("default", false);
        s.windows_user = None;
        let files = s.render(Platform::TaskScheduler).expect("renders");
        insta::assert_snapshot!("task_default_xml", files[0].contents);
        insta::assert_snapshot!("task_default_cmd", files[1].contents.replace("\r\n", "\n"));
    }

    #[test]
    fn task_xml_parses() {
        let mut s = spec("rescue", false);
        s.state_dir = PathBuf::from(r"C:\Users\u\R&D <x>");
        let files = s.render(Platform::TaskScheduler).expect("renders");
        let xml = &files[0].contents;
        // Written as UTF-16 with a BOM; decoding gives the text back.
        assert_eq!(
            ServiceFile::decode(&files[0].bytes()).as_deref(),
            Some(xml.as_str())
        );
        assert_eq!(
            element(xml, "URI").as_deref(),
            Some(r"\OmniClaw Gateway (rescue)")
        );
        assert_eq!(element(xml, "UserId").as_deref(), Some(r"HOST\u"));
        assert_eq!(
            element(xml, "LogonType").as_deref(),
            Some("InteractiveToken")
        );
        assert_eq!(element(xml, "Interval").as_deref(), Some("PT1M"));
        assert_eq!(element(xml, "ExecutionTimeLimit").as_deref(), Some("PT0S"));
        assert_eq!(
            element(xml, "WorkingDirectory").as_deref(),
            Some(r"C:\Users\u\R&D <x>")
        );
        assert!(
            element(xml, "Command").is_some_and(|c| c.ends_with(r"omniclaw-gateway-rescue.cmd"))
        );
    }

    #[test]
    fn script_restarts_the_gateway_except_after_bad_input() {
        let files = spec("rescue", false)
            .render(Platform::TaskScheduler)
            .expect("renders");
        let lines: Vec<&str> = files[1].contents.lines().map(str::trim_end).collect();
        let run = lines.iter().position(|l| *l == ":run").expect(":run label");
        // A removed binary ends the script instead of a retry every 5 s.
        assert_eq!(
            lines[run + 1],
            r#"if not exist "C:\Program Files\OmniClaw\omniclaw.exe" exit /b 2"#
        );
        assert!(lines[run + 2]
            .starts_with(r#""C:\Program Files\OmniClaw\omniclaw.exe" gateway --port 19789"#));
        assert_eq!(
            &lines[run + 3..],
            [
                "if %ERRORLEVEL% EQU 2 exit /b 2",
                "ping -n 6 127.0.0.1 >nul",
                "goto run"
            ]
        );
    }

    #[test]
    fn script_reads_back() {
        let mut s = spec("rescue", false);
        s.config_path = PathBuf::from(r"C:\Users\u\100% & more\omniclaw.json");
        let files = s.render(Platform::TaskScheduler).expect("renders");
        assert!(files[1]
            .contents
            .contains(r#"set "OMNICLAW_CONFIG_PATH=C:\Users\u\100%% & more\omniclaw.json""#));
        let installed = parse_installed(Platform::TaskScheduler, &files[1].contents);
        assert_eq!(
            installed.binary,
            Some(PathBuf::from(r"C:\Program Files\OmniClaw\omniclaw.exe"))
        );
        assert_eq!(installed.port, Some(19789));
        assert_eq!(installed.config_path, Some(s.config_path.clone()));
        assert!(installed.marked);
    }
}
