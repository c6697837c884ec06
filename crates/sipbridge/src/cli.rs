//! The command line (`/work/shared/design/CONFIG.md`, "Command line").
//!
//! Parsed by hand: three subcommands and four flags do not justify an argument-parsing
//! dependency and its build time. Parsing is separate from executing (which lives in
//! `main.rs`) so it can be tested without spawning the binary.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

/// Where `show` finds a running instance unless `--api` says otherwise: the default
/// `[api].listen`.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8080";

/// `--help` text.
pub const USAGE: &str = "\
Usage:
  sipbridge [--config FILE] [--sip-debug]
      Run the server. Without --config, run the built-in default config.
      --sip-debug logs every SIP message in and out (like [log] sip_debug = true).
  sipbridge check-config FILE
      Validate FILE and print the effective config (defaults filled in, secrets
      masked) as TOML. Exit status 1 when FILE is invalid.
  sipbridge show calls|endpoints|registrations [--api URL]
      Query a running instance over its HTTP API (default http://127.0.0.1:8080).
  sipbridge --help | -h
  sipbridge --version | -V
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server.
    Run {
        /// `--config FILE`; None = the built-in default config.
        config: Option<PathBuf>,
        /// `--sip-debug`.
        sip_debug: bool,
    },
    /// `check-config FILE`.
    CheckConfig {
        /// The file to check.
        path: PathBuf,
    },
    /// `show WHAT [--api URL]`.
    Show {
        /// What to list.
        what: ShowWhat,
        /// Base URL of the instance's HTTP API.
        api: String,
    },
    /// `--help` / `-h`.
    Help,
    /// `--version` / `-V`.
    Version,
}

/// What `show` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowWhat {
    /// Calls in progress (`GET /api/calls`).
    Calls,
    /// Endpoints and their reachability (`GET /api/endpoints`).
    Endpoints,
    /// Registered contacts (from `GET /api/endpoints`).
    Registrations,
}

impl ShowWhat {
    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ShowWhat::Calls => "calls",
            ShowWhat::Endpoints => "endpoints",
            ShowWhat::Registrations => "registrations",
        }
    }
}

/// A command line that does not parse; the message says what was wrong, [`USAGE`] says
/// what is right. Exit status 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

impl UsageError {
    fn new(message: impl fmt::Display) -> UsageError {
        UsageError(message.to_string())
    }
}

/// Parse the arguments after the program name. `--help` and `--version` win wherever they
/// appear, so `sipbridge check-config --help` helps rather than complains.
pub fn parse_args<I, A>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Help);
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        return Ok(Command::Version);
    }
    let mut args = Args { rest: args.into_iter() };
    match args.next_word()? {
        Some(word) if word == "check-config" => parse_check_config(args),
        Some(word) if word == "show" => parse_show(args),
        Some(word) if word.starts_with('-') => parse_run(Some(word), args),
        Some(word) => Err(UsageError::new(format!("unknown command `{word}`"))),
        None => parse_run(None, args),
    }
}

/// `[--config FILE] [--sip-debug]` in any order; `first` is a flag already taken.
fn parse_run(first: Option<String>, mut args: Args) -> Result<Command, UsageError> {
    let mut config = None;
    let mut sip_debug = false;
    let mut first = first;
    loop {
        let flag = match first.take() {
            Some(flag) => flag,
            None => match args.next_word()? {
                Some(flag) => flag,
                None => break,
            },
        };
        if flag == "--sip-debug" {
            sip_debug = true;
        } else if let Some(path) = args.flag_value(&flag, &["--config", "-c"], "FILE")? {
            if config.replace(PathBuf::from(path)).is_some() {
                return Err(UsageError::new("--config given twice"));
            }
        } else if flag.starts_with('-') {
            return Err(UsageError::new(format!("unknown option `{flag}`")));
        } else {
            return Err(UsageError::new(format!(
                "unexpected argument `{flag}`; to check a config file use `sipbridge check-config {flag}`"
            )));
        }
    }
    Ok(Command::Run { config, sip_debug })
}

/// `check-config FILE`.
fn parse_check_config(mut args: Args) -> Result<Command, UsageError> {
    let path = match args.rest.next() {
        Some(path) if path.to_str().is_some_and(|p| p.starts_with('-')) => {
            return Err(UsageError::new(format!("check-config takes a FILE, not the option `{}`", path.to_string_lossy())))
        }
        Some(path) => PathBuf::from(path),
        None => return Err(UsageError::new("check-config needs the FILE to check")),
    };
    args.expect_end("check-config FILE")?;
    Ok(Command::CheckConfig { path })
}

/// `show WHAT [--api URL]`.
fn parse_show(mut args: Args) -> Result<Command, UsageError> {
    let what = match args.next_word()?.as_deref() {
        Some("calls") => ShowWhat::Calls,
        Some("endpoints") => ShowWhat::Endpoints,
        Some("registrations") => ShowWhat::Registrations,
        Some(other) => return Err(UsageError::new(format!("cannot show `{other}`: expected calls, endpoints or registrations"))),
        None => return Err(UsageError::new("show needs what to show: calls, endpoints or registrations")),
    };
    let mut api = None;
    while let Some(flag) = args.next_word()? {
        match args.flag_value(&flag, &["--api"], "URL")? {
            Some(url) => {
                let url = url.into_string().map_err(|_| UsageError::new("--api URL is not valid UTF-8"))?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(UsageError::new(format!("--api needs an http:// or https:// URL, not `{url}`")));
                }
                if api.replace(url).is_some() {
                    return Err(UsageError::new("--api given twice"));
                }
            }
            None => return Err(UsageError::new(format!("unexpected argument `{flag}` after `show {}`", what.as_str()))),
        }
    }
    Ok(Command::Show { what, api: api.unwrap_or_else(|| DEFAULT_API_URL.to_owned()) })
}

/// The remaining arguments.
struct Args {
    rest: std::vec::IntoIter<OsString>,
}

impl Args {
    /// The next argument as text: subcommands and flags must be UTF-8 (file names need not).
    fn next_word(&mut self) -> Result<Option<String>, UsageError> {
        self.rest
            .next()
            .map(|arg| arg.into_string().map_err(|arg| UsageError::new(format!("argument `{}` is not valid UTF-8", arg.to_string_lossy()))))
            .transpose()
    }

    /// If `flag` is one of `names` (as `--name VALUE` or `--name=VALUE`), its value.
    fn flag_value(&mut self, flag: &str, names: &[&str], value_name: &str) -> Result<Option<OsString>, UsageError> {
        for name in names {
            if flag == *name {
                return match self.rest.next() {
                    Some(value) if !value.is_empty() && !value.to_str().is_some_and(|v| v.starts_with('-')) => Ok(Some(value)),
                    _ => Err(UsageError::new(format!("{name} needs a {value_name}"))),
                };
            }
            if let Some(value) = flag.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')) {
                if value.is_empty() {
                    return Err(UsageError::new(format!("{name} needs a {value_name}")));
                }
                return Ok(Some(OsStr::new(value).to_owned()));
            }
        }
        Ok(None)
    }

    fn expect_end(&mut self, form: &str) -> Result<(), UsageError> {
        match self.rest.next() {
            Some(extra) => Err(UsageError::new(format!("unexpected argument `{}` after `{form}`", extra.to_string_lossy()))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        parse_args(args.iter().copied())
    }

    fn usage_error(args: &[&str]) -> String {
        match parse(args) {
            Err(UsageError(message)) => message,
            Ok(command) => panic!("{args:?} parsed as {command:?}, expected a usage error"),
        }
    }

    #[test]
    fn no_arguments_runs_the_default_config() {
        assert_eq!(parse(&[]), Ok(Command::Run { config: None, sip_debug: false }));
    }

    #[test]
    fn run_flags_in_any_order_and_both_spellings() {
        let want = Ok(Command::Run { config: Some(PathBuf::from("pbx.toml")), sip_debug: true });
        assert_eq!(parse(&["--config", "pbx.toml", "--sip-debug"]), want);
        assert_eq!(parse(&["--sip-debug", "--config=pbx.toml"]), want);
        assert_eq!(parse(&["--sip-debug", "-c", "pbx.toml"]), want);
    }

    #[test]
    fn check_config_takes_exactly_one_file() {
        assert_eq!(parse(&["check-config", "a.toml"]), Ok(Command::CheckConfig { path: PathBuf::from("a.toml") }));
        assert!(usage_error(&["check-config"]).contains("needs the FILE"));
        assert!(usage_error(&["check-config", "a.toml", "b.toml"]).contains("`b.toml`"));
        assert!(usage_error(&["check-config", "--sip-debug"]).contains("`--sip-debug`"));
    }

    #[test]
    fn show_targets_and_api_url() {
        assert_eq!(parse(&["show", "calls"]), Ok(Command::Show { what: ShowWhat::Calls, api: DEFAULT_API_URL.to_owned() }));
        assert_eq!(
            parse(&["show", "registrations", "--api", "http://10.0.0.1:9000"]),
            Ok(Command::Show { what: ShowWhat::Registrations, api: "http://10.0.0.1:9000".to_owned() })
        );
        assert_eq!(
            parse(&["show", "endpoints", "--api=https://pbx:8443"]),
            Ok(Command::Show { what: ShowWhat::Endpoints, api: "https://pbx:8443".to_owned() })
        );
        assert!(usage_error(&["show"]).contains("calls, endpoints or registrations"));
        assert!(usage_error(&["show", "peers"]).contains("`peers`"));
        assert!(usage_error(&["show", "calls", "--api"]).contains("--api needs a URL"));
        assert!(usage_error(&["show", "calls", "--api", "pbx:8080"]).contains("http://"));
    }

    #[test]
    fn help_and_version_win_anywhere() {
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["check-config", "-h"]), Ok(Command::Help));
        assert_eq!(parse(&["--version"]), Ok(Command::Version));
        assert_eq!(parse(&["-V"]), Ok(Command::Version));
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        assert!(usage_error(&["--bogus"]).contains("unknown option `--bogus`"));
        assert!(usage_error(&["serve"]).contains("unknown command `serve`"));
        assert!(usage_error(&["--config"]).contains("--config needs a FILE"));
        assert!(usage_error(&["--config="]).contains("--config needs a FILE"));
        assert!(usage_error(&["--config", "a", "--config", "b"]).contains("twice"));
        assert!(usage_error(&["--sip-debug", "pbx.toml"]).contains("check-config pbx.toml"));
    }

    #[cfg(unix)]
    #[test]
    fn file_names_need_not_be_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let name = OsString::from_vec(b"conf\xff.toml".to_vec());
        let parsed = parse_args([OsString::from("check-config"), name.clone()]);
        assert_eq!(parsed, Ok(Command::CheckConfig { path: PathBuf::from(name) }));
    }
}
