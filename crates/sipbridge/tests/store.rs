//! The registrar store on each backend, through its public API: the same body against
//! memory, an SQLite file in a temp folder and a real PostgreSQL server (started for the
//! suite by `common::pg`; the test fails, never skips, when it cannot start). Plus what
//! only a persistent store has: re-opening sees the bindings, re-running the migrations
//! changes nothing, a newer schema is refused naming both versions, passwords never
//! appear in errors, failed background writes are counted.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

mod common;

use std::path::PathBuf;

use sipbridge::config::StoreUrl;
use sipbridge::store::{self, Binding, StoreError, SCHEMA_VERSION};

fn binding(aor: &str, contact: &str, expires_at: u64) -> Binding {
    Binding {
        aor: aor.to_owned(),
        contact: contact.to_owned(),
        original_contact: format!("{contact};ob"),
        source: "udp:203.0.113.7:5060".to_owned(),
        call_id: format!("{aor}-reg"),
        cseq: 1,
        expires_at,
        q: None,
        instance: None,
        user_agent: None,
        target: None,
        nat: None,
    }
}

/// Every field set, at the edges of its range.
fn full_binding() -> Binding {
    Binding {
        cseq: u32::MAX,
        expires_at: 4_102_444_800,
        q: Some(1000),
        instance: Some("<urn:uuid:00000000-0000-1000-8000-000a95a0e128>".to_owned()),
        user_agent: Some("Yealink SIP-T46S 66.85.0.5 — ünïcode".to_owned()),
        target: Some("sip:alice@203.0.113.7:40000".to_owned()),
        nat: Some("Via says 10.0.0.5:5060, packets come from 203.0.113.7:40000".to_owned()),
        ..binding("carol", "sip:carol@198.51.100.9:5062;transport=tcp", 0)
    }
}

/// The same checks for every backend. `persistent`: re-opening must see the writes.
fn exercise(url: &StoreUrl, persistent: bool) {
    let mut s = store::open(url).unwrap();
    assert!(s.load_bindings().unwrap().is_empty(), "a fresh store is empty");

    s.put_binding(&binding("bob", "sip:bob@192.0.2.2", 100)).unwrap();
    s.put_binding(&binding("alice", "sip:alice@192.0.2.1", 50)).unwrap();
    s.put_binding(&binding("alice", "sip:alice@10.0.0.1", 200)).unwrap();
    s.put_binding(&full_binding()).unwrap();
    // A refresh of an existing (aor, contact) replaces it.
    let refreshed = Binding { cseq: 2, expires_at: 300, q: Some(500), ..binding("alice", "sip:alice@10.0.0.1", 0) };
    s.put_binding(&refreshed).unwrap();

    let all = s.load_bindings().unwrap();
    assert_eq!(
        all,
        [refreshed.clone(), binding("alice", "sip:alice@192.0.2.1", 50), binding("bob", "sip:bob@192.0.2.2", 100), full_binding()],
        "ordered by (aor, contact), every field back as written"
    );

    assert_eq!(s.remove_expired(100).unwrap(), 2, "expires_at <= now is expired: alice@192.0.2.1 and bob");
    assert_eq!(s.remove_expired(100).unwrap(), 0);
    s.remove_binding("carol", "sip:not-registered").unwrap();
    s.remove_binding("carol", &full_binding().contact).unwrap();
    assert_eq!(s.load_bindings().unwrap(), [refreshed]);

    // Through the writer thread: fire and forget, flush waits.
    let handle = s.into_handle().unwrap();
    handle.put(binding("dave", "sip:dave@192.0.2.4", 400));
    handle.put(binding("dave", "sip:dave@192.0.2.5", 400));
    handle.remove("dave", "sip:dave@192.0.2.4");
    handle.remove_aor("alice");
    handle.remove_expired(10);
    handle.flush();
    assert_eq!(handle.write_errors(), 0);
    drop(handle); // joins the thread, which closes the database

    let mut again = store::open(url).unwrap();
    let expected = if persistent { vec![binding("dave", "sip:dave@192.0.2.5", 400)] } else { vec![] };
    assert_eq!(again.load_bindings().unwrap(), expected);
}

#[test]
fn memory_store() {
    exercise(&StoreUrl::Memory, false);
}

/// A temp folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        TempDir(common::temp_dir("store", name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn sqlite_store() {
    let dir = TempDir::new("sqlite");
    let file = dir.0.join("bindings.db");
    exercise(&StoreUrl::Sqlite(file.clone()), true);
    let conn = rusqlite::Connection::open(&file).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn sqlite_migrations_run_once_and_newer_schemas_are_refused() {
    let dir = TempDir::new("sqlite-migrations");
    let file = dir.0.join("bindings.db");
    let url = StoreUrl::Sqlite(file.clone());
    store::open(&url).unwrap().put_binding(&full_binding()).unwrap();
    let mut reopened = store::open(&url).unwrap();
    assert_eq!(reopened.load_bindings().unwrap(), [full_binding()]);
    drop(reopened);

    let conn = rusqlite::Connection::open(&file).unwrap();
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(versions, (1..=i64::from(SCHEMA_VERSION)).collect::<Vec<_>>(), "each step recorded once");

    conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (99, 0)", []).unwrap();
    let error = store::open(&url).err().unwrap();
    assert!(matches!(error, StoreError::NewerSchema { found: 99, known: SCHEMA_VERSION, .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&format!("sqlite:{}", file.display())), "names the store: {message}");
    assert!(message.contains("99") && message.contains(&format!("version {SCHEMA_VERSION}")), "names both versions: {message}");
}

#[test]
fn sqlite_in_a_missing_folder_is_an_error_naming_the_file() {
    let dir = TempDir::new("sqlite-missing");
    let file = dir.0.join("no-such-folder/bindings.db");
    let error = store::open(&StoreUrl::Sqlite(file.clone())).err().unwrap();
    assert!(error.to_string().contains(&file.display().to_string()), "{error}");
}

#[test]
fn failed_background_writes_are_counted_not_fatal() {
    let dir = TempDir::new("sqlite-write-errors");
    let file = dir.0.join("bindings.db");
    let handle = store::open(&StoreUrl::Sqlite(file.clone())).unwrap().into_handle().unwrap();
    let counter = handle.write_error_counter();
    handle.put(binding("a", "sip:a@1", 1));
    handle.flush();
    rusqlite::Connection::open(&file).unwrap().execute_batch("DROP TABLE bindings").unwrap();
    handle.put(binding("a", "sip:a@2", 1));
    handle.remove_aor("a");
    handle.flush();
    assert_eq!(handle.write_errors(), 2);
    assert_eq!(counter.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[test]
fn start_opens_and_loads_on_the_writer_thread() {
    let dir = TempDir::new("sqlite-start");
    let url = StoreUrl::Sqlite(dir.0.join("bindings.db"));
    store::open(&url).unwrap().put_binding(&full_binding()).unwrap();
    let (handle, bindings) = store::start(&url).unwrap();
    assert_eq!(bindings, [full_binding()]);
    handle.put(binding("b", "sip:b@1", 5));
    drop(handle); // the queued write is done before drop returns
    assert_eq!(store::open(&url).unwrap().load_bindings().unwrap().len(), 2);
}

#[test]
fn postgres_errors_mask_the_password() {
    // Port 1 on loopback: refused at once.
    let url: StoreUrl = "postgres://sipbridge:hunter2@127.0.0.1:1/sipbridge".parse().unwrap();
    let message = store::open(&url).err().unwrap().to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.starts_with("store postgres://sipbridge:********@127.0.0.1:1/sipbridge: error connecting to server"), "{message}");
}

/// One server for all the PostgreSQL checks, each on its own database; stopped at the end
/// of the test, also when a check fails.
#[test]
fn postgres_store() {
    let pg = common::pg::PgServer::start("store");

    // The shared body; with a password in the URL (trust auth ignores it) to check masking.
    let url = pg.create_database("body").replace("postgres@", "postgres:hunter2@");
    exercise(&url.parse().unwrap(), true);

    // Migrations: re-open is a no-op; a newer version is refused, naming both, no password.
    let url = pg.create_database("migrations").replace("postgres@", "postgres:hunter2@");
    let store_url: StoreUrl = url.parse().unwrap();
    store::open(&store_url).unwrap().put_binding(&full_binding()).unwrap();
    assert_eq!(store::open(&store_url).unwrap().load_bindings().unwrap(), [full_binding()]);
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i64> =
        admin.query("SELECT version FROM schema_version ORDER BY version", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, (1..=i64::from(SCHEMA_VERSION)).collect::<Vec<_>>(), "each step recorded once");
    admin.execute("INSERT INTO schema_version (version, applied_at) VALUES (99, 0)", &[]).unwrap();
    let error = store::open(&store_url).err().unwrap();
    assert!(matches!(error, StoreError::NewerSchema { found: 99, known: SCHEMA_VERSION, .. }), "{error:?}");
    let message = error.to_string();
    assert!(!message.contains("hunter2") && message.contains("postgres:********@127.0.0.1"), "{message}");

    // store::start is safe inside a tokio runtime (the sync client alone would panic there),
    // and the connection comes back after the server drops it.
    let url: StoreUrl = pg.create_database("start").parse().unwrap();
    store::open(&url).unwrap().put_binding(&full_binding()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (handle, bindings) = runtime.block_on(async { store::start(&url) }).unwrap();
    assert_eq!(bindings, [full_binding()]);
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'start'", &[]).unwrap();
    handle.put(binding("x", "sip:x@1", 7));
    handle.put(binding("y", "sip:y@1", 7));
    handle.flush();
    assert_eq!(handle.write_errors(), 0, "the first write reconnects and is retried");
    drop(handle);
    let aors: Vec<String> = store::open(&url).unwrap().load_bindings().unwrap().into_iter().map(|b| b.aor).collect();
    assert_eq!(aors, ["carol", "x", "y"]);
}

/// A database written by schema version 1 (before `target` and `nat`) is migrated in
/// place and its rows kept, the new columns empty.
#[test]
fn sqlite_version_1_database_is_upgraded_in_place() {
    let dir = TempDir::new("sqlite-v1");
    let file = dir.0.join("bindings.db");
    {
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);
             INSERT INTO schema_version VALUES (1, 0);
             CREATE TABLE bindings (aor TEXT NOT NULL, contact TEXT NOT NULL, original_contact TEXT NOT NULL,
                 source TEXT NOT NULL, call_id TEXT NOT NULL, cseq BIGINT NOT NULL, expires_at BIGINT NOT NULL,
                 q INTEGER, instance TEXT, user_agent TEXT, PRIMARY KEY (aor, contact));
             CREATE INDEX bindings_expires_at ON bindings (expires_at);
             INSERT INTO bindings VALUES ('alice', 'sip:alice@192.0.2.1', '<sip:alice@192.0.2.1>', 'udp:192.0.2.1:5060',
                 'c1', 7, 4102444800, NULL, NULL, 'old phone');",
        )
        .unwrap();
    }
    let mut s = store::open(&StoreUrl::Sqlite(file.clone())).unwrap();
    let rows = s.load_bindings().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].aor.as_str(), rows[0].cseq, rows[0].target.as_deref(), rows[0].nat.as_deref()), ("alice", 7, None, None));
    assert_eq!(rows[0].user_agent.as_deref(), Some("old phone"));
    s.put_binding(&full_binding()).unwrap();
    assert!(s.load_bindings().unwrap().contains(&full_binding()));
    drop(s);
    let conn = rusqlite::Connection::open(&file).unwrap();
    let top: i64 = conn.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).unwrap();
    assert_eq!(top, i64::from(SCHEMA_VERSION));
    assert_eq!(SCHEMA_VERSION, 2);
}
