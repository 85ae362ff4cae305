//! An operator's answer to an approval (a tool call that waits for a yes),
//! in the words of OpenClaw's `exec.approval.resolve` and for people. One
//! type for every surface that answers: the protocol, Telegram's buttons,
//! the desktop app.

/// An operator's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    AllowOnce,
    AllowAlways,
    Deny,
}

impl Decision {
    /// OpenClaw's wire words: `allow-once`, `allow-always`, `deny`.
    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "allow-once" => Some(Decision::AllowOnce),
            "allow-always" => Some(Decision::AllowAlways),
            "deny" => Some(Decision::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::AllowOnce => "allow-once",
            Decision::AllowAlways => "allow-always",
            Decision::Deny => "deny",
        }
    }

    /// The words a decided approval message ends with.
    pub fn words(self) -> &'static str {
        match self {
            Decision::AllowOnce => "allowed once",
            Decision::AllowAlways => "allowed always (added to tools.exec.allowlist)",
            Decision::Deny => "denied",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_words_read_back() {
        for d in [Decision::AllowOnce, Decision::AllowAlways, Decision::Deny] {
            assert_eq!(Decision::parse(d.as_str()), Some(d));
        }
        assert_eq!(Decision::parse("allow"), None);
    }
}
