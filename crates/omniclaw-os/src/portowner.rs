//! Which process holds a port, so errors can name it.

use std::collections::HashMap;

/// A process listening on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub name: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.name)
    }
}

/// The process listening on TCP `port`, when the OS tells us.
pub fn holder(port: u16) -> Option<Holder> {
    if port == 0 {
        return None;
    }
    listeners::get_process_by_port(port, listeners::Protocol::TCP)
        .ok()
        .map(|p| Holder {
            pid: p.pid,
            name: p.name,
        })
}

/// Every TCP port that some process listens on, with its holder. One scan of
/// the OS tables instead of one per port, for checks over many ports.
pub fn listening() -> HashMap<u16, Holder> {
    let mut out = HashMap::new();
    if let Ok(all) = listeners::get_all() {
        for l in all {
            if l.protocol == listeners::Protocol::TCP && l.state == listeners::SocketState::Listen {
                out.entry(l.socket.port()).or_insert(Holder {
                    pid: l.process.pid,
                    name: l.process.name,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        windows,
        ignore = "needs a real Windows: Wine reports no owner for our own listener"
    )]
    fn finds_our_own_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let h = holder(port).expect("the OS reports our listener");
        assert_eq!(h.pid, std::process::id());
        assert_eq!(
            listening().get(&port).map(|h| h.pid),
            Some(std::process::id())
        );
        drop(listener);
        assert_eq!(holder(0), None);
    }
}
