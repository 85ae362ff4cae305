//! The launchd LaunchAgent plist of a gateway, and reading one back.
//!
//! The agent runs at load (log in) and is kept alive; its output goes to
//! log files in the profile's state dir. Must never write a secret.

use std::fmt::Write as _;

use super::{ServiceSpec, SpecError, RESTART_SECS};

pub(super) fn render(spec: &ServiceSpec) -> Result<String, SpecError> {
    let mut out = String::new();
    let line = |out: &mut String, s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    line(&mut out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    line(
        &mut out,
        r#"<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">"#,
    );
    // No command line in the comment: `--` may not appear inside an XML comment.
    line(
        &mut out,
        "<!-- Written by OmniClaw's `gateway install`; OmniClaw owns this file. No secret is stored here. -->",
    );
    line(&mut out, r#"<plist version="1.0">"#);
    line(&mut out, "<dict>");
    let key_string = |out: &mut String, key: &str, value: &str| {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "  <key>{key}</key>\n  <string>{}</string>",
            escape(value)
        );
    };
    key_string(&mut out, "Label", &spec.names.launchd_label);
    key_string(&mut out, "Comment", &spec.description());
    line(&mut out, "  <key>ProgramArguments</key>");
    line(&mut out, "  <array>");
    let mut argv = vec![super::text("binary path", &spec.binary)?];
    argv.extend(spec.args());
    for a in &argv {
        let _ = writeln!(out, "    <string>{}</string>", escape(a));
    }
    line(&mut out, "  </array>");
    line(&mut out, "  <key>EnvironmentVariables</key>");
    line(&mut out, "  <dict>");
    for (k, v) in spec.env()? {
        let _ = writeln!(
            out,
            "    <key>{k}</key>\n    <string>{}</string>",
            escape(&v)
        );
    }
    line(&mut out, "  </dict>");
    line(&mut out, "  <key>RunAtLoad</key>");
    line(&mut out, "  <true/>");
    // KeepAlive true: launchd starts the gateway again whenever it exits,
    // ThrottleInterval apart. launchd has no way to spare one exit code (as
    // systemd's RestartPreventExitStatus=2 does); `KeepAlive {SuccessfulExit
    // = false}` would still restart after exit 2 (non-zero) and would leave
    // a gateway that exited 0 (a clean stop not made through `gateway stop`,
    // which unloads the agent) down, the wrong way round for a service that
    // must stay up. A bad config therefore retries every ThrottleInterval
    // and `gateway status` shows why; fixing the config brings it back.
    // launchd has no ConditionPathExists: `KeepAlive {PathState}` would be
    // ORed with the other keep-alive conditions, not ANDed, so it cannot
    // keep a removed binary down. A missing Program fails to spawn and is
    // retried at ThrottleInterval like any exit; `gateway status --deep`
    // names the missing binary and the fix.
    line(&mut out, "  <key>KeepAlive</key>");
    line(&mut out, "  <true/>");
    let _ = writeln!(
        out,
        "  <key>ThrottleInterval</key>\n  <integer>{RESTART_SECS}</integer>"
    );
    key_string(
        &mut out,
        "StandardOutPath",
        &super::text("log file", &spec.stdout_log)?,
    );
    key_string(
        &mut out,
        "StandardErrorPath",
        &super::text("log file", &spec.stderr_log)?,
    );
    line(&mut out, "</dict>");
    line(&mut out, "</plist>");
    Ok(out)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The text of each `<string>` between `open` and `close` tags after `key`.
fn strings_after<'a>(text: &'a str, key: &str, close: &str) -> Vec<&'a str> {
    let marker = format!("<key>{key}</key>");
    let Some(start) = text.find(&marker) else {
        return Vec::new();
    };
    let rest = &text[start + marker.len()..];
    let end = rest.find(close).unwrap_or(rest.len());
    let mut out = Vec::new();
    let mut body = &rest[..end];
    while let Some(i) = body.find("<string>") {
        let after = &body[i + "<string>".len()..];
        let Some(j) = after.find("</string>") else {
            break;
        };
        out.push(&after[..j]);
        body = &after[j..];
    }
    out
}

/// `ProgramArguments` and `EnvironmentVariables` of a plist written in the
/// XML format (as OmniClaw and OpenClaw write them).
pub(super) fn parse(text: &str) -> (Vec<String>, Vec<(String, String)>) {
    let argv = strings_after(text, "ProgramArguments", "</array>")
        .into_iter()
        .map(unescape)
        .collect();
    let mut vars = Vec::new();
    let marker = "<key>EnvironmentVariables</key>";
    if let Some(start) = text.find(marker) {
        let rest = &text[start + marker.len()..];
        let body = &rest[..rest.find("</dict>").unwrap_or(rest.len())];
        let mut cur = body;
        while let Some(i) = cur.find("<key>") {
            let after = &cur[i + "<key>".len()..];
            let Some(j) = after.find("</key>") else { break };
            let key = unescape(&after[..j]);
            let tail = &after[j..];
            let value = tail.find("<string>").and_then(|s| {
                let v = &tail[s + "<string>".len()..];
                v.find("</string>").map(|e| unescape(&v[..e]))
            });
            if let Some(v) = value {
                vars.push((key, v));
            }
            cur = tail;
        }
    }
    (argv, vars)
}

#[cfg(test)]
mod tests {
    use super::super::tests::spec;
    use super::super::{parse as parse_installed, Platform};
    use std::path::PathBuf;

    fn plist_value(text: &str) -> plist::Dictionary {
        plist::Value::from_reader_xml(text.as_bytes())
            .expect("a valid XML plist")
            .into_dictionary()
            .expect("a dictionary at the top")
    }

    #[test]
    fn agent_named_profile() {
        let files = spec("rescue", true)
            .render(Platform::Launchd)
            .expect("renders");
        assert_eq!(
            files[0].path.to_str(),
            Some("/home/u/Library/LaunchAgents/ai.omniclaw.rescue.plist")
        );
        insta::assert_snapshot!("plist_rescue", files[0].contents);
    }

    #[test]
    fn agent_default_profile() {
        let files = spec("default", true)
            .render(Platform::Launchd)
            .expect("renders");
        insta::assert_snapshot!("plist_default", files[0].contents);
    }

    #[test]
    fn plist_library_reads_it() {
        let mut s = spec("rescue", true);
        s.state_dir = PathBuf::from("/home/u/R&D <dir>");
        let files = s.render(Platform::Launchd).expect("renders");
        let d = plist_value(&files[0].contents);
        assert_eq!(
            d.get("Label").and_then(|v| v.as_string()),
            Some("ai.omniclaw.rescue")
        );
        assert_eq!(d.get("RunAtLoad").and_then(|v| v.as_boolean()), Some(true));
        assert_eq!(d.get("KeepAlive").and_then(|v| v.as_boolean()), Some(true));
        let args: Vec<&str> = d
            .get("ProgramArguments")
            .and_then(|v| v.as_array())
            .expect("ProgramArguments")
            .iter()
            .filter_map(|v| v.as_string())
            .collect();
        assert_eq!(
            args,
            ["/opt/omni claw/bin/omniclaw", "gateway", "--port", "19789"]
        );
        let env = d
            .get("EnvironmentVariables")
            .and_then(|v| v.as_dictionary())
            .expect("EnvironmentVariables");
        assert_eq!(
            env.get("OMNICLAW_STATE_DIR").and_then(|v| v.as_string()),
            Some("/home/u/R&D <dir>")
        );
        assert_eq!(
            env.get("OMNICLAW_SERVICE").and_then(|v| v.as_string()),
            Some("1")
        );
        assert_eq!(
            d.get("StandardErrorPath").and_then(|v| v.as_string()),
            Some("/home/u/.omniclaw-rescue/logs/service.err.log")
        );
        // And our own reader agrees with the library.
        let installed = parse_installed(Platform::Launchd, &files[0].contents);
        assert_eq!(
            installed.state_dir,
            Some(PathBuf::from("/home/u/R&D <dir>"))
        );
        assert_eq!(installed.port, Some(19789));
        assert_eq!(installed.profile.as_deref(), Some("rescue"));
        assert!(installed.marked);
    }
}
