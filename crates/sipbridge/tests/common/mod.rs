//! What the tests of the built binary share: a temp folder per server, the binary started
//! on a config file there with its stderr in a file, and everything stopped and removed
//! on drop. `pg` starts a real PostgreSQL server for tests of the `postgres://` store.

// Each test file uses what it needs of this.
#![allow(dead_code)]

pub mod pg;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `$SIPBRIDGE_SHARED`, else the nearest `shared/` with the bench scenarios above the
/// crate (`../shared` beside the repository, also from a git worktree one level deeper).
/// Its data is read in place.
pub fn shared() -> PathBuf {
    if let Some(dir) = std::env::var_os("SIPBRIDGE_SHARED") {
        return PathBuf::from(dir);
    }
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .map(|a| a.join("shared"))
        .find(|s| s.join("bench/scenarios/uac.xml").is_file())
        .unwrap_or_else(|| crate_dir.join("../../../shared"))
}

/// A fresh folder for one server of one test file (`suite`) and test (`name`).
pub fn temp_dir(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sipbridge-{suite}-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp folder");
    dir
}

/// The running binary.
pub struct Binary {
    /// The process (killed and reaped on drop).
    pub child: Child,
    dir: PathBuf,
}

impl Binary {
    /// Writes `config` to `dir/sipbridge.toml` and starts `sipbridge --config` on it with
    /// `RUST_LOG` unset and stderr in `dir/stderr.log`.
    pub fn start_in(dir: PathBuf, config: &str) -> Binary {
        std::fs::write(dir.join("sipbridge.toml"), config).expect("the config file");
        let log = std::fs::File::create(dir.join("stderr.log")).expect("the log file");
        let child = spawn(&dir, log);
        Binary { child, dir }
    }

    /// Stops it with SIGTERM and waits for the exit, killing it past `limit` (the status
    /// is then that of the kill, never a success). Its folder stays, for [`Binary::restart`].
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the config file of its folder (after [`Binary::terminate`]: the
    /// running process, if any, is killed first), its stderr appended to `stderr.log`.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::OpenOptions::new().append(true).create(true).open(self.dir.join("stderr.log")).expect("the log file");
        self.child = spawn(&self.dir, log);
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What it logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

/// `sipbridge --config dir/sipbridge.toml` in `dir` (so the default `sqlite:sipbridge.db`
/// store lands there, not in the source tree), `RUST_LOG` unset, stderr to `log`.
fn spawn(dir: &Path, log: std::fs::File) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sipbridge"))
        .current_dir(dir)
        .arg("--config")
        .arg(dir.join("sipbridge.toml"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the binary starts")
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
