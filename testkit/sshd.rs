//! A real OpenSSH server for tests: Debian's `sshd` on a free loopback
//! port with its own config, a host key made for it and one authorized key
//! (the client's, also made here), run in the foreground (`-D -e`) and
//! killed when dropped. Needs `openssh-server` (scripts/install-deps.sh)
//! and root, as sshd logs users in.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts the server.
pub const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

/// Why an sshd cannot run here, or `None` when it can.
pub fn unavailable() -> Option<String> {
    let why = why_unavailable()?;
    // CI installs openssh-server and runs as root: there a missing sshd is
    // a broken setup, never a reason to skip.
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (CI=true: the remote gateway tests must run)");
    }
    Some(why)
}

fn why_unavailable() -> Option<String> {
    if !Path::new(SSHD).exists() {
        return Some(format!(
            "{SSHD} is missing: install openssh-server (scripts/install-deps.sh does)"
        ));
    }
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("sshd needs root to log a user in".into());
    }
    None
}

fn keygen(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "omniclaw-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen")
        .success();
    assert!(ok, "ssh-keygen failed for {}", path.display());
}

impl Sshd {
    /// [`Sshd::start`] where an sshd can run; elsewhere says why the test
    /// is skipped and gives `None`.
    pub fn start_or_skip() -> Option<Sshd> {
        if let Some(why) = unavailable() {
            eprintln!("skipped: {why}");
            return None;
        }
        Some(Sshd::start())
    }

    /// Makes the keys and config and starts the server on a free port.
    pub fn start() -> Sshd {
        let dir = tempfile::tempdir().expect("sshd dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut sshd = Sshd {
            dir,
            port,
            child: None,
        };
        keygen(&sshd.host_key());
        keygen(&sshd.identity());
        std::fs::copy(
            sshd.identity().with_extension("pub"),
            sshd.dir.path().join("authorized_keys"),
        )
        .expect("authorized_keys");
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {dir}/authorized_keys\n\
             PidFile {dir}/sshd.pid\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nAllowTcpForwarding yes\n\
             StrictModes no\nLogLevel VERBOSE\n",
            host = sshd.host_key().display(),
            dir = sshd.dir.path().display(),
        );
        std::fs::write(sshd.dir.path().join("sshd_config"), config).expect("config");
        // Privilege separation needs this directory; systemd makes it at boot.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        sshd.run();
        sshd
    }

    fn run(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("sshd.log")).expect("log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-o", "StrictModes=no", "-f"])
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Gives the server a new host key and starts it again on the same
    /// port, as a reinstalled (or impersonated) server would look.
    pub fn change_host_key(&mut self) {
        self.stop();
        keygen(&self.host_key());
        self.run();
    }

    /// The server's host key (private; `.pub` beside it).
    pub fn host_key(&self) -> PathBuf {
        self.dir.path().join("host_ed25519")
    }

    /// The client's private key, authorized on the server.
    pub fn identity(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    /// `SHA256:…` of the host key, as `ssh-keygen -lf` prints it.
    pub fn fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(self.host_key().with_extension("pub"))
            .output()
            .expect("ssh-keygen -l");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find(|w| w.starts_with("SHA256:"))
            .expect("a SHA256 fingerprint")
            .to_string()
    }

    /// `USER@127.0.0.1:PORT` for the user running the tests.
    pub fn target(&self) -> String {
        let user = Command::new("id").arg("-un").output().expect("id -un");
        format!(
            "{}@127.0.0.1:{}",
            String::from_utf8_lossy(&user.stdout).trim(),
            self.port
        )
    }

    /// `omniclaw [FLAGS] remote add NAME --ssh …` in `home` for a gateway
    /// on this server's loopback `remote_port`, its host key accepted by
    /// fingerprint and `token` on stdin; the tunnel's local port.
    pub fn add_remote(
        &self,
        home: &crate::Home,
        flags: &[&str],
        name: &str,
        remote_port: u16,
        token: &str,
    ) -> u16 {
        let identity = self.identity().display().to_string();
        let (target, port, fingerprint) =
            (self.target(), remote_port.to_string(), self.fingerprint());
        let mut args = flags.to_vec();
        args.extend_from_slice(&[
            "remote",
            "add",
            name,
            "--ssh",
            &target,
            "--remote-port",
            &port,
            "--identity-file",
            &identity,
            "--host-key-fingerprint",
            &fingerprint,
            "--token-stdin",
        ]);
        home.run_stdin(&args, token, &[]).expect_code(0);
        let listed = home.run(&["remote", "list", "--json"]).json();
        listed["remotes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"] == name)
            .and_then(|r| r["localPort"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("no local port for {name}: {listed}"))
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
