//! The writer thread: the engine sends writes and goes on; the thread applies them in order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{open, Binding, Store, StoreError};
use crate::config::StoreUrl;

/// Opens `url`, migrates it and loads its bindings on a new writer thread, waiting for the
/// result: the start-up path, safe inside a tokio runtime (the PostgreSQL client must not
/// run on a runtime thread). Then returns the handle for the writes.
pub fn start(url: &StoreUrl) -> Result<(StoreHandle, Vec<Binding>), StoreError> {
    let url = url.clone();
    spawn_with(url.masked(), move || {
        let mut store = open(&url)?;
        let bindings = store.load_bindings()?;
        Ok((store, bindings))
    })
}

enum Command {
    Put(Binding),
    Remove {
        aor: String,
        contact: String,
    },
    RemoveAor(String),
    RemoveExpired(u64),
    /// Answered once every earlier command is done.
    Flush(mpsc::SyncSender<()>),
}

/// Fire-and-forget writes to a [`Store`] owned by a background thread, applied in the
/// order sent. A failed write is logged (warn) and counted, never returned: the registrar
/// keeps working from memory, and the phone's next REGISTER writes the binding again.
///
/// Dropping it lets the thread finish the queued writes and waits for it (shutdown).
/// The queue is unbounded: if the database stalls, writes wait in memory.
pub struct StoreHandle {
    /// `None` only during drop.
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
    write_errors: Arc<AtomicU64>,
}

/// Runs `init` on a new thread (it opens the store there), hands its result back, then
/// serves commands on that thread.
pub(super) fn spawn_with<F>(url: String, init: F) -> Result<(StoreHandle, Vec<Binding>), StoreError>
where
    F: FnOnce() -> Result<(Store, Vec<Binding>), StoreError> + Send + 'static,
{
    let (commands, queue) = mpsc::channel();
    let (ready, started) = mpsc::sync_channel(1);
    let write_errors = Arc::new(AtomicU64::new(0));
    let errors = Arc::clone(&write_errors);
    let thread = std::thread::Builder::new()
        .name("store".to_owned())
        .spawn(move || match init() {
            Ok((store, bindings)) => {
                let _ = ready.send(Ok(bindings));
                serve(store, &queue, &errors);
            }
            Err(error) => {
                let _ = ready.send(Err(error));
            }
        })
        .map_err(|e| StoreError::Backend { url: url.clone(), detail: format!("cannot start the store thread: {e}") })?;
    let bindings = match started.recv() {
        Ok(result) => result?,
        Err(_) => return Err(StoreError::Backend { url, detail: "the store thread panicked while opening".to_owned() }),
    };
    Ok((StoreHandle { commands: Some(commands), thread: Some(thread), write_errors }, bindings))
}

fn serve(mut store: Store, queue: &mpsc::Receiver<Command>, errors: &AtomicU64) {
    for command in queue {
        let (what, result) = match command {
            Command::Put(b) => ("put_binding", store.put_binding(&b)),
            Command::Remove { aor, contact } => ("remove_binding", store.remove_binding(&aor, &contact)),
            Command::RemoveAor(aor) => ("remove_aor", store.remove_aor(&aor)),
            Command::RemoveExpired(now) => (
                "remove_expired",
                store.remove_expired(now).map(|n| {
                    if n > 0 {
                        tracing::debug!(store = store.url(), removed = n, "expired bindings removed");
                    }
                }),
            ),
            Command::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        if let Err(error) = result {
            errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(operation = what, "store write failed: {error}");
        }
    }
}

impl StoreHandle {
    /// Queues [`Store::put_binding`].
    pub fn put(&self, binding: Binding) {
        self.send(Command::Put(binding));
    }

    /// Queues [`Store::remove_binding`].
    pub fn remove(&self, aor: &str, contact: &str) {
        self.send(Command::Remove { aor: aor.to_owned(), contact: contact.to_owned() });
    }

    /// Queues [`Store::remove_aor`].
    pub fn remove_aor(&self, aor: &str) {
        self.send(Command::RemoveAor(aor.to_owned()));
    }

    /// Queues [`Store::remove_expired`] (the count goes to the debug log).
    pub fn remove_expired(&self, now_unix: u64) {
        self.send(Command::RemoveExpired(now_unix));
    }

    /// Blocks until every write queued before it is done (or failed): for shutdown and tests.
    pub fn flush(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        self.send(Command::Flush(done));
        let _ = wait.recv(); // Err: the thread is gone, so nothing is pending either.
    }

    /// How many writes failed so far.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }

    /// The failed-writes counter itself, for `/metrics` to read without the handle.
    pub fn write_error_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.write_errors)
    }

    fn send(&self, command: Command) {
        let sent = self.commands.as_ref().is_some_and(|c| c.send(command).is_ok());
        if !sent {
            // Only after the thread panicked: count it like any other lost write.
            self.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("store write dropped: the store thread is gone");
        }
    }
}

impl Drop for StoreHandle {
    fn drop(&mut self) {
        drop(self.commands.take()); // ends the thread's loop once the queue is empty
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
