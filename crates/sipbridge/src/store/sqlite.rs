//! `sqlite:PATH`: one file, one node. The SQLite library is compiled in (rusqlite's
//! `bundled`), so the binary needs no system libsqlite3 and gets a known version.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension as _, TransactionBehavior};

use super::{pending_migrations, unix_now, Binding, Fail, Row, COLUMNS, CREATE_SCHEMA_VERSION, MIGRATIONS, UPSERT};

/// How long a statement waits for a lock another connection holds (an operator's `sqlite3`
/// shell, a backup) before failing: long enough for a backup step, short enough to be seen.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    pub(super) fn open(path: &Path) -> Result<Sqlite, Fail> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers never block the writer thread, and a commit is an append, not a
        // rewrite of the journal. The setting persists in the file.
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), journal_mode = mode, "SQLite refused WAL mode (a network filesystem?)");
        }
        // NORMAL in WAL mode survives a crash of the process intact; a power cut may lose the
        // last commits, which is the last few REGISTERs, and phones repeat those anyway.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrate(&mut conn)?;
        Ok(Sqlite { conn })
    }

    pub(super) fn load(&mut self) -> Result<Vec<Binding>, Fail> {
        let mut statement = self.conn.prepare(&format!("SELECT {COLUMNS} FROM bindings ORDER BY aor, contact"))?;
        let rows = statement.query_map([], |r| {
            Ok(Row {
                aor: r.get(0)?,
                contact: r.get(1)?,
                original_contact: r.get(2)?,
                source: r.get(3)?,
                call_id: r.get(4)?,
                cseq: r.get(5)?,
                expires_at: r.get(6)?,
                q: r.get(7)?,
                instance: r.get(8)?,
                user_agent: r.get(9)?,
                target: r.get(10)?,
                nat: r.get(11)?,
            })
        })?;
        let mut bindings = Vec::new();
        for row in rows {
            bindings.push(row?.into_binding()?);
        }
        Ok(bindings)
    }

    pub(super) fn put(&mut self, binding: &Binding) -> Result<(), Fail> {
        let r = Row::of(binding);
        self.conn.prepare_cached(&UPSERT.replace('$', "?"))?.execute(params![
            r.aor,
            r.contact,
            r.original_contact,
            r.source,
            r.call_id,
            r.cseq,
            r.expires_at,
            r.q,
            r.instance,
            r.user_agent,
            r.target,
            r.nat
        ])?;
        Ok(())
    }

    pub(super) fn remove(&mut self, aor: &str, contact: &str) -> Result<(), Fail> {
        self.conn.prepare_cached("DELETE FROM bindings WHERE aor = ?1 AND contact = ?2")?.execute(params![aor, contact])?;
        Ok(())
    }

    pub(super) fn remove_aor(&mut self, aor: &str) -> Result<(), Fail> {
        self.conn.prepare_cached("DELETE FROM bindings WHERE aor = ?1")?.execute(params![aor])?;
        Ok(())
    }

    pub(super) fn remove_expired(&mut self, now_unix: u64) -> Result<u64, Fail> {
        let now = i64::try_from(now_unix).unwrap_or(i64::MAX);
        let removed = self.conn.prepare_cached("DELETE FROM bindings WHERE expires_at <= ?1")?.execute(params![now])?;
        Ok(removed as u64)
    }
}

/// Applies the missing [`MIGRATIONS`] in one write transaction (IMMEDIATE, so a second
/// process opening the same file waits rather than migrating alongside).
fn migrate(conn: &mut Connection) -> Result<(), Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(CREATE_SCHEMA_VERSION)?;
    let current: Option<i64> = tx.query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0)).optional()?.flatten();
    for step in pending_migrations(current.unwrap_or(0))? {
        tx.execute_batch(MIGRATIONS[step])?;
        tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)", params![step as i64 + 1, unix_now()])?;
    }
    tx.commit()?;
    Ok(())
}
