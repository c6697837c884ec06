//! The sipbridge binary: parse the command line, then run, check a config or query a
//! running instance.
//!
//! Exit status: 0 success, 1 failure (an invalid config, a server error), 2 a command
//! line that does not parse.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use sipbridge::cli::{self, Command};
use sipbridge::config::Config;

/// mimalloc instead of glibc malloc: the engine and media threads free each other's
/// allocations (datagrams, commands, SDP) thousands of times a second, which in glibc
/// takes the arena lock (futex wakes in the profile) and leaves freed bursts resident.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let command = match cli::parse_args(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("sipbridge: {error}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match execute(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sipbridge: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Help => print_stdout(cli::USAGE),
        Command::Version => print_stdout(&format!("sipbridge {}\n", env!("CARGO_PKG_VERSION"))),
        Command::CheckConfig { path } => {
            let config = Config::load(&path)?;
            let toml = config.to_toml().context("cannot print the effective config")?;
            print_stdout(&format!("# effective config of {} (defaults filled in, secrets masked)\n{toml}", path.display()))
        }
        Command::Run { config, sip_debug } => {
            let config = match config {
                Some(path) => Config::load(&path)?,
                None => Config::default(),
            };
            sipbridge::run::run(config, sip_debug)
        }
        Command::Show { what, api } => print_stdout(&sipbridge::show::show(what, &api)?),
    }
}

/// Write to stdout without the panic `print!` gives on a closed pipe
/// (`sipbridge check-config f | head -1` is a normal thing to type).
fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("cannot write to stdout"),
        _ => Ok(()),
    }
}
