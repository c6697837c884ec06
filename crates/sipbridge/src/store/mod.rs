//! Registrar bindings that outlive a restart: in memory, in an SQLite file (one node) or in
//! PostgreSQL (several nodes behind a SIP load balancer share one database).
//!
//! Start-up opens the store ([`open`], which also migrates the schema), loads the bindings
//! synchronously before the engine runs, then hands the store to a [`StoreHandle`]: a
//! writer thread fed by a channel, so the engine task never waits on disk or network.
//! [`start`] does all three on the writer thread, which is what an async caller wants: the
//! PostgreSQL driver runs its own runtime and panics inside someone else's.

mod handle;
mod pg;
mod sqlite;

use std::collections::BTreeMap;

use crate::config::StoreUrl;

pub use handle::{start, StoreHandle};

/// One registered contact of an AOR (RFC 3261 §10.3), as the registrar keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The endpoint name (the AOR's user part).
    pub aor: String,
    /// The Contact URI as the phone registered it; with `aor`, the key.
    pub contact: String,
    /// The whole Contact value as the phone wrote it (URI and contact parameters).
    pub original_contact: String,
    /// Where requests go, after NAT fix-up (schema version 2; `None` in rows written by
    /// version 1, where it was `contact`).
    pub target: Option<String>,
    /// Why the registration is taken as behind NAT, in words; `None`: not NATed.
    pub nat: Option<String>,
    /// The flow it registered over, e.g. `"udp:203.0.113.7:5060"`.
    pub source: String,
    /// Call-ID of the REGISTER: a refresh must carry the same one with a higher CSeq.
    pub call_id: String,
    /// CSeq number of the last REGISTER that refreshed it.
    pub cseq: u32,
    /// Unix seconds (wall clock, so it means the same after a restart or on another node).
    pub expires_at: u64,
    /// The Contact's q-value in thousandths (`q=0.5` is 500, 0..=1000); `None` when absent.
    /// An integer so that equality and the stored value are exact.
    pub q: Option<u16>,
    /// The `+sip.instance` Contact parameter (RFC 5626), if any.
    pub instance: Option<String>,
    /// The REGISTER's User-Agent, if any, for display.
    pub user_agent: Option<String>,
}

/// A failed store operation. The URL in it is masked: never the password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed: `detail` is the driver's error with its causes.
    #[error("store {url}: {detail}")]
    Backend {
        /// [`StoreUrl::masked`].
        url: String,
        /// The driver's error chain, `": "`-joined.
        detail: String,
    },
    /// The database was migrated by a newer sipbridge; writing to it could lose data.
    #[error(
        "store {url}: schema version {found} is newer than version {known}, the newest this sipbridge knows: \
         run a newer sipbridge, or point [store] url at another database"
    )]
    NewerSchema {
        /// [`StoreUrl::masked`].
        url: String,
        /// The version in the database.
        found: i64,
        /// [`SCHEMA_VERSION`].
        known: u32,
    },
}

/// The schema, one step per entry: entry `i` takes a database from version `i` to `i + 1`.
/// The SQL is the same for SQLite and PostgreSQL. Append only: a released step never
/// changes, since databases out there already ran it.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE bindings (
        aor TEXT NOT NULL,
        contact TEXT NOT NULL,
        original_contact TEXT NOT NULL,
        source TEXT NOT NULL,
        call_id TEXT NOT NULL,
        cseq BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        q INTEGER,
        instance TEXT,
        user_agent TEXT,
        PRIMARY KEY (aor, contact)
    );
    CREATE INDEX bindings_expires_at ON bindings (expires_at);",
    // 2: where requests go after NAT fix-up, and why (kept per registration for the
    // direct-media `nonat` rule).
    "ALTER TABLE bindings ADD COLUMN target TEXT;
    ALTER TABLE bindings ADD COLUMN nat TEXT;",
];

/// The schema version this build writes: the number of migrations it knows.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Creates the version table if needed; the same SQL on both databases. A row per applied
/// step, with when (unix seconds), so an operator can see the history.
const CREATE_SCHEMA_VERSION: &str = "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

/// Every column of `bindings` in [`Binding`] field order, for SELECT and INSERT.
const COLUMNS: &str = "aor, contact, original_contact, source, call_id, cseq, expires_at, q, instance, user_agent, target, nat";

/// Upsert keyed by (aor, contact); `ON CONFLICT … DO UPDATE` is spelled the same in SQLite
/// (3.24+) and PostgreSQL (9.5+). `$n` placeholders; SQLite gets them as `?n`.
const UPSERT: &str =
    "INSERT INTO bindings (aor, contact, original_contact, source, call_id, cseq, expires_at, q, instance, user_agent, target, nat)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (aor, contact) DO UPDATE SET original_contact = excluded.original_contact, source = excluded.source,
        call_id = excluded.call_id, cseq = excluded.cseq, expires_at = excluded.expires_at, q = excluded.q,
        instance = excluded.instance, user_agent = excluded.user_agent, target = excluded.target, nat = excluded.nat";

/// An open store: the backend and its masked URL for errors and logs.
pub struct Store {
    url: String,
    backend: Backend,
}

enum Backend {
    /// Keyed like the tables, so it behaves like them (and loads in the same order).
    Memory(BTreeMap<(String, String), Binding>),
    Sqlite(sqlite::Sqlite),
    /// Boxed: the client and its config are large, and a store is made once.
    Postgres(Box<pg::Pg>),
}

/// Opens the store `url` names, creating the SQLite file or the tables if needed and
/// applying any missing migrations (in one transaction; a no-op when up to date).
///
/// Blocking. Do not call it inside a tokio runtime with a PostgreSQL URL (use [`start`]).
pub fn open(url: &StoreUrl) -> Result<Store, StoreError> {
    let masked = url.masked();
    let backend = match url {
        StoreUrl::Memory => Ok(Backend::Memory(BTreeMap::new())),
        StoreUrl::Sqlite(path) => sqlite::Sqlite::open(path).map(Backend::Sqlite),
        StoreUrl::Postgres(url) => pg::Pg::open(url).map(|db| Backend::Postgres(Box::new(db))),
    };
    let backend = backend.map_err(|fail| fail.into_error(&masked))?;
    Ok(Store { url: masked, backend })
}

impl Store {
    /// The URL it was opened with, masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every binding, expired ones included (the registrar decides), ordered by (aor, contact).
    pub fn load_bindings(&mut self) -> Result<Vec<Binding>, StoreError> {
        let result = match &mut self.backend {
            Backend::Memory(map) => Ok(map.values().cloned().collect()),
            Backend::Sqlite(db) => db.load(),
            Backend::Postgres(db) => db.load(),
        };
        result.map_err(|fail| fail.into_error(&self.url))
    }

    /// Inserts `binding`, or replaces the one with the same (aor, contact).
    pub fn put_binding(&mut self, binding: &Binding) -> Result<(), StoreError> {
        let result = match &mut self.backend {
            Backend::Memory(map) => {
                map.insert((binding.aor.clone(), binding.contact.clone()), binding.clone());
                Ok(())
            }
            Backend::Sqlite(db) => db.put(binding),
            Backend::Postgres(db) => db.put(binding),
        };
        result.map_err(|fail| fail.into_error(&self.url))
    }

    /// Removes one binding; absent is fine (an unregister may repeat).
    pub fn remove_binding(&mut self, aor: &str, contact: &str) -> Result<(), StoreError> {
        let result = match &mut self.backend {
            Backend::Memory(map) => {
                map.remove(&(aor.to_owned(), contact.to_owned()));
                Ok(())
            }
            Backend::Sqlite(db) => db.remove(aor, contact),
            Backend::Postgres(db) => db.remove(aor, contact),
        };
        result.map_err(|fail| fail.into_error(&self.url))
    }

    /// Removes every binding of `aor` (`Contact: *`, or the endpoint left the config).
    pub fn remove_aor(&mut self, aor: &str) -> Result<(), StoreError> {
        let result = match &mut self.backend {
            Backend::Memory(map) => {
                map.retain(|(a, _), _| a != aor);
                Ok(())
            }
            Backend::Sqlite(db) => db.remove_aor(aor),
            Backend::Postgres(db) => db.remove_aor(aor),
        };
        result.map_err(|fail| fail.into_error(&self.url))
    }

    /// Removes the bindings with `expires_at <= now_unix` and says how many there were.
    pub fn remove_expired(&mut self, now_unix: u64) -> Result<u64, StoreError> {
        let result = match &mut self.backend {
            Backend::Memory(map) => {
                let before = map.len();
                map.retain(|_, b| b.expires_at > now_unix);
                Ok((before - map.len()) as u64)
            }
            Backend::Sqlite(db) => db.remove_expired(now_unix),
            Backend::Postgres(db) => db.remove_expired(now_unix),
        };
        result.map_err(|fail| fail.into_error(&self.url))
    }

    /// Moves the store to a writer thread; see [`StoreHandle`].
    pub fn into_handle(self) -> Result<StoreHandle, StoreError> {
        handle::spawn_with(self.url.clone(), move || Ok((self, Vec::new()))).map(|(handle, _)| handle)
    }
}

/// What a backend operation can fail with, before the URL is attached.
#[derive(Debug)]
enum Fail {
    /// The database's schema version is above [`SCHEMA_VERSION`].
    Newer(i64),
    /// Anything else: the driver's error, or a row we cannot read back.
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Fail {
    fn from(error: E) -> Fail {
        Fail::Other(Box::new(error))
    }
}

impl Fail {
    /// A row whose value does not fit its field (written by hand, or by a broken build).
    fn corrupt(what: String) -> Fail {
        Fail::Other(what.into())
    }

    fn into_error(self, url: &str) -> StoreError {
        match self {
            Fail::Newer(found) => StoreError::NewerSchema { url: url.to_owned(), found, known: SCHEMA_VERSION },
            Fail::Other(error) => {
                // The drivers' Display is terse ("db error"): the useful part is in the causes.
                let mut detail = error.to_string();
                let mut cause = error.source();
                while let Some(c) = cause {
                    detail.push_str(": ");
                    detail.push_str(&c.to_string());
                    cause = c.source();
                }
                StoreError::Backend { url: url.to_owned(), detail }
            }
        }
    }
}

/// Refuses a database migrated by a newer build; says which steps are missing otherwise.
fn pending_migrations(current: i64) -> Result<std::ops::Range<usize>, Fail> {
    if current > i64::from(SCHEMA_VERSION) {
        return Err(Fail::Newer(current));
    }
    // 0 ≤ current ≤ SCHEMA_VERSION here (a negative version would be hand-written: redo all).
    Ok(usize::try_from(current).unwrap_or(0)..MIGRATIONS.len())
}

/// Unix seconds now, for `schema_version.applied_at`.
fn unix_now() -> i64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// A `Binding` as the tables hold it: SQL integers are signed.
struct Row {
    aor: String,
    contact: String,
    original_contact: String,
    source: String,
    call_id: String,
    cseq: i64,
    expires_at: i64,
    q: Option<i32>,
    instance: Option<String>,
    user_agent: Option<String>,
    target: Option<String>,
    nat: Option<String>,
}

impl Row {
    fn of(b: &Binding) -> Row {
        Row {
            aor: b.aor.clone(),
            contact: b.contact.clone(),
            original_contact: b.original_contact.clone(),
            source: b.source.clone(),
            call_id: b.call_id.clone(),
            cseq: i64::from(b.cseq),
            // Past year 292 billion; saturating keeps the "not yet expired" meaning.
            expires_at: i64::try_from(b.expires_at).unwrap_or(i64::MAX),
            q: b.q.map(i32::from),
            instance: b.instance.clone(),
            user_agent: b.user_agent.clone(),
            target: b.target.clone(),
            nat: b.nat.clone(),
        }
    }

    fn into_binding(self) -> Result<Binding, Fail> {
        let bad =
            |field: &str, value: i64| Fail::corrupt(format!("binding ({}, {}): {field} {value} out of range", self.aor, self.contact));
        let cseq = u32::try_from(self.cseq).map_err(|_| bad("cseq", self.cseq))?;
        let expires_at = u64::try_from(self.expires_at).map_err(|_| bad("expires_at", self.expires_at))?;
        let q = match self.q {
            Some(q) => Some(u16::try_from(q).ok().filter(|q| *q <= 1000).ok_or_else(|| bad("q", i64::from(q)))?),
            None => None,
        };
        Ok(Binding {
            aor: self.aor,
            contact: self.contact,
            original_contact: self.original_contact,
            source: self.source,
            call_id: self.call_id,
            cseq,
            expires_at,
            q,
            instance: self.instance,
            user_agent: self.user_agent,
            target: self.target,
            nat: self.nat,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn binding(aor: &str, contact: &str, expires_at: u64) -> Binding {
        Binding {
            aor: aor.to_owned(),
            contact: contact.to_owned(),
            original_contact: contact.to_owned(),
            source: "udp:192.0.2.1:5060".to_owned(),
            call_id: "c1".to_owned(),
            cseq: 1,
            expires_at,
            q: None,
            instance: None,
            user_agent: None,
            target: None,
            nat: None,
        }
    }

    #[test]
    fn memory_store_upserts_removes_and_expires() {
        let mut store = open(&StoreUrl::Memory).unwrap();
        store.put_binding(&binding("bob", "sip:b@1", 100)).unwrap();
        store.put_binding(&binding("alice", "sip:a@2", 50)).unwrap();
        store.put_binding(&binding("alice", "sip:a@1", 200)).unwrap();
        let refreshed = Binding { cseq: 2, expires_at: 300, ..binding("alice", "sip:a@1", 0) };
        store.put_binding(&refreshed).unwrap();
        let keys: Vec<_> = store.load_bindings().unwrap().into_iter().map(|b| (b.aor, b.contact, b.expires_at)).collect();
        assert_eq!(
            keys,
            [("alice".into(), "sip:a@1".into(), 300), ("alice".into(), "sip:a@2".into(), 50), ("bob".into(), "sip:b@1".into(), 100)]
        );
        assert_eq!(store.remove_expired(100).unwrap(), 2, "expires_at == now counts as expired");
        store.remove_binding("alice", "sip:nope").unwrap();
        store.remove_aor("alice").unwrap();
        assert!(store.load_bindings().unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_masked_url_and_the_causes() {
        let error = Fail::from(std::io::Error::other("disk on fire")).into_error("postgres://u:********@db/x");
        assert_eq!(error.to_string(), "store postgres://u:********@db/x: disk on fire");
        let error = Fail::Newer(7).into_error("sqlite:a.db");
        assert!(error.to_string().contains(&format!("schema version 7 is newer than version {SCHEMA_VERSION}")), "{error}");
    }

    #[test]
    fn out_of_range_rows_are_errors_not_wraps() {
        let mut row = Row::of(&binding("a", "sip:a@1", 1));
        row.cseq = -1;
        assert!(row.into_binding().is_err());
        let mut row = Row::of(&Binding { q: Some(500), ..binding("a", "sip:a@1", 1) });
        assert_eq!(row.q, Some(500));
        row.q = Some(1001);
        assert!(row.into_binding().is_err());
    }
}
