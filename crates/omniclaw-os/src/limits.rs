//! The open-file limit of this process.
//!
//! Every client of a gateway holds a file descriptor, and most systems
//! start programs with a soft limit of 1024 (systemd's default, and a
//! login shell's) under a hard limit of hundreds of thousands: a gateway
//! that kept the soft one would stop accepting at about a thousand
//! connections. Raising the soft limit up to the hard one needs no
//! privilege.

/// The open-file limits before and after [`raise_open_files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub before: u64,
    pub now: u64,
}

/// Lifts the soft open-file limit to the hard one. `None` where there is
/// no such limit (Windows) or it cannot be read; an unlimited hard limit
/// (macOS) leaves the soft one as it is, since the kernel refuses an
/// unlimited soft one.
pub fn raise_open_files() -> Option<OpenFiles> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let lim = getrlimit(Resource::Nofile);
        let before = lim.current?;
        let Some(hard) = lim.maximum else {
            return Some(OpenFiles {
                before,
                now: before,
            });
        };
        if before >= hard {
            return Some(OpenFiles {
                before,
                now: before,
            });
        }
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        let now = match setrlimit(Resource::Nofile, raised) {
            Ok(()) => hard,
            Err(_) => before,
        };
        Some(OpenFiles { before, now })
    }
    #[cfg(not(unix))]
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let got = raise_open_files().expect("unix has the limit");
        let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(Some(got.now), lim.current);
        assert!(got.now >= got.before);
        if let Some(hard) = lim.maximum {
            assert_eq!(got.now, hard);
        }
    }
}
