//! The pairing store `<state dir>/telegram/pairing.json`: pending requests
//! and approved users, shared by the running bot and the `pairing` command.
//! Every change is a read-modify-write under an OS file lock
//! (`pairing.lock`) followed by an atomic replace, so the two never lose
//! each other's edits.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use omniclaw_core::rescue::{PairingCode, Pairings, Pending};

use super::{ensure_dir, telegram_dir, StateError};

/// `<state dir>/telegram/pairing.json`.
pub fn pairing_path(state_dir: &Path) -> PathBuf {
    telegram_dir(state_dir).join("pairing.json")
}

/// The pairing store of one profile.
#[derive(Debug, Clone)]
pub struct PairingStore {
    path: PathBuf,
}

impl PairingStore {
    pub fn new(state_dir: &Path) -> PairingStore {
        PairingStore {
            path: pairing_path(state_dir),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current pairings (empty when there is no store yet).
    pub fn load(&self) -> Result<Pairings, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pairings::default()),
            Err(source) => {
                return Err(StateError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        decode(&text).map_err(|reason| StateError::Corrupt {
            path: self.path.clone(),
            reason,
        })
    }

    /// Applies `change` under the lock and saves the result when it says so
    /// (`(value, true)`); a refused change writes nothing.
    pub fn update<R>(
        &self,
        change: impl FnOnce(&mut Pairings) -> (R, bool),
    ) -> Result<R, StateError> {
        if let Some(dir) = self.path.parent() {
            ensure_dir(dir)?;
        }
        crate::fsx::update(&self.path, crate::fsx::Options::default(), |_| {
            // Decoded by `load` for its messages; the lock is already held.
            let mut pairings = self.load()?;
            let (result, changed) = change(&mut pairings);
            Ok((changed.then(|| encode(&pairings).into_bytes()), result))
        })
        .map_err(|e| match e {
            crate::fsx::UpdateError::Refused(e) => e,
            crate::fsx::UpdateError::Io { path, source, .. } => StateError::Write { path, source },
        })
    }
}

fn encode(p: &Pairings) -> String {
    let pending: Vec<Value> = p
        .pending
        .iter()
        .map(|p| {
            json!({
                "code": p.code.as_str(),
                "userId": p.user_id,
                "who": p.who,
                "chatId": p.chat_id,
                "created": p.created,
            })
        })
        .collect();
    let v = json!({ "pending": pending, "approved": p.approved });
    format!("{v:#}\n")
}

fn decode(text: &str) -> Result<Pairings, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let pending = v
        .get("pending")
        .and_then(Value::as_array)
        .ok_or("no \"pending\" list")?
        .iter()
        .map(|p| -> Result<Pending, String> {
            let code = p
                .get("code")
                .and_then(Value::as_str)
                .ok_or("a request has no code")?;
            Ok(Pending {
                code: PairingCode::parse(code).map_err(|e| e.to_string())?,
                user_id: p
                    .get("userId")
                    .and_then(Value::as_u64)
                    .ok_or("a request has no userId")?,
                who: p
                    .get("who")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                chat_id: p
                    .get("chatId")
                    .and_then(Value::as_i64)
                    .ok_or("a request has no chatId")?,
                created: p
                    .get("created")
                    .and_then(Value::as_u64)
                    .ok_or("a request has no created time")?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let approved = v
        .get("approved")
        .and_then(Value::as_array)
        .ok_or("no \"approved\" list")?
        .iter()
        .map(|id| {
            id.as_u64()
                .ok_or_else(|| format!("approved id {id} is not a number"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Pairings { pending, approved })
}

#[cfg(test)]
mod tests {
    use super::*;
    use omniclaw_core::rescue::{PairingOutcome, CODE_LEN};

    #[test]
    fn requests_survive_a_reload_and_approval_is_shared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = PairingStore::new(dir.path());
        assert_eq!(store.load().expect("empty"), Pairings::default());
        let code = PairingCode::from_random(&[5; CODE_LEN]);
        let outcome = store
            .update(|p| {
                let o = p.request(9, "@op", 9, 100, code.clone());
                (o, true)
            })
            .expect("saved");
        assert!(matches!(outcome, Some(PairingOutcome::Created(_))));
        let other = PairingStore::new(dir.path());
        assert_eq!(other.load().expect("loads").pending.len(), 1);
        other
            .update(|p| {
                let r = p.approve(&code, 200);
                let ok = r.is_ok();
                (r, ok)
            })
            .expect("saved")
            .expect("approved");
        let after = store.load().expect("loads");
        assert_eq!(after.approved, vec![9]);
        assert!(after.pending.is_empty());
    }

    #[test]
    fn a_damaged_store_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = PairingStore::new(dir.path());
        std::fs::create_dir_all(telegram_dir(dir.path())).expect("dir");
        std::fs::write(store.path(), "{}").expect("write");
        let err = store.load().expect_err("damaged");
        assert!(err.to_string().contains("pairing.json"), "{err}");
    }
}
