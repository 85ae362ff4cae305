//! The systemd user unit of a gateway, and reading one back.
//!
//! Quoting follows systemd.service(5) and systemd.syntax(7): `%` starts a
//! specifier everywhere (written `%%`), `$` expands variables in `ExecStart`
//! (written `$$`), and double quotes with C escapes keep spaces in one
//! argument or one `Environment=` assignment. Must never write a secret.

use std::fmt::Write as _;

use super::{ServiceSpec, SpecError, BAD_INPUT_EXIT, RESTART_SECS};

pub(super) fn render(spec: &ServiceSpec) -> Result<String, SpecError> {
    let mut exec = vec![exec_word(&super::text("binary path", &spec.binary)?)];
    exec.extend(spec.args().iter().map(|a| exec_word(a)));
    let mut out = String::new();
    let cmd = spec.command();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# Written by `{cmd} gateway install`; OmniClaw owns this file.\n\
         # Change it with `{cmd} gateway install --force`, remove it with `{cmd} gateway uninstall`.\n\
         # No secret is stored here: the gateway reads them from its config or the keychain."
    );
    let _ = writeln!(out, "[Unit]");
    let _ = writeln!(out, "Description={}", specifiers(&spec.description()));
    // Once the binary is gone (the package removed, the build folder
    // deleted), the unit is skipped instead of failing: `Restart=always`
    // would otherwise start a missing file every RestartSec forever. A
    // condition takes the rest of the line as the path, unquoted.
    let _ = writeln!(
        out,
        "ConditionPathExists={}",
        specifiers(&super::text("binary path", &spec.binary)?)
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "[Service]");
    let _ = writeln!(out, "Type=simple");
    let _ = writeln!(out, "ExecStart={}", exec.join(" "));
    for (k, v) in spec.env()? {
        let _ = writeln!(out, "Environment=\"{}\"", quoted(&format!("{k}={v}")));
    }
    let _ = writeln!(out, "Restart=always");
    let _ = writeln!(out, "RestartSec={RESTART_SECS}");
    // Exit 2 is bad input (a missing secret, a bad flag): starting again
    // cannot help, so the unit stays failed and `status` says why.
    // `gateway restart` (and the rescue bot's /restart) still start it.
    let _ = writeln!(out, "RestartPreventExitStatus={BAD_INPUT_EXIT}");
    let _ = writeln!(out, "TimeoutStopSec=30");
    // Every client holds a descriptor: systemd's default soft limit of 1024
    // ends a gateway's service at about a thousand connections. 65536 (soft
    // and hard) leaves room for tens of thousands and stays below the hard
    // limit user managers get by default (524288), which a user unit may
    // not raise. The gateway also lifts its soft limit to the hard one.
    let _ = writeln!(out, "LimitNOFILE={NOFILE}");
    let _ = writeln!(out);
    let _ = writeln!(out, "[Install]");
    let _ = writeln!(out, "WantedBy=default.target");
    Ok(out)
}

/// Open files a gateway's service may hold (`LimitNOFILE=`).
pub const NOFILE: u32 = 65536;

fn specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// Escapes for the inside of a double-quoted systemd string.
fn quoted(s: &str) -> String {
    specifiers(s).replace('\\', "\\\\").replace('"', "\\\"")
}

/// One `ExecStart` word: quoted when it holds anything systemd would split on or unescape.
fn exec_word(s: &str) -> String {
    let needs_quotes = s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'));
    let s = s.replace('$', "$$");
    if needs_quotes {
        format!("\"{}\"", quoted(&s))
    } else {
        specifiers(&s)
    }
}

/// The `ExecStart` words and the `Environment=` assignments of a unit.
pub(super) fn parse(text: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut argv = Vec::new();
    let mut vars = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ExecStart=") {
            argv = split(rest)
                .into_iter()
                .map(|w| w.replace("$$", "$"))
                .collect();
        } else if let Some(rest) = line.strip_prefix("Environment=") {
            for assignment in split(rest) {
                if let Some((k, v)) = assignment.split_once('=') {
                    vars.push((k.to_string(), v.to_string()));
                }
            }
        }
    }
    (argv, vars)
}

/// Splits a systemd value into words: whitespace separates, double or
/// single quotes group, backslash escapes, `%%` is `%`.
fn split(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => {
                if let Some(n) = chars.next() {
                    cur.push(match n {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                }
                in_word = true;
            }
            ('%', _) if chars.peek() == Some(&'%') => {
                chars.next();
                cur.push('%');
                in_word = true;
            }
            (q, Some(open)) if q == open => quote = None,
            ('"' | '\'', None) => {
                quote = Some(c);
                in_word = true;
            }
            (w, None) if w.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (other, _) => {
                cur.push(other);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::super::tests::spec;
    use super::super::{parse as parse_installed, Platform};
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn unit_named_profile() {
        let files = spec("rescue", true)
            .render(Platform::Systemd)
            .expect("renders");
        assert_eq!(
            files[0].path.to_str(),
            Some("/home/u/.config/systemd/user/omniclaw-gateway-rescue.service")
        );
        insta::assert_snapshot!("unit_rescue", files[0].contents);
    }

    #[test]
    fn unit_default_profile() {
        let files = spec("default", true)
            .render(Platform::Systemd)
            .expect("renders");
        insta::assert_snapshot!("unit_default", files[0].contents);
    }

    fn check(word: &str, expected: &str) {
        assert_eq!(exec_word(word), expected, "{word:?}");
        let back = split(expected)
            .into_iter()
            .map(|w| w.replace("$$", "$"))
            .collect::<Vec<_>>();
        assert_eq!(back, [word.to_string()], "round trip of {word:?}");
    }

    #[test]
    fn exec_words() {
        check("/usr/bin/omniclaw", "/usr/bin/omniclaw");
        check("/opt/omni claw/x", "\"/opt/omni claw/x\"");
        check("/opt/100%/x", "/opt/100%%/x");
        check("/opt/$HOME/x", "/opt/$$HOME/x");
        check("/a \"b\"\\c", "\"/a \\\"b\\\"\\\\c\"");
        check("", "\"\"");
    }

    #[test]
    fn the_unit_is_skipped_once_its_binary_is_gone() {
        let mut s = spec("rescue", true);
        s.binary = PathBuf::from("/opt/100% omni/omniclaw");
        let unit = s.render(Platform::Systemd).expect("renders");
        let lines: Vec<&str> = unit[0].contents.lines().collect();
        let section = lines.iter().position(|l| *l == "[Unit]").expect("[Unit]");
        let condition = lines
            .iter()
            .position(|l| *l == "ConditionPathExists=/opt/100%% omni/omniclaw")
            .expect("condition on the binary, specifiers escaped");
        let service = lines
            .iter()
            .position(|l| *l == "[Service]")
            .expect("[Service]");
        assert!(section < condition && condition < service, "{lines:?}");
    }

    #[test]
    fn reads_back_what_it_writes() {
        let mut s = spec("rescue", true);
        s.state_dir = PathBuf::from("/home/u/50% \"odd\" dir");
        let unit = s.render(Platform::Systemd).expect("renders");
        let installed = parse_installed(Platform::Systemd, &unit[0].contents);
        assert_eq!(
            installed.binary,
            Some(PathBuf::from("/opt/omni claw/bin/omniclaw"))
        );
        assert_eq!(installed.port, Some(19789));
        assert_eq!(installed.profile.as_deref(), Some("rescue"));
        assert_eq!(installed.state_dir, Some(s.state_dir.clone()));
        assert!(installed.marked);
    }
}
