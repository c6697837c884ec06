//! `postgres://…`: one database shared by several sipbridge nodes (ARCHITECTURE.md, "past
//! one machine"). The synchronous client: the store lives on its own thread anyway.
//! Plain TCP or a unix socket, no TLS (keep the database on a private network).

use std::time::Duration;

use postgres::{Client, Config, NoTls};

use super::{pending_migrations, unix_now, Binding, Fail, Row, COLUMNS, CREATE_SCHEMA_VERSION, MIGRATIONS, UPSERT};

/// Unless the URL says `connect_timeout`: an unreachable server must fail start-up, not hang it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Key of the advisory lock that serialises migrations when nodes start together.
/// Arbitrary; only needs to be ours ("sipb" in ASCII).
const MIGRATION_LOCK: i64 = 0x7369_7062;

pub(super) struct Pg {
    client: Client,
    /// To reconnect after the server restarts or drops the connection.
    config: Config,
}

impl Pg {
    pub(super) fn open(url: &str) -> Result<Pg, Fail> {
        let mut config: Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("sipbridge"); // who is connected, in pg_stat_activity
        }
        let mut client = config.connect(NoTls)?;
        migrate(&mut client)?;
        Ok(Pg { client, config })
    }

    /// Runs `op`, reconnecting first if the connection is known lost, and once more after
    /// it if `op` lost it: a database restart (or a failover) then costs no write. Every
    /// `op` here is idempotent, so running it twice is safe.
    fn run<T>(&mut self, mut op: impl FnMut(&mut Client) -> Result<T, postgres::Error>) -> Result<T, Fail> {
        if self.client.is_closed() {
            self.reconnect()?;
        }
        match op(&mut self.client) {
            Err(error) if self.client.is_closed() || error.is_closed() => {
                tracing::warn!("store: PostgreSQL connection lost ({error}), reconnecting");
                self.reconnect()?;
                Ok(op(&mut self.client)?)
            }
            result => Ok(result?),
        }
    }

    fn reconnect(&mut self) -> Result<(), Fail> {
        self.client = self.config.connect(NoTls)?;
        Ok(())
    }

    pub(super) fn load(&mut self) -> Result<Vec<Binding>, Fail> {
        let select = format!("SELECT {COLUMNS} FROM bindings ORDER BY aor, contact");
        let rows = self.run(|c| c.query(&select, &[]))?;
        let mut bindings = Vec::with_capacity(rows.len());
        for r in rows {
            let row = Row {
                aor: r.try_get(0)?,
                contact: r.try_get(1)?,
                original_contact: r.try_get(2)?,
                source: r.try_get(3)?,
                call_id: r.try_get(4)?,
                cseq: r.try_get(5)?,
                expires_at: r.try_get(6)?,
                q: r.try_get(7)?,
                instance: r.try_get(8)?,
                user_agent: r.try_get(9)?,
                target: r.try_get(10)?,
                nat: r.try_get(11)?,
            };
            bindings.push(row.into_binding()?);
        }
        Ok(bindings)
    }

    pub(super) fn put(&mut self, binding: &Binding) -> Result<(), Fail> {
        let r = Row::of(binding);
        self.run(|c| {
            c.execute(
                UPSERT,
                &[
                    &r.aor,
                    &r.contact,
                    &r.original_contact,
                    &r.source,
                    &r.call_id,
                    &r.cseq,
                    &r.expires_at,
                    &r.q,
                    &r.instance,
                    &r.user_agent,
                    &r.target,
                    &r.nat,
                ],
            )
        })?;
        Ok(())
    }

    pub(super) fn remove(&mut self, aor: &str, contact: &str) -> Result<(), Fail> {
        self.run(|c| c.execute("DELETE FROM bindings WHERE aor = $1 AND contact = $2", &[&aor, &contact]))?;
        Ok(())
    }

    pub(super) fn remove_aor(&mut self, aor: &str) -> Result<(), Fail> {
        self.run(|c| c.execute("DELETE FROM bindings WHERE aor = $1", &[&aor]))?;
        Ok(())
    }

    pub(super) fn remove_expired(&mut self, now_unix: u64) -> Result<u64, Fail> {
        let now = i64::try_from(now_unix).unwrap_or(i64::MAX);
        self.run(|c| c.execute("DELETE FROM bindings WHERE expires_at <= $1", &[&now]))
    }
}

/// Applies the missing [`MIGRATIONS`] in one transaction, under an advisory lock so that
/// nodes starting at once migrate one after the other (the later ones find nothing to do).
fn migrate(client: &mut Client) -> Result<(), Fail> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(CREATE_SCHEMA_VERSION)?;
    let current: Option<i64> = tx.query_one("SELECT max(version) FROM schema_version", &[])?.try_get(0)?;
    for step in pending_migrations(current.unwrap_or(0))? {
        tx.batch_execute(MIGRATIONS[step])?;
        tx.execute("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", &[&(step as i64 + 1), &unix_now()])?;
    }
    tx.commit()?;
    Ok(())
}
