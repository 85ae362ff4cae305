//! The decoded tails of the histories used last, so that a turn decodes
//! only the messages stored since the turn before rather than its whole
//! history every time.
//!
//! Sound because of two rules of the store: entries are append-only within
//! a session (deleted only with it), and a reset moves the session's
//! `reset_seq`. A tail is therefore known by the session's id, its
//! `reset_seq` and the last seq it holds; anything stored after that seq is
//! read and appended. A deleted and re-created session has a new id.
//!
//! Bounded by the stored bodies' bytes and a count of sessions, the least
//! recently used going first.

use std::collections::HashMap;

use crate::session::StoredMessage;

/// The stored bytes of all tails together.
pub(super) const MAX_BYTES: usize = 4 << 20;
/// Sessions with a tail.
pub(super) const MAX_SESSIONS: usize = 64;

/// What a tail is valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    pub session_id: String,
    pub reset_seq: i64,
    pub limit: usize,
}

#[derive(Debug)]
struct Tail {
    stamp: Stamp,
    /// Oldest first, each with its body's size.
    messages: Vec<(StoredMessage, usize)>,
    bytes: usize,
    used: u64,
}

impl Tail {
    fn last_seq(&self) -> Option<u64> {
        self.messages.last().map(|(m, _)| m.seq)
    }
}

#[derive(Debug, Default)]
pub(super) struct Tails {
    by_key: HashMap<String, Tail>,
    bytes: usize,
    tick: u64,
}

impl Tails {
    /// The seq after which `key`'s messages must be read, when a tail
    /// valid for `stamp` is held (its reset seq for a tail of an empty
    /// history).
    pub fn read_after(&self, key: &str, stamp: &Stamp) -> Option<u64> {
        let tail = self.by_key.get(key).filter(|t| &t.stamp == stamp)?;
        Some(
            tail.last_seq()
                .unwrap_or(u64::try_from(stamp.reset_seq).unwrap_or(0)),
        )
    }

    /// Adds the messages read after `after` (oldest first) to `key`'s tail
    /// and returns the whole history, at most `stamp.limit` messages.
    /// `after: None` takes `fresh` as the whole history. `None` when the
    /// tail moved on or went since `after` was given: what was read is
    /// only a part, and the caller reads the whole history instead.
    pub fn extend(
        &mut self,
        key: &str,
        stamp: Stamp,
        after: Option<u64>,
        fresh: Vec<(StoredMessage, usize)>,
    ) -> Option<Vec<StoredMessage>> {
        let limit = stamp.limit;
        let whole = after.is_none() || fresh.len() >= limit;
        if !whole && self.read_after(key, &stamp) != after {
            return None;
        }
        self.tick += 1;
        let mut tail = match self.by_key.remove(key) {
            Some(t) => {
                self.bytes -= t.bytes;
                t
            }
            None => Tail {
                stamp: stamp.clone(),
                messages: Vec::new(),
                bytes: 0,
                used: 0,
            },
        };
        if whole {
            tail.stamp = stamp;
            tail.messages.clear();
            tail.bytes = 0;
        }
        tail.used = self.tick;
        tail.bytes += fresh.iter().map(|(_, n)| n).sum::<usize>();
        tail.messages.extend(fresh);
        if tail.messages.len() > limit {
            let cut = tail.messages.len() - limit;
            let gone: usize = tail.messages.drain(..cut).map(|(_, n)| n).sum();
            tail.bytes -= gone;
        }
        let out: Vec<StoredMessage> = tail.messages.iter().map(|(m, _)| m.clone()).collect();
        if tail.bytes <= MAX_BYTES {
            self.bytes += tail.bytes;
            self.by_key.insert(key.to_string(), tail);
            self.evict();
        }
        Some(out)
    }

    /// Drops the least recently used tails until both bounds hold.
    fn evict(&mut self) {
        while self.bytes > MAX_BYTES || self.by_key.len() > MAX_SESSIONS {
            let Some(oldest) = self
                .by_key
                .iter()
                .min_by_key(|(_, t)| t.used)
                .map(|(k, _)| k.clone())
            else {
                return;
            };
            if let Some(t) = self.by_key.remove(&oldest) {
                self.bytes -= t.bytes;
            }
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Message, UserMessage};

    fn msg(seq: u64) -> (StoredMessage, usize) {
        let m = StoredMessage {
            id: format!("id-{seq}"),
            seq,
            run_id: None,
            message: Message::User(UserMessage {
                content: format!("message {seq}"),
                timestamp: 0,
                idempotency_key: None,
            }),
        };
        (m, 100)
    }

    fn stamp(limit: usize) -> Stamp {
        Stamp {
            session_id: "s-1".into(),
            reset_seq: 0,
            limit,
        }
    }

    fn seqs(v: &[StoredMessage]) -> Vec<u64> {
        v.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn a_tail_grows_by_what_was_read_after_it() {
        let mut t = Tails::default();
        assert_eq!(t.read_after("k", &stamp(10)), None);
        let out = t
            .extend("k", stamp(10), None, vec![msg(1), msg(2)])
            .unwrap();
        assert_eq!(seqs(&out), [1, 2]);
        assert_eq!(t.read_after("k", &stamp(10)), Some(2));
        let out = t.extend("k", stamp(10), Some(2), vec![msg(3)]).unwrap();
        assert_eq!(seqs(&out), [1, 2, 3]);
        assert_eq!(t.bytes(), 300);
    }

    #[test]
    fn the_tail_keeps_the_newest_up_to_its_limit() {
        let mut t = Tails::default();
        t.extend("k", stamp(3), None, vec![msg(1), msg(2), msg(3)]);
        let out = t
            .extend("k", stamp(3), Some(3), vec![msg(4), msg(5)])
            .unwrap();
        assert_eq!(seqs(&out), [3, 4, 5]);
        assert_eq!(t.bytes(), 300);
        // As many new messages as the limit: they are the whole history.
        let out = t
            .extend("k", stamp(3), Some(5), vec![msg(6), msg(7), msg(8)])
            .unwrap();
        assert_eq!(seqs(&out), [6, 7, 8]);
    }

    #[test]
    fn a_reset_or_another_session_id_invalidates_the_tail() {
        let mut t = Tails::default();
        t.extend("k", stamp(10), None, vec![msg(1)]);
        let reset = Stamp {
            reset_seq: 2,
            ..stamp(10)
        };
        assert_eq!(t.read_after("k", &reset), None);
        let other = Stamp {
            session_id: "s-2".into(),
            ..stamp(10)
        };
        assert_eq!(t.read_after("k", &other), None);
        assert_eq!(t.read_after("k", &stamp(11)), None);
        // A whole read under the new stamp replaces the tail.
        let out = t.extend("k", reset.clone(), None, vec![msg(3)]).unwrap();
        assert_eq!(seqs(&out), [3]);
        assert_eq!(t.read_after("k", &reset), Some(3));
        assert_eq!(t.bytes(), 100);
    }

    #[test]
    fn a_tail_that_moved_on_meanwhile_is_not_patched_with_a_partial_read() {
        let mut t = Tails::default();
        t.extend("k", stamp(10), None, vec![msg(1), msg(2)]);
        // Another caller appended 3 and 4 after this one read from 2.
        t.extend("k", stamp(10), Some(2), vec![msg(3), msg(4)]);
        assert_eq!(t.extend("k", stamp(10), Some(2), vec![msg(3)]), None);
        assert_eq!(t.read_after("k", &stamp(10)), Some(4), "the tail is kept");
        // Nor is a tail that went meanwhile.
        assert_eq!(t.extend("gone", stamp(10), Some(2), vec![msg(3)]), None);
    }

    #[test]
    fn the_least_recently_used_tails_go_first() {
        let mut t = Tails::default();
        for i in 0..=MAX_SESSIONS {
            t.extend(&format!("k{i}"), stamp(10), None, vec![msg(1)]);
        }
        assert_eq!(t.len(), MAX_SESSIONS);
        assert_eq!(t.read_after("k0", &stamp(10)), None);
        assert_eq!(t.read_after("k1", &stamp(10)), Some(1));
        // A history larger than the whole budget is never kept.
        let big = (1..=3)
            .map(|s| (msg(s).0, MAX_BYTES / 2))
            .collect::<Vec<_>>();
        let out = t.extend("big", stamp(10), None, big).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(t.read_after("big", &stamp(10)), None);
        assert!(t.bytes() <= MAX_BYTES);
    }
}
