//! The remote gateways OmniClaw knows, kept in `~/.omniclaw/remotes.json`
//! beside the profiles: each a name and how to reach it, directly
//! (`--url ws(s)://HOST:PORT`) or through an SSH tunnel (`--ssh
//! USER@HOST[:PORT] --remote-port N`, forwarded to a local port).
//!
//! Pure: the file's format, the rules a new remote must pass (a valid and
//! unused name, not a local profile's; a tunnel's local port no local
//! profile plans and no other tunnel takes) and the `ssh` command line of
//! a tunnel. Credentials never appear here: they live in the secret store
//! under the remote's name, and the file holds no secret.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ports::Plan;
use crate::profile::Profile;
use crate::remote::{parse_ssh, parse_url, SshTarget, WsTarget};

/// The file's name in `~/.omniclaw`.
pub const FILE: &str = "remotes.json";

/// One remote gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub name: String,
    pub kind: Kind,
}

/// How a remote gateway is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Dialed at its URL (a tailnet or LAN address, or `wss://`).
    Direct(WsTarget),
    /// Through `ssh -L`: the gateway listens on the far host's loopback.
    Ssh(SshTunnel),
}

/// An SSH tunnel to a gateway on a far host's loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTunnel {
    pub target: SshTarget,
    /// The gateway's port on the far host (on its loopback).
    pub remote_port: u16,
    /// The port on this machine's loopback the tunnel listens on.
    pub local_port: u16,
    /// The SHA256 fingerprint of the host key accepted when it was added.
    pub host_key: String,
    /// The private key `ssh` authenticates with (`-i`), when not its default.
    pub identity: Option<PathBuf>,
}

impl Remote {
    /// `url` or `ssh`, for lists and JSON.
    pub fn kind_word(&self) -> &'static str {
        match self.kind {
            Kind::Direct(_) => "url",
            Kind::Ssh(_) => "ssh",
        }
    }

    /// The URL a client dials: the remote's own, or the tunnel's local end.
    pub fn dial_url(&self) -> String {
        match &self.kind {
            Kind::Direct(t) => t.url.clone(),
            Kind::Ssh(t) => format!("ws://127.0.0.1:{}", t.local_port),
        }
    }

    /// Where it is, as the user gave it: the URL, or `USER@HOST:PORT → remote port`.
    pub fn target(&self) -> String {
        match &self.kind {
            Kind::Direct(t) => t.url.clone(),
            Kind::Ssh(t) => format!("{} (port {} there)", t.target, t.remote_port),
        }
    }

    /// The tunnel's local port, for an SSH remote.
    pub fn local_port(&self) -> Option<u16> {
        match &self.kind {
            Kind::Direct(_) => None,
            Kind::Ssh(t) => Some(t.local_port),
        }
    }
}

/// Why a remote cannot be added, or the file cannot be read. Each message
/// names the remote, the port or the file, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    #[error("{name:?} is not a remote name: use 1 to 64 letters, digits, '-' or '_', starting with a letter or digit")]
    Name { name: String },
    #[error("a remote named {name:?} exists already: pick another name, or `omniclaw remote remove {name}` first")]
    Duplicate { name: String },
    #[error("{name:?} is the name of a local profile on this machine: give the remote another name (e.g. {name}-remote), so `status` and the tray never mix them up")]
    ProfileName { name: String },
    #[error("no remote named {name:?}: `omniclaw remote list` shows the remotes")]
    Unknown { name: String },
    #[error("--local-port {port} is planned for {by}: pick another port (or leave --local-port out to get a free one)")]
    LocalPortTaken { port: u16, by: String },
    #[error("--host-key-fingerprint {given:?} is not a SHA256 fingerprint: give it as ssh-keygen -lf prints it, e.g. SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU")]
    Fingerprint { given: String },
    #[error("{file} is not a valid remotes file ({detail}): fix it by hand or remove it, then add the remotes again")]
    Corrupt { file: String, detail: String },
}

/// A remote's name: the rule of profile names, lower-cased.
pub fn parse_name(raw: &str) -> Result<String, RemoteError> {
    let bad = || RemoteError::Name {
        name: raw.to_string(),
    };
    match Profile::parse(raw) {
        Ok(p) => Ok(p.name().to_string()),
        Err(_) => Err(bad()),
    }
}

/// A host key fingerprint as `ssh-keygen -l` prints it: `SHA256:` and 43
/// characters of unpadded base64.
pub fn parse_fingerprint(raw: &str) -> Result<String, RemoteError> {
    let given = raw.trim();
    let ok = given.strip_prefix("SHA256:").is_some_and(|b64| {
        b64.len() == 43
            && b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    });
    if ok {
        Ok(given.to_string())
    } else {
        Err(RemoteError::Fingerprint {
            given: raw.to_string(),
        })
    }
}

/// What a new remote must not collide with on this machine.
#[derive(Debug, Clone, Default)]
pub struct Locals {
    /// The names of the local profiles.
    pub profiles: Vec<String>,
    /// The ports local profiles plan, with who plans them (`main's base port`).
    pub ports: Vec<(crate::ports::PortRange, String)>,
}

impl Locals {
    /// The profiles and their planned ports, from the local port plan.
    pub fn from_plan(profiles: Vec<String>, plan: &Plan) -> Locals {
        Locals {
            profiles,
            ports: plan
                .rows
                .iter()
                .map(|r| (r.range, format!("{}'s {} port", r.instance, r.surface)))
                .collect(),
        }
    }

    /// Who plans `port`, if a local profile does.
    fn planner(&self, port: u16) -> Option<&str> {
        self.ports
            .iter()
            .find(|(range, _)| range.contains(port))
            .map(|(_, by)| by.as_str())
    }
}

/// Every remote, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remotes {
    pub list: Vec<Remote>,
}

impl Remotes {
    pub fn get(&self, name: &str) -> Option<&Remote> {
        self.list.iter().find(|r| r.name == name)
    }

    /// Adds `remote` when its name is free (no remote, no local profile)
    /// and its tunnel's local port is nobody's; nothing changes otherwise.
    pub fn add(&mut self, remote: Remote, locals: &Locals) -> Result<(), RemoteError> {
        self.check_new(&remote.name, locals)?;
        if let Some(port) = remote.local_port() {
            self.check_local_port(port, locals)?;
        }
        self.list.push(remote);
        Ok(())
    }

    /// Whether a new tunnel may listen on `port`: no other tunnel does and
    /// no local profile plans it.
    pub fn check_local_port(&self, port: u16, locals: &Locals) -> Result<(), RemoteError> {
        if let Some(by) = self.tunnel_owner(port) {
            return Err(RemoteError::LocalPortTaken {
                port,
                by: format!("the tunnel of the remote {by}"),
            });
        }
        if let Some(by) = locals.planner(port) {
            return Err(RemoteError::LocalPortTaken {
                port,
                by: by.to_string(),
            });
        }
        Ok(())
    }

    /// Whether `name` may name a new remote.
    pub fn check_new(&self, name: &str, locals: &Locals) -> Result<(), RemoteError> {
        if self.get(name).is_some() {
            return Err(RemoteError::Duplicate {
                name: name.to_string(),
            });
        }
        if locals.profiles.iter().any(|p| p == name) {
            return Err(RemoteError::ProfileName {
                name: name.to_string(),
            });
        }
        Ok(())
    }

    /// Takes the remote named `name` out.
    pub fn remove(&mut self, name: &str) -> Result<Remote, RemoteError> {
        let at = self
            .list
            .iter()
            .position(|r| r.name == name)
            .ok_or_else(|| RemoteError::Unknown {
                name: name.to_string(),
            })?;
        Ok(self.list.remove(at))
    }

    /// The remote whose tunnel listens on `port`.
    fn tunnel_owner(&self, port: u16) -> Option<&str> {
        self.list
            .iter()
            .find(|r| r.local_port() == Some(port))
            .map(|r| r.name.as_str())
    }

    /// The local ports the tunnels take, with their remote's name: the only
    /// ports of remotes the local plan must step over.
    pub fn tunnel_ports(&self) -> Vec<(u16, &str)> {
        self.list
            .iter()
            .filter_map(|r| Some((r.local_port()?, r.name.as_str())))
            .collect()
    }

    /// Reads the file's text (`file` names it in errors); every entry is
    /// checked again as `remote add` checks it, so a hand edit cannot slip
    /// a public `ws://` or an option-like SSH target through.
    pub fn parse(text: &str, file: &str) -> Result<Remotes, RemoteError> {
        let corrupt = |detail: String| RemoteError::Corrupt {
            file: file.to_string(),
            detail,
        };
        let doc: FileDoc = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        let mut out = Remotes::default();
        for entry in doc.remotes {
            let name = parse_name(&entry.name).map_err(|e| corrupt(e.to_string()))?;
            if out.get(&name).is_some() {
                return Err(corrupt(format!("the name {name:?} appears twice")));
            }
            let kind = match (entry.url, entry.ssh) {
                (Some(url), None) => {
                    Kind::Direct(parse_url(&url).map_err(|e| corrupt(e.to_string()))?)
                }
                (None, Some(ssh)) => {
                    let target = parse_ssh(&ssh).map_err(|e| corrupt(e.to_string()))?;
                    let missing = |key: &str| corrupt(format!("{name}: {key} is missing"));
                    let host_key = entry.host_key.ok_or_else(|| missing("hostKey"))?;
                    Kind::Ssh(SshTunnel {
                        target,
                        remote_port: nonzero(
                            entry.remote_port.ok_or_else(|| missing("remotePort"))?,
                        )
                        .ok_or_else(|| corrupt(format!("{name}: remotePort is 0")))?,
                        local_port: nonzero(entry.local_port.ok_or_else(|| missing("localPort"))?)
                            .ok_or_else(|| corrupt(format!("{name}: localPort is 0")))?,
                        host_key: parse_fingerprint(&host_key)
                            .map_err(|e| corrupt(e.to_string()))?,
                        identity: entry.identity_file.map(PathBuf::from),
                    })
                }
                _ => return Err(corrupt(format!("{name}: give either url or ssh"))),
            };
            out.list.push(Remote { name, kind });
        }
        Ok(out)
    }

    /// The file's text (JSON, 2-space indent, a final line break).
    pub fn render(&self) -> String {
        let doc = FileDoc {
            remotes: self
                .list
                .iter()
                .map(|r| match &r.kind {
                    Kind::Direct(t) => Entry {
                        name: r.name.clone(),
                        url: Some(t.url.clone()),
                        ..Entry::default()
                    },
                    Kind::Ssh(t) => Entry {
                        name: r.name.clone(),
                        ssh: Some(t.target.to_string()),
                        remote_port: Some(t.remote_port),
                        local_port: Some(t.local_port),
                        host_key: Some(t.host_key.clone()),
                        identity_file: t.identity.as_ref().map(|p| p.display().to_string()),
                        ..Entry::default()
                    },
                })
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn nonzero(port: u16) -> Option<u16> {
    (port != 0).then_some(port)
}

/// `remotes.json`, as written.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    remotes: Vec<Entry>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssh: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_file: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortRange;

    fn ssh_remote(name: &str, local_port: u16) -> Remote {
        Remote {
            name: name.into(),
            kind: Kind::Ssh(SshTunnel {
                target: parse_ssh("ada@vps.example.com:2222").expect("target"),
                remote_port: 18789,
                local_port,
                host_key: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU".into(),
                identity: Some(PathBuf::from("/home/ada/.ssh/id_ed25519")),
            }),
        }
    }

    fn url_remote(name: &str, url: &str) -> Remote {
        Remote {
            name: name.into(),
            kind: Kind::Direct(parse_url(url).expect("url")),
        }
    }

    fn locals() -> Locals {
        Locals {
            profiles: vec!["main".into(), "rescue".into()],
            ports: vec![(
                PortRange::new(18789, 18792).expect("range"),
                "main's gateway".into(),
            )],
        }
    }

    fn check_add(existing: &[Remote], new: Remote, expected: Result<(), &str>) {
        let mut remotes = Remotes {
            list: existing.to_vec(),
        };
        let before = remotes.clone();
        match (remotes.add(new.clone(), &locals()), expected) {
            (Ok(()), Ok(())) => assert_eq!(remotes.list.last(), Some(&new)),
            (Err(e), Err(fragment)) => {
                assert!(e.to_string().contains(fragment), "{e}");
                assert_eq!(remotes, before, "a refused add changes nothing");
            }
            (got, want) => panic!("{}: got {got:?}, want {want:?}", new.name),
        }
    }

    #[test]
    fn adding() {
        let home = url_remote("home", "ws://100.101.102.103:18789");
        check_add(&[], home.clone(), Ok(()));
        check_add(&[], ssh_remote("vps", 28789), Ok(()));
        check_add(
            std::slice::from_ref(&home),
            url_remote("home", "wss://x.example.com"),
            Err("a remote named \"home\" exists already"),
        );
        check_add(
            &[],
            url_remote("main", "wss://x.example.com"),
            Err("\"main\" is the name of a local profile"),
        );
        check_add(
            &[ssh_remote("vps", 28789)],
            ssh_remote("vps2", 28789),
            Err("--local-port 28789 is planned for the tunnel of the remote vps"),
        );
        check_add(
            &[],
            ssh_remote("vps", 18790),
            Err("--local-port 18790 is planned for main's gateway"),
        );
    }

    #[test]
    fn names_and_fingerprints() {
        assert_eq!(parse_name("VPS_1"), Ok("vps_1".into()));
        for bad in ["", "-x", "a b", "a/b", &"x".repeat(65)] {
            assert!(
                matches!(parse_name(bad), Err(RemoteError::Name { .. })),
                "{bad:?}"
            );
        }
        let fp = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
        assert_eq!(parse_fingerprint(&format!(" {fp}\n")), Ok(fp.into()));
        for bad in [
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
            "SHA256:short",
            "MD5:aa:bb",
            &format!("{fp}="),
        ] {
            let e = parse_fingerprint(bad).expect_err(bad);
            assert!(e.to_string().contains("not a SHA256 fingerprint"), "{e}");
        }
    }

    #[test]
    fn file_round_trip() {
        let remotes = Remotes {
            list: vec![
                url_remote("home", "http://box.tail1234.ts.net:18789"),
                ssh_remote("vps", 28789),
            ],
        };
        let text = remotes.render();
        insta::assert_snapshot!(text);
        assert_eq!(Remotes::parse(&text, "remotes.json"), Ok(remotes.clone()));
        assert_eq!(remotes.tunnel_ports(), vec![(28789, "vps")]);
        assert_eq!(remotes.list[1].dial_url(), "ws://127.0.0.1:28789");
        assert_eq!(
            remotes.list[0].dial_url(),
            "ws://box.tail1234.ts.net:18789/"
        );
    }

    #[test]
    fn a_hand_edited_file_is_checked_again() {
        for (text, fragment) in [
            (
                r#"{"remotes":[{"name":"x","url":"ws://8.8.8.8:1"}]}"#,
                "unencrypted",
            ),
            (
                r#"{"remotes":[{"name":"x","ssh":"-oProxyCommand=sh@h","remotePort":1,"localPort":2,"hostKey":"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"}]}"#,
                "option",
            ),
            (
                r#"{"remotes":[{"name":"x","ssh":"a@h","remotePort":1,"localPort":2}]}"#,
                "hostKey is missing",
            ),
            (r#"{"remotes":[{"name":"x"}]}"#, "give either url or ssh"),
            (
                r#"{"remotes":[{"name":"x","url":"wss://a"},{"name":"X","url":"wss://b"}]}"#,
                "appears twice",
            ),
            (
                r#"{"remotes":[{"name":"x","url":"wss://a","token":"t"}]}"#,
                "unknown field",
            ),
            ("not json", "remotes.json is not a valid remotes file"),
        ] {
            let e = Remotes::parse(text, "remotes.json").expect_err(text);
            assert!(e.to_string().contains(fragment), "{text}: {e}");
            assert!(e.to_string().contains("remotes.json"), "{e}");
        }
        assert_eq!(Remotes::parse("{}", "f"), Ok(Remotes::default()));
    }

    #[test]
    fn removing() {
        let mut remotes = Remotes {
            list: vec![ssh_remote("vps", 1)],
        };
        assert!(remotes
            .remove("nope")
            .expect_err("unknown")
            .to_string()
            .contains("no remote named \"nope\""));
        assert_eq!(remotes.remove("vps").map(|r| r.name), Ok("vps".into()));
        assert!(remotes.list.is_empty());
    }
}
