//! A real PostgreSQL server for one test: `initdb` into a fresh temp folder, `pg_ctl start`
//! on 127.0.0.1 with a free port (and its unix socket in that folder), trust auth, no
//! fsync; `pg_ctl stop` and the folder removed on drop, also when the test panics.
//!
//! Run as the `postgres` system user when we are root, since the server refuses root. A
//! server that cannot start panics (fails the test) rather than skipping it: CI installs
//! Debian's `postgresql` (scripts/test.sh). Binaries: `$SIPBRIDGE_PG_BIN`, else the newest
//! `/usr/lib/postgresql/*/bin`, else `PATH`.
//!
//! ```ignore
//! mod common;
//! let pg = common::pg::PgServer::start("mysuite");
//! let url = pg.create_database("t1"); // "postgres://postgres@127.0.0.1:PORT/t1"
//! ```
//!
//! Synchronous (the `postgres` crate): call it outside any tokio runtime.

use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The running server; stopped and removed on drop.
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// (uid, gid) of `postgres` when we are root.
    user: Option<(u32, u32)>,
}

impl PgServer {
    /// Creates and starts a server in a temp folder named after `suite`.
    pub fn start(suite: &str) -> PgServer {
        let dir = std::env::temp_dir().join(format!("sipbridge-pg-{suite}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp folder for PostgreSQL");
        let user = if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0) == 0 { Some(postgres_user()) } else { None };
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the PostgreSQL folder to postgres");
        }
        let mut server = PgServer { dir, bin: bin_dir(), port: 0, user };

        let out = server.run("initdb", &["-D", "data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
        assert!(out.status.success(), "initdb failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

        // A free port can be taken between our probe and the server's bind: try a few.
        for _ in 0..3 {
            server.port = free_port();
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k '{}' -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                server.port,
                server.dir.display()
            );
            let out = server.run("pg_ctl", &["-D", "data", "-l", "server.log", "-w", "-t", "30", "-s", "-o", &options, "start"]);
            if out.status.success() {
                return server;
            }
        }
        panic!("PostgreSQL did not start (is Debian's postgresql installed?); its log:\n{}", server.log());
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder holding the socket (`.s.PGSQL.PORT`), `data/` and `server.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A URL for `database` over TCP as the superuser `postgres` (trust auth: no password).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates `name` (an SQL identifier) and returns its [`url`](Self::url).
    pub fn create_database(&self, name: &str) -> String {
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls).expect("connect to the test server");
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).expect("CREATE DATABASE");
        self.url(name)
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Runs one of the server's programs in the folder, as `postgres` when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut command = Command::new(self.bin.join(program));
        command.args(args).current_dir(&self.dir).env_remove("PGDATA").env_remove("PGPORT").env_remove("PGHOST").stdin(Stdio::null());
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid); // std also drops root's supplementary groups
        }
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} (is Debian's postgresql installed?): {e}", self.bin.join(program).display()))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.port != 0 {
            let _ = self.run("pg_ctl", &["-D", "data", "-m", "immediate", "-w", "-s", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// (uid, gid) of the `postgres` system user that Debian's package creates.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != "postgres" {
                return None;
            }
            let _password = fields.next()?;
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .expect("a `postgres` user to run PostgreSQL as (we are root; Debian's postgresql package creates it)")
}

/// `$SIPBRIDGE_PG_BIN`, else the newest Debian `/usr/lib/postgresql/N/bin`, else "" (PATH).
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SIPBRIDGE_PG_BIN") {
        return PathBuf::from(dir);
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten();
    versions
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("pg_ctl").is_file())
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
        .unwrap_or_default()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
