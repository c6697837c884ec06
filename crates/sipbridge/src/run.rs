//! Running the server.

use crate::config::Config;

/// Run the server with `config` until it is told to stop. `sip_debug` is the
/// `--sip-debug` flag, which turns on `[log].sip_debug` whatever the file says.
///
/// A placeholder until the driver lands: it refuses to start rather than pretend to
/// serve, so that `sipbridge` without a subcommand fails visibly.
pub fn run(config: Config, sip_debug: bool) -> anyhow::Result<()> {
    let _sip_debug = sip_debug || config.log.sip_debug;
    anyhow::bail!("server not wired yet")
}
