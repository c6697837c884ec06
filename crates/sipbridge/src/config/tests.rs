#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its location

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::*;

fn load(text: &str) -> Config {
    match Config::from_toml(text, "test.toml") {
        Ok(config) => config,
        Err(e) => panic!("config should load, got:\n{e}"),
    }
}

fn error(text: &str) -> ConfigError {
    match Config::from_toml(text, "test.toml") {
        Ok(config) => panic!("config should be refused, loaded as {config:?}"),
        Err(e) => e,
    }
}

/// Assert the error's key and 1-based line, and that its Display names both, since the
/// operator only sees the Display.
#[track_caller]
fn assert_error_at(e: &ConfigError, key: &str, line: usize) {
    assert_eq!(e.key(), Some(key), "key of: {e}");
    assert_eq!(e.line(), Some(line), "line of: {e}");
    let shown = e.to_string();
    assert!(shown.starts_with(&format!("test.toml:{line}:")), "{shown}");
    assert!(shown.contains(&format!("{key}: ")), "{shown}");
}

/// A valid endpoint, for tests about other keys.
const ALICE: &str = "[[endpoint]]\nname = \"alice\"\nsecret = \"pw\"\n";

#[test]
fn empty_file_is_the_contract_defaults() {
    let config = load("");
    assert_eq!(config, Config::default());
    let sip = &config.sip;
    assert_eq!(sip.listen, vec!["udp:0.0.0.0:5060".parse().unwrap(), "tcp:0.0.0.0:5060".parse().unwrap()]);
    assert_eq!(sip.listen[0], Listen { transport: Transport::Udp, addr: SocketAddr::from(([0, 0, 0, 0], 5060)) });
    assert_eq!(sip.domain, "pbx.example.test");
    assert_eq!(sip.external_address, None);
    assert_eq!(sip.user_agent, "sipbridge");
    assert_eq!(config.timers, Timers { t1_ms: 500, t2_ms: 4000, t4_ms: 5000 });
    assert_eq!(config.timers.t1(), std::time::Duration::from_millis(500));
    assert_eq!(config.tls, None);
    assert_eq!(config.media.address, IpAddr::from([127, 0, 0, 1]));
    assert_eq!((config.media.ports.first(), config.media.ports.last(), config.media.ports.pairs()), (20000, 29999, 5000));
    assert!(config.media.verify_media);
    assert_eq!(config.media.timeout_s, 60);
    assert_eq!(config.media.rtp_keepalive_s, 0, "off, as Asterisk's rtpkeepalive");
    assert_eq!(config.store.url, StoreUrl::Sqlite(PathBuf::from("sipbridge.db")));
    assert_eq!(config.registrar, Registrar { min_expires_s: 60, max_expires_s: 3600 });
    assert_eq!(config.api.listen, Some(SocketAddr::from(([127, 0, 0, 1], 8080))));
    assert_eq!(config.log, Log { level: "info".to_owned(), sip_debug: false });
    assert!(config.endpoints.is_empty() && config.routes.is_empty());
    assert_eq!(Config::default().validate(), Ok(()));
}

#[test]
fn endpoint_defaults() {
    let config = load(ALICE);
    let alice = &config.endpoints[0];
    assert_eq!(alice.name, "alice");
    assert_eq!(alice.secret.as_ref().map(Secret::expose), Some("pw"));
    assert_eq!(alice.host, EndpointHost::Dynamic);
    assert_eq!(alice.transport, Transport::Udp);
    assert_eq!(alice.codecs, ["PCMU", "PCMA", "telephone-event"]);
    assert_eq!(alice.dtmf_mode, DtmfMode::Rfc4733);
    assert_eq!(alice.direct_media, DirectMedia::Yes);
    assert_eq!(alice.direct_media_method, DirectMediaMethod::Invite);
    assert!(alice.direct_media_permit.is_empty() && alice.direct_media_deny.is_empty());
    assert!(!alice.direct_rtp_setup);
    assert_eq!(alice.nat, Nat::Auto);
    assert_eq!(alice.media_address, None);
    assert!(alice.qualify);
    assert_eq!((alice.qualify_frequency_s, alice.qualify_max_ms), (60, 2000));
    assert_eq!(config.endpoint("alice"), Some(alice));
}

#[test]
fn every_enum_value() {
    let endpoint = |key: &str, value: &str| {
        let config = load(&format!("{ALICE}{key} = \"{value}\"\n"));
        config.endpoints.into_iter().next().unwrap()
    };
    for (text, want) in [("udp", Transport::Udp), ("tcp", Transport::Tcp), ("tls", Transport::Tls)] {
        assert_eq!(endpoint("transport", text).transport, want);
        assert_eq!(want.as_str(), text);
    }
    for (text, want) in [("rfc4733", DtmfMode::Rfc4733), ("info", DtmfMode::Info), ("inband", DtmfMode::Inband)] {
        assert_eq!(endpoint("dtmf_mode", text).dtmf_mode, want);
    }
    for (text, want) in
        [("yes", DirectMedia::Yes), ("no", DirectMedia::No), ("nonat", DirectMedia::Nonat), ("outgoing", DirectMedia::Outgoing)]
    {
        assert_eq!(endpoint("direct_media", text).direct_media, want);
        assert_eq!(want.as_str(), text);
    }
    for (text, want) in [("invite", DirectMediaMethod::Invite), ("update", DirectMediaMethod::Update)] {
        assert_eq!(endpoint("direct_media_method", text).direct_media_method, want);
    }
    for (text, want) in [("auto", Nat::Auto), ("yes", Nat::Yes), ("no", Nat::No)] {
        assert_eq!(endpoint("nat", text).nat, want);
    }
    let e = error(&format!("{ALICE}nat = \"maybe\"\n"));
    assert_error_at(&e, "endpoint[0].nat", 4);
    assert!(e.message().contains("`auto`, `yes`, `no`"), "{e}");
}

#[test]
fn store_urls() {
    assert_eq!(load("[store]\nurl = \"memory\"").store.url, StoreUrl::Memory);
    assert_eq!(load("[store]\nurl = \"sqlite:/var/lib/sb.db\"").store.url, StoreUrl::Sqlite(PathBuf::from("/var/lib/sb.db")));
    let pg = "postgres://sb:pw@db.example.test:5432/sb?sslmode=require";
    assert_eq!(load(&format!("[store]\nurl = \"{pg}\"")).store.url, StoreUrl::Postgres(pg.to_owned()));
    assert_error_at(&error("[store]\n\nurl = \"mysql://x\""), "store.url", 3);
    assert_error_at(&error("[store]\nurl = \"sqlite:\""), "store.url", 2);
}

#[test]
fn unknown_key_names_key_and_line() {
    let e = error("# comment\n[sip]\ndomain = \"pbx.test\"\n\nlisen = [\"udp:0.0.0.0:5060\"]\n");
    assert_error_at(&e, "sip.lisen", 5);
    assert_eq!(e.column(), Some(1));
    assert!(e.message().starts_with("unknown key `lisen`, expected one of `listen`"), "{e}");
    assert!(e.to_string().contains("\n    5 | lisen = [\"udp:0.0.0.0:5060\"]"), "{e}");

    assert_error_at(&error("[sipp]\n"), "sipp", 1);
    assert_error_at(&error(&format!("{ALICE}\nsecert = \"x\"\n")), "endpoint[0].secert", 5);
    // Dotted keys are keys too.
    assert_error_at(&error("sip.domain = \"a.test\"\nsip.dommain = \"b.test\"\n"), "sip.dommain", 2);
}

#[test]
fn toml_syntax_error_has_a_line_but_no_key() {
    let e = error("[sip]\ndomain = \"unterminated\n");
    assert_eq!(e.line(), Some(2), "{e}");
    assert_eq!(e.key(), None);
}

#[test]
fn wrong_type_names_the_key() {
    assert_error_at(&error("[timers]\nt1_ms = \"500\"\n"), "timers.t1_ms", 2);
    assert_error_at(&error("[media]\nverify_media = 1\n"), "media.verify_media", 2);
}

#[test]
fn listen_strings() {
    let config = load("[sip]\nlisten = [\"udp:[::]:5060\", \"tcp:127.0.0.1:0\"]\n");
    assert_eq!(config.sip.listen[0], Listen { transport: Transport::Udp, addr: "[::]:5060".parse().unwrap() });
    assert_eq!(config.sip.listen[1].addr.port(), 0);
    for bad in ["sctp:0.0.0.0:5060", "udp:0.0.0.0", "udp0.0.0.0:5060", "udp:localhost:5060", "udp:0.0.0.0:70000", ""] {
        let e = error(&format!("[sip]\nlisten = [\n  \"udp:0.0.0.0:5062\",\n  \"{bad}\",\n]\n"));
        assert_error_at(&e, "sip.listen[1]", 4);
        assert!(e.message().contains("invalid listen address"), "{e}");
    }
    assert_error_at(&error("[sip]\nlisten = []\n"), "sip.listen", 2);
    let e = error("[sip]\nlisten = [\"udp:0.0.0.0:5060\", \"tcp:0.0.0.0:5070\", \"udp:0.0.0.0:5060\"]\n");
    assert_error_at(&e, "sip.listen[2]", 2);
}

#[test]
fn tls_listener_needs_tls_section() {
    let e = error("[sip]\nlisten = [\"udp:0.0.0.0:5060\",\n  \"tls:0.0.0.0:5061\"]\n");
    assert_error_at(&e, "sip.listen[1]", 3);
    assert!(e.message().contains("[tls]"), "{e}");
    let config = load("[sip]\nlisten = [\"tls:0.0.0.0:5061\"]\n[tls]\ncertificate = \"/etc/sb/cert.pem\"\n");
    assert_eq!(config.tls, Some(Tls { certificate: PathBuf::from("/etc/sb/cert.pem"), private_key: PathBuf::from("key.pem") }));
    // TLS and TCP are both TCP sockets.
    let e = error("[sip]\nlisten = [\"tcp:0.0.0.0:5060\", \"tls:0.0.0.0:5060\"]\n[tls]\n");
    assert_error_at(&e, "sip.listen[1]", 2);
    assert_error_at(&error("[tls]\nprivate_key = \"\"\n"), "tls.private_key", 2);
}

#[test]
fn timers_are_checked() {
    assert_error_at(&error("[timers]\nt1_ms = 0\n"), "timers.t1_ms", 2);
    assert_error_at(&error("[timers]\nt1_ms = 1000\nt2_ms = 999\n"), "timers.t2_ms", 3);
    // t2_ms keeps its default 4000, which the new t1_ms exceeds: point at t1_ms's line.
    let e = error("[timers]\n\nt1_ms = 5000\n");
    assert_error_at(&e, "timers.t2_ms", 3);
    assert!(e.message().contains("4000") && e.message().contains("5000"), "{e}");
    assert_error_at(&error("[timers]\nt4_ms = 60001\n"), "timers.t4_ms", 2);
    assert_eq!(load("[timers]\nt1_ms = 60000\nt2_ms = 60000\nt4_ms = 0\n").timers.t2_ms, 60_000);
    assert_error_at(&error("[timers]\nt1_ms = -1\n"), "timers.t1_ms", 2);
}

#[test]
fn registrar_min_above_max() {
    let e = error("[registrar]\nmin_expires_s = 600\nmax_expires_s = 300\n");
    assert_error_at(&e, "registrar.min_expires_s", 2);
    assert!(e.message().contains("600") && e.message().contains("300"), "{e}");
    // Only max written: point at it.
    assert_error_at(&error("[registrar]\nmax_expires_s = 30\n"), "registrar.min_expires_s", 2);
    assert_error_at(&error("[registrar]\nmin_expires_s = 0\n"), "registrar.min_expires_s", 2);
    assert_eq!(load("[registrar]\nmin_expires_s = 300\nmax_expires_s = 300\n").registrar.max_expires_s, 300);
}

#[test]
fn cidrs() {
    let config = load(&format!("{ALICE}direct_media_permit = [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"]\n"));
    let permit = &config.endpoints[0].direct_media_permit;
    assert_eq!(permit.iter().map(|c| c.to_string()).collect::<Vec<_>>(), ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]);
    assert!(permit[0].contains("10.200.3.4".parse().unwrap()));
    assert!(!permit[0].contains("11.0.0.1".parse().unwrap()));
    assert!(permit[0].contains("::ffff:10.1.1.1".parse().unwrap()), "IPv4-mapped IPv6 is compared as IPv4");
    assert!(permit[1].contains("2001:db8:ffff::1".parse().unwrap()));
    assert!(!permit[1].contains("2001:db9::1".parse().unwrap()));
    assert!(!permit[1].contains("10.0.0.1".parse().unwrap()));
    assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains("203.0.113.9".parse().unwrap()));
    assert!("::/0".parse::<Cidr>().unwrap().contains("2001:db8::1".parse().unwrap()));
    assert_eq!("::ffff:10.0.0.0/8".parse::<Cidr>().unwrap().to_string(), "10.0.0.0/8", "IPv4-mapped is IPv4");

    for (bad, why) in [
        ("10.0.0.0/33", "0 to 32"),
        ("2001:db8::/129", "0 to 128"),
        ("10.0.0.0/", "0 to 32"),
        ("10.0.0.0/+8", "0 to 32"),
        ("10.0.0/8", "ADDRESS/PREFIX"),
        ("10.1.2.3/8", "did you mean \"10.0.0.0/8\""),
        ("2001:db8::1/32", "did you mean \"2001:db8::/32\""),
        // An IPv4-mapped block is an IPv4 block: its prefix is an IPv4 one.
        ("::ffff:10.0.0.0/104", "0 to 32"),
    ] {
        let e = error(&format!("{ALICE}direct_media_deny = [\n  \"{bad}\"]\n"));
        assert_error_at(&e, "endpoint[0].direct_media_deny[0]", 5);
        assert!(e.message().contains(why), "{bad}: {e}");
    }
}

#[test]
fn bad_regex_is_refused_at_load() {
    let e = error(&format!("{ALICE}[[route]]\nmatch = \"^2(\\\\d{{3}}$\"\nto = \"alice\"\n"));
    assert_error_at(&e, "route[0].match", 5);
    assert!(e.message().contains("invalid regex"), "{e}");
}

#[test]
fn routes_compile_and_rewrite() {
    let config = load(&format!(
        "{ALICE}[[route]]\nmatch = '^9(\\d+)$'\nto = \"alice\"\nuser = \"+49$1$$\"\n[[route]]\nmatch = \"^2\"\nto = \"alice\"\n"
    ));
    assert_eq!(config.routes[0].rewrite("9301"), Some("+49301$".to_owned()));
    assert_eq!(config.routes[0].rewrite("301"), None);
    assert_eq!(config.routes[1].user.to_string(), "$0");
    assert_eq!(config.routes[1].rewrite("2000"), Some("2".to_owned()), "$0 is the match, not the whole user");
    let e = error(&format!("{ALICE}[[route]]\nmatch = '^9(\\d+)$'\nto = \"alice\"\nuser = \"$2\"\n"));
    assert_error_at(&e, "route[0].user", 7);
    assert!(e.message().contains("1 capture group"), "{e}");
    assert_error_at(&error(&format!("{ALICE}[[route]]\nmatch = \"x\"\nto = \"alice\"\nuser = \"$x\"\n")), "route[0].user", 7);
    assert_error_at(&error(&format!("{ALICE}[[route]]\nmatch = \"x\"\nuser = \"$0\"\n")), "route[0].to", 4);
}

#[test]
fn route_to_unknown_endpoint() {
    let e = error(&format!("{ALICE}\n[[route]]\nmatch = \"^2\"\nto = \"bob\"\n"));
    assert_error_at(&e, "route[0].to", 7);
    assert!(e.message().contains("\"bob\""), "{e}");
}

#[test]
fn endpoint_names_unique_and_non_empty() {
    let e = error(&format!("{ALICE}\n[[endpoint]]\nsecret = \"x\"\nname = \"alice\"\n"));
    assert_error_at(&e, "endpoint[1].name", 7);
    assert!(e.message().contains("duplicate endpoint name \"alice\""), "{e}");
    assert_error_at(&error(&format!("{ALICE}\n[[endpoint]]\nsecret = \"x\"\n")), "endpoint[1].name", 5);
    assert_error_at(&error("[[endpoint]]\nname = \"\"\nsecret = \"x\"\n"), "endpoint[0].name", 2);
    assert_error_at(&error("[[endpoint]]\nname = \"al ice\"\nsecret = \"x\"\n"), "endpoint[0].name", 2);
    // Names are case-sensitive, like SIP user parts.
    assert_eq!(load(&format!("{ALICE}[[endpoint]]\nname = \"Alice\"\nsecret = \"x\"\n")).endpoints.len(), 2);
}

#[test]
fn endpoint_hosts() {
    let host = |text: &str| load(&format!("[[endpoint]]\nname = \"t\"\nhost = \"{text}\"\n")).endpoints[0].host.clone();
    assert_eq!(host("10.0.0.2:5080"), EndpointHost::Static(HostPort { host: Host::Ip("10.0.0.2".parse().unwrap()), port: Some(5080) }));
    assert_eq!(host("[2001:db8::2]:5060").to_string(), "[2001:db8::2]:5060");
    assert_eq!(host("2001:db8::2"), EndpointHost::Static(HostPort { host: Host::Ip("2001:db8::2".parse().unwrap()), port: None }));
    assert_eq!(
        host("sip.carrier.test:5061"),
        EndpointHost::Static(HostPort { host: Host::Name("sip.carrier.test".to_owned()), port: Some(5061) })
    );
    assert_eq!(host("sip.carrier.test").to_string(), "sip.carrier.test");
    for bad in ["sip carrier", "host:0", "host:99999", "-bad.test:5060", ""] {
        let e = error(&format!("[[endpoint]]\nname = \"t\"\nhost = \"{bad}\"\n"));
        assert_error_at(&e, "endpoint[0].host", 3);
    }
    // A dynamic endpoint without a secret could be registered by anyone.
    let e = error("[[endpoint]]\nname = \"t\"\n");
    assert_error_at(&e, "endpoint[0].secret", 1);
    assert_error_at(&error("[[endpoint]]\nname = \"t\"\nhost = \"dynamic\"\nsecret = \"\"\n"), "endpoint[0].secret", 4);
}

#[test]
fn chan_sip_spellings() {
    let direct = |line: &str| {
        let e = load(&format!("{ALICE}{line}\n")).endpoints.into_iter().next().unwrap();
        (e.direct_media, e.direct_media_method)
    };
    use DirectMedia::*;
    use DirectMediaMethod::*;
    for (line, want) in [
        ("directmedia = \"update,nonat\"", (Nonat, Update)),
        ("directmedia = \"nonat, update\"", (Nonat, Update)),
        ("directmedia = \"outgoing\"", (Outgoing, Invite)),
        ("directmedia = \"update,outgoing\"", (Outgoing, Update)),
        ("directmedia = \"update\"", (Yes, Update)),
        ("directmedia = \"NoNat\"", (Nonat, Invite)),
        ("directmedia = \"yes\"", (Yes, Invite)),
        ("directmedia = \"no\"", (No, Invite)),
        ("directmedia = false", (No, Invite)),
        ("canreinvite = \"yes\"", (Yes, Invite)),
        ("canreinvite = \"no\"", (No, Invite)),
        ("canreinvite = \"nonat\"", (Nonat, Invite)),
        ("canreinvite = \"update\"", (Yes, Update)),
        ("canreinvite = true", (Yes, Invite)),
    ] {
        assert_eq!(direct(line), want, "{line}");
    }
    let config =
        load(&format!("{ALICE}directmediapermit = [\"10.0.0.0/8\"]\ndirectmediadeny = [\"10.9.0.0/16\"]\ndirectrtpsetup = true\n"));
    let alice = &config.endpoints[0];
    assert_eq!(alice.direct_media_permit, ["10.0.0.0/8".parse().unwrap()]);
    assert_eq!(alice.direct_media_deny, ["10.9.0.0/16".parse().unwrap()]);
    assert!(alice.direct_rtp_setup);

    let e = error(&format!("{ALICE}directmedia = \"nonat,outgoing\"\n"));
    assert_error_at(&e, "endpoint[0].directmedia", 4);
    assert_error_at(&error(&format!("{ALICE}canreinvite = \"sometimes\"\n")), "endpoint[0].canreinvite", 4);
    assert_error_at(&error(&format!("{ALICE}canreinvite = 1\n")), "endpoint[0].canreinvite", 4);
    let e = error(&format!("{ALICE}direct_media = \"no\"\ndirectmedia = \"yes\"\n"));
    assert_error_at(&e, "endpoint[0].directmedia", 5);
    assert!(e.message().contains("`direct_media`"), "{e}");
    assert_error_at(&error(&format!("{ALICE}directmedia = \"yes\"\ndirect_media_method = \"update\"\n")), "endpoint[0].directmedia", 4);
    assert_error_at(&error(&format!("{ALICE}directmedia = \"yes\"\ncanreinvite = \"yes\"\n")), "endpoint[0].canreinvite", 5);
}

#[test]
fn log_section() {
    let config = load("[log]\nlevel = \"warn,sipbridge=debug,sip_core::transaction=trace\"\nsip_debug = true\n");
    assert!(config.log.sip_debug);
    assert_eq!(load("[log]\nlevel = \"sipbridge[call{id=3}]=debug,[span]\"").log.level, "sipbridge[call{id=3}]=debug,[span]");
    for bad in ["inof", "sipbridge=loud", "=debug", "info, debug x"] {
        assert_error_at(&error(&format!("[log]\nlevel = \"{bad}\"\n")), "log.level", 2);
    }
}

#[test]
fn other_checked_values() {
    assert_error_at(&error("[media]\nports = \"20001-29999\"\n"), "media.ports", 2);
    assert_error_at(&error("[media]\nports = \"20000-20000\"\n"), "media.ports", 2);
    assert_error_at(&error("[media]\naddress = \"\"\n"), "media.address", 2);
    assert_eq!(load("[media]\nports = \"40000-40001\"\n").media.ports.pairs(), 1);
    assert_eq!(load("[api]\nlisten = \"\"\n").api.listen, None);
    assert_error_at(&error("[api]\nlisten = \"localhost:8080\"\n"), "api.listen", 2);
    assert_eq!(load("[sip]\nexternal_address = \"203.0.113.5\"\n").sip.external_address, Some("203.0.113.5".parse().unwrap()));
    assert_error_at(&error("[sip]\nexternal_address = \"nat.example\"\n"), "sip.external_address", 2);
    assert_error_at(&error("[sip]\ndomain = \"\"\n"), "sip.domain", 2);
    assert_error_at(&error("[sip]\nuser_agent = \"sb\\r\\nX-Evil: 1\"\n"), "sip.user_agent", 2);
    assert_error_at(&error(&format!("{ALICE}codecs = []\n")), "endpoint[0].codecs", 4);
    assert_error_at(&error(&format!("{ALICE}qualify_frequency_s = 0\n")), "endpoint[0].qualify_frequency_s", 4);
    assert_eq!(load(&format!("{ALICE}qualify = false\nqualify_frequency_s = 0\n")).endpoints[0].qualify_frequency_s, 0);
}

#[test]
fn secrets_are_masked_in_every_printout() {
    let config =
        load(&format!("{ALICE}[[endpoint]]\nname = \"trunk\"\nhost = \"192.0.2.1:5060\"\n[store]\nurl = \"postgres://sb:dbpass@db/sb\"\n"));
    let printed = config.to_toml().unwrap();
    let debug = format!("{config:?}");
    for shown in [&printed, &debug] {
        assert!(!shown.contains("\"pw\"") && !shown.contains("dbpass"), "{shown}");
        assert!(shown.contains("********"), "{shown}");
    }
    assert!(printed.contains("secret = \"********\""), "{printed}");
    assert!(printed.contains("url = \"postgres://sb:********@db/sb\""), "{printed}");
    assert_eq!(printed.matches("secret =").count(), 1, "the no-secret endpoint prints no secret: {printed}");
    assert_eq!(config.store.url.to_string(), "postgres://sb:********@db/sb");
    assert_eq!(StoreUrl::Postgres("postgres://db/sb".to_owned()).masked(), "postgres://db/sb");
    assert_eq!(StoreUrl::Postgres("postgres://sb@db/sb".to_owned()).masked(), "postgres://sb@db/sb");

    // Loading the masked printout back is refused, so it cannot become the real config.
    let e = error(&printed);
    assert_eq!(e.key(), Some("endpoint[0].secret"), "{e}");
    assert!(e.message().contains("mask"), "{e}");
    let e = error("[store]\nurl = \"postgres://sb:********@db/sb\"\n");
    assert_error_at(&e, "store.url", 2);
}

#[test]
fn round_trip_print_load_equal() {
    // Every section with non-default values (secrets aside: they print masked, see above).
    let text = r#"
[sip]
listen = ["udp:[::]:5070", "tls:0.0.0.0:5071"]
domain = "pbx.round.test"
external_address = "203.0.113.7"
user_agent = "sb/1"
[timers]
t1_ms = 250
t2_ms = 2000
t4_ms = 2500
[tls]
certificate = "c.pem"
private_key = "k.pem"
[media]
address = "192.0.2.10"
ports = "30000-30999"
verify_media = false
timeout_s = 0
rtp_keepalive_s = 15
[store]
url = "memory"
[registrar]
min_expires_s = 30
max_expires_s = 600
[api]
listen = ""
[log]
level = "debug"
sip_debug = true
[[endpoint]]
name = "trunk"
host = "[2001:db8::5]:5060"
transport = "tcp"
codecs = ["PCMA"]
dtmf_mode = "info"
directmedia = "update,nonat"
direct_media_permit = ["10.0.0.0/8", "2001:db8::/32"]
direct_media_deny = ["10.9.0.0/16"]
direct_rtp_setup = true
nat = "yes"
media_address = "198.51.100.1"
qualify = false
qualify_frequency_s = 5
qualify_max_ms = 100
[[route]]
match = '^0(\d+)$'
to = "trunk"
user = "+49$1"
"#;
    let config = load(text);
    assert_ne!(config, Config::default());
    let printed = config.to_toml().unwrap();
    let reloaded = load(&printed);
    assert_eq!(reloaded, config, "printed as:\n{printed}");
    assert_eq!(reloaded.to_toml().unwrap(), printed);
    // The default config round-trips too, and prints every key.
    let default = Config::default().to_toml().unwrap();
    assert_eq!(load(&default), Config::default());
    for key in ["listen", "external_address = \"\"", "t4_ms", "ports", "url", "max_expires_s", "[api]", "sip_debug"] {
        assert!(default.contains(key), "{key} missing from:\n{default}");
    }
}

#[test]
fn load_names_the_file() {
    let missing = std::env::temp_dir().join("sipbridge-config-test-no-such-file.toml");
    let e = Config::load(&missing).unwrap_err();
    assert!(format!("{e:#}").contains("sipbridge-config-test-no-such-file.toml"), "{e:#}");
}
