//! sipbridge, the binary crate's library half: config loading, the command line, the
//! registrar store and the server entry point. It is a library so that integration tests
//! and the future `import-sip-conf` tool can use the config types without spawning the
//! binary.

pub mod access;
pub mod api;
pub mod calls;
pub mod cli;
pub mod config;
pub mod direct;
pub mod guard;
pub mod media;
pub mod policy;
pub mod registrations;
pub mod run;
pub mod show;
pub mod store;
