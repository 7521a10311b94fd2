//! A copy of each audit entry to syslog after its commit (issue 17; docs/commands-store.md#log).
//!
//! The audit log lives in the store, so whoever can write the store's files can cut its tail
//! (the checkpoint and the state head make that visible to vpnca, but only to vpnca). With the
//! store setting `syslog_socket` (`vpnca log --syslog SOCKET`), every write sends its new audit
//! entries — sequence number and MAC included — to a syslog socket (usually `/dev/log`, read by
//! journald or rsyslog) right after it commits, so a copy of the tail exists somewhere the
//! store's writers may not reach. The setting is an item of the authenticated state: it cannot
//! be switched off, or pointed elsewhere, by an edit of the file.
//!
//! Sending never fails a command (its change is committed already): a socket that does not
//! answer is reported through the store's notice hook ([`Store::on_notice`]), and the entries
//! that were not sent are named, so that they can be copied from `vpnca log`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

use super::{Store, audit_append, audit_entries_from, crypto, meta_get, meta_set, state};
use crate::{Error, Result};

/// The store setting (an item of the state, [`state::SETTINGS`]): the socket's path.
pub(crate) const SETTING: &str = "syslog_socket";

/// `authpriv.info`: facility 10 (security/authorization, private), severity 6.
const PRI: u8 = 10 * 8 + 6;

impl Store {
    /// Registers what to do with a notice the store cannot return as an error because the
    /// change it concerns is committed (an audit entry that could not be sent to syslog). The
    /// CLI prints it as a warning.
    pub fn on_notice(&mut self, f: impl Fn(&str) + Send + 'static) {
        self.notice = Some(Box::new(f));
    }

    fn notify(&self, msg: &str) {
        if let Some(f) = &self.notice {
            f(msg);
        }
    }

    /// The syslog socket the audit entries go to, if the store has one set (proven like
    /// every setting when the store is unlocked).
    pub fn syslog_socket(&self) -> Result<Option<String>> {
        self.setting(SETTING)
    }

    /// Sends each new audit entry to syslog from now on (`Some(socket)`), or stops (`None`):
    /// a store setting, audited (`syslog`). The socket must answer now: a test message is sent
    /// first, so a wrong path is refused (exit 2) instead of losing every later entry.
    pub fn set_syslog(&self, socket: Option<&Path>) -> Result<()> {
        let text = match socket {
            Some(p) => {
                let text = p.to_str().ok_or_else(|| {
                    Error::input("--syslog", format!("{} is not UTF-8", p.display()))
                })?;
                send(
                    p,
                    &format!(
                        "<{PRI}>vpnca[{}]: syslog copy of the audit log of {} starts",
                        std::process::id(),
                        self.dir().display()
                    ),
                )
                .map_err(|e| {
                    Error::input(
                        "--syslog",
                        format!("cannot send to the syslog socket {}: {e}", p.display()),
                    )
                })?;
                Some(text.to_string())
            }
            None => None,
        };
        self.write(|tx, keys| {
            let was = meta_get(tx.engine(), SETTING)?;
            if was == text {
                return Ok(());
            }
            match &text {
                Some(t) => meta_set(tx, SETTING, t)?,
                None => {
                    tx.touch(state::Item::Setting(SETTING))?;
                    tx.engine().meta_delete(SETTING)?;
                }
            }
            audit_append(
                tx,
                keys,
                "syslog",
                "",
                "",
                &serde_json::json!({ "socket": text, "was": was }),
            )
        })
    }

    /// After a commit: sends the audit entries after `after_seq` to the syslog socket, if the
    /// store has one. Problems go to the notice hook.
    /// (The setting was proven inside the write, before its commit.)
    pub(crate) fn forward_audit(&self, after_seq: i64) {
        let socket = match meta_get(&self.conn, SETTING) {
            Ok(Some(s)) => s,
            _ => return,
        };
        let entries = match audit_entries_from(&self.conn, after_seq + 1) {
            Ok(e) => e,
            Err(e) => {
                self.notify(&format!(
                    "could not read the audit entries to send to syslog: {e}"
                ));
                return;
            }
        };
        for e in &entries {
            let line = serde_json::json!({
                "store": self.dir().display().to_string(),
                "seq": e.seq,
                "time": crate::fmt_time(e.time),
                "user": e.user,
                "action": e.action,
                "name": e.name,
                "serial": e.serial,
                "detail": e.detail,
                "mac": crypto::hex(&e.mac),
            });
            let msg = format!("<{PRI}>vpnca[{}]: {line}", std::process::id());
            if let Err(err) = send(Path::new(&socket), &msg) {
                let last = entries.last().map_or(e.seq, |l| l.seq);
                self.notify(&format!(
                    "audit entries {} to {last} were committed but not sent to the syslog socket {socket}: {err} (`vpnca log` shows them)",
                    e.seq
                ));
                return;
            }
        }
    }
}

/// One datagram to a Unix syslog socket.
fn send(socket: &Path, msg: &str) -> std::io::Result<()> {
    let s = UnixDatagram::unbound()?;
    s.send_to(msg.as_bytes(), socket).map(|_| ())
}
