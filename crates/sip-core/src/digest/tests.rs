#![allow(clippy::unwrap_used)]

use super::*;
use bytes::Bytes;
use proptest::prelude::*;
use sip_message::Message;

const REALM: &str = "sipbridge.test";
const SECRET: [u8; 32] = [0x5a; 32];
const URI: &str = "sip:bob@sipbridge.test";

fn digest() -> Digest {
    Digest::new(DigestConfig::new(REALM, SECRET))
}

fn alice(user: &str) -> Option<&'static str> {
    (user == "alice").then_some("wonderland")
}

fn at(ms: u64) -> Time {
    Time::from_millis(ms)
}

/// The challenge for `alg` from a fresh challenge at `now`.
fn challenge(d: &mut Digest, now: Time, alg: Algorithm) -> Challenge {
    let [sha, md5]: [String; 2] = d.challenge(now, false).try_into().unwrap();
    Challenge::parse(if alg == Algorithm::Sha256 { &sha } else { &md5 }).unwrap()
}

fn auth(c: &Challenge, user: &str, password: &str, nc: u32) -> String {
    c.authorization(user, password, "INVITE", URI, "0a4f113b", nc)
}

fn verdict(d: &mut Digest, now: Time, credentials: &str) -> Verdict {
    d.verify(now, "INVITE", credentials, alice).verdict
}

fn ok() -> Verdict {
    Verdict::Authenticated { username: "alice".into() }
}

#[test]
fn challenges_offer_sha256_then_md5_with_one_nonce() {
    let mut d = digest();
    let [sha, md5]: [String; 2] = d.challenge(at(1), false).try_into().unwrap();
    assert!(sha.starts_with("Digest realm=\"sipbridge.test\", nonce=\""), "{sha}");
    assert!(sha.ends_with(", algorithm=SHA-256, qop=\"auth\""), "{sha}");
    assert!(md5.ends_with(", algorithm=MD5, qop=\"auth\""), "{md5}");
    let (a, b) = (Challenge::parse(&sha).unwrap(), Challenge::parse(&md5).unwrap());
    assert_eq!(a.nonce(), b.nonce());
    assert!(!a.stale());
    // Every challenge gets its own nonce, even in the same millisecond.
    assert_ne!(challenge(&mut d, at(1), Algorithm::Sha256).nonce(), a.nonce());
    let [sha, md5]: [String; 2] = d.challenge(at(1), true).try_into().unwrap();
    assert!(sha.ends_with(", stale=true") && md5.ends_with(", stale=true"));
    assert!(Challenge::parse(&sha).unwrap().stale());

    let [h1, h2]: [Header; 2] = d.challenge_headers(at(1), Challenger::Proxy, false).try_into().unwrap();
    assert_eq!((h1.name(), h2.name()), (HeaderName::ProxyAuthenticate, HeaderName::ProxyAuthenticate));
    assert!(h1.value_str().unwrap().contains("algorithm=SHA-256"));
    assert_eq!(Challenger::UserAgent.challenge_header(), HeaderName::WwwAuthenticate);
    assert_eq!((Challenger::UserAgent.status(), Challenger::Proxy.status()), (401, 407));
}

#[test]
fn round_trip_each_algorithm() {
    for alg in [Algorithm::Sha256, Algorithm::Md5] {
        let mut d = digest();
        let c = challenge(&mut d, at(1_000), alg);
        let a = auth(&c, "alice", "wonderland", 1);
        assert!(a.contains(&format!("algorithm={alg}")));
        let v = d.verify(at(2_000), "INVITE", &a, alice);
        assert_eq!(v, Verification { verdict: ok(), claimed_username: Some("alice".into()) }, "{alg}");
    }
}

#[test]
fn absent_algorithm_means_md5() {
    let mut d = digest();
    let c = challenge(&mut d, at(0), Algorithm::Md5);
    let a = auth(&c, "alice", "wonderland", 1).replace(", algorithm=MD5", "");
    assert_eq!(verdict(&mut d, at(1), &a), ok());
    // An SHA-256 answer without the parameter is read as MD5, and fails.
    let c = challenge(&mut d, at(0), Algorithm::Sha256);
    let a = auth(&c, "alice", "wonderland", 1).replace(", algorithm=SHA-256", "");
    assert_eq!(verdict(&mut d, at(1), &a), Verdict::Failed(FailReason::WrongResponse));
}

#[test]
fn method_is_hashed() {
    let mut d = digest();
    let a = auth(&challenge(&mut d, at(0), Algorithm::Sha256), "alice", "wonderland", 1);
    assert_eq!(d.verify(at(1), "REGISTER", &a, alice).verdict, Verdict::Failed(FailReason::WrongResponse));
}

#[test]
fn stale_after_lifetime_only_when_the_digest_is_right() {
    let mut d = digest();
    let c = challenge(&mut d, at(10_000), Algorithm::Sha256);
    // Exactly at the lifetime: still fresh.
    assert_eq!(verdict(&mut d, at(310_000), &auth(&c, "alice", "wonderland", 1)), ok());
    assert_eq!(verdict(&mut d, at(310_001), &auth(&c, "alice", "wonderland", 2)), Verdict::Stale(StaleReason::Expired));
    // RFC 7616 §3.3: stale only with a valid digest.
    assert_eq!(verdict(&mut d, at(310_001), &auth(&c, "alice", "wrong", 3)), Verdict::Failed(FailReason::WrongResponse));
    assert!(d.verify(at(310_001), "INVITE", &auth(&c, "alice", "wonderland", 4), alice).verdict.is_stale());
}

#[test]
fn shorter_lifetime_is_honoured() {
    let mut d = Digest::new(DigestConfig { nonce_lifetime: Duration::from_secs(30), ..DigestConfig::new(REALM, SECRET) });
    let c = challenge(&mut d, at(0), Algorithm::Md5);
    assert_eq!(verdict(&mut d, at(30_001), &auth(&c, "alice", "wonderland", 1)), Verdict::Stale(StaleReason::Expired));
}

#[test]
fn nonce_from_the_future_is_stale() {
    // Same secret and realm, a clock ahead of ours: the MAC is valid, the date is not.
    let mut ahead = digest();
    let c = challenge(&mut ahead, at(60_000), Algorithm::Sha256);
    let mut d = digest();
    assert_eq!(verdict(&mut d, at(1_000), &auth(&c, "alice", "wonderland", 1)), Verdict::Stale(StaleReason::Expired));
}

#[test]
fn tampered_foreign_and_restarted_nonces_fail() {
    let mut d = digest();
    let c = challenge(&mut d, at(5_000), Algorithm::Sha256);
    let nonce = c.nonce().to_owned();
    // Flip one digit of the timestamp (to look younger) and of the MAC.
    for i in [15, 63] {
        let mut forged = nonce.clone().into_bytes();
        forged[i] = if forged[i] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(forged).unwrap();
        let c = Challenge::parse(&format!("Digest realm=\"{REALM}\", nonce=\"{forged}\", qop=\"auth\"")).unwrap();
        assert_eq!(verdict(&mut d, at(6_000), &auth(&c, "alice", "wonderland", 1)), Verdict::Failed(FailReason::InvalidNonce));
    }
    for junk in ["", "abc", "zz", &nonce[..62], &format!("{nonce}00"), &nonce.replace(|_: char| true, "g")] {
        let c = Challenge::parse(&format!("Digest realm=\"{REALM}\", nonce=\"{junk}\", qop=\"auth\"")).unwrap();
        assert_eq!(verdict(&mut d, at(6_000), &auth(&c, "alice", "wonderland", 1)), Verdict::Failed(FailReason::InvalidNonce), "{junk:?}");
    }
    // A restart draws a new secret: the old nonce is a plain failure, not stale.
    let mut restarted = Digest::new(DigestConfig::new(REALM, [0x11; 32]));
    assert_eq!(verdict(&mut restarted, at(6_000), &auth(&c, "alice", "wonderland", 1)), Verdict::Failed(FailReason::InvalidNonce));
    // Same secret, another realm: the MAC binds the realm.
    let mut other = Digest::new(DigestConfig::new("other.test", SECRET));
    let c_other = challenge(&mut other, at(5_000), Algorithm::Sha256);
    let forged = Challenge::parse(&format!("Digest realm=\"{REALM}\", nonce=\"{}\", qop=\"auth\"", c_other.nonce())).unwrap();
    assert_eq!(verdict(&mut d, at(6_000), &auth(&forged, "alice", "wonderland", 1)), Verdict::Failed(FailReason::InvalidNonce));
    // Uppercase hex is the same nonce.
    let upper = Challenge::parse(&format!("Digest realm=\"{REALM}\", nonce=\"{}\", qop=\"auth\"", nonce.to_uppercase())).unwrap();
    assert_eq!(verdict(&mut d, at(6_000), &auth(&upper, "alice", "wonderland", 1)), ok());
}

#[test]
fn other_realm_is_missing() {
    let mut other = Digest::new(DigestConfig::new("other.test", SECRET));
    let c = challenge(&mut other, at(0), Algorithm::Sha256);
    let mut d = digest();
    let v = d.verify(at(1), "INVITE", &auth(&c, "alice", "wonderland", 1), alice);
    assert_eq!(v, Verification { verdict: Verdict::Missing, claimed_username: Some("alice".into()) });
    assert_eq!(verdict(&mut d, at(1), "Basic YWxpY2U6d29uZGVybGFuZA=="), Verdict::Missing);
}

#[test]
fn unknown_user_and_wrong_password_look_the_same() {
    let mut d = digest();
    let c = challenge(&mut d, at(0), Algorithm::Sha256);
    let wrong_password = d.verify(at(1), "INVITE", &auth(&c, "alice", "guess", 1), alice);
    let unknown_user = d.verify(at(1), "INVITE", &auth(&c, "mallory", "guess", 1), alice);
    assert_eq!(wrong_password.verdict, unknown_user.verdict);
    assert_eq!(wrong_password.verdict, Verdict::Failed(FailReason::WrongResponse));
    assert_eq!(unknown_user.claimed_username.as_deref(), Some("mallory"));
    // Even a client that guessed the dummy password gets nowhere.
    let dummy = std::str::from_utf8(DUMMY_PASSWORD).unwrap();
    assert_eq!(verdict(&mut d, at(1), &auth(&c, "mallory", dummy, 1)), Verdict::Failed(FailReason::WrongResponse));
    // The lookup is asked exactly once, for the claimed name, known or not.
    let mut asked = Vec::new();
    let _ = d.verify(at(1), "INVITE", &auth(&c, "mallory", "x", 2), |u: &str| {
        asked.push(u.to_owned());
        None::<&str>
    });
    assert_eq!(asked, ["mallory"]);
}

#[test]
fn replayed_nc_is_stale_increasing_nc_is_accepted() {
    let mut d = digest();
    let c = challenge(&mut d, at(0), Algorithm::Sha256);
    assert_eq!(verdict(&mut d, at(1), &auth(&c, "alice", "wonderland", 1)), ok());
    assert_eq!(verdict(&mut d, at(2), &auth(&c, "alice", "wonderland", 1)), Verdict::Stale(StaleReason::Replayed));
    assert_eq!(verdict(&mut d, at(3), &auth(&c, "alice", "wonderland", 2)), ok());
    assert_eq!(verdict(&mut d, at(4), &auth(&c, "alice", "wonderland", 7)), ok());
    assert_eq!(verdict(&mut d, at(5), &auth(&c, "alice", "wonderland", 5)), Verdict::Stale(StaleReason::Replayed));
    assert_eq!(verdict(&mut d, at(6), &auth(&c, "alice", "wonderland", 8)), ok());
    assert_eq!(d.tracked_nonces(), 1);
    // Another nonce has its own count.
    let c2 = challenge(&mut d, at(7), Algorithm::Md5);
    assert_eq!(verdict(&mut d, at(8), &auth(&c2, "alice", "wonderland", 1)), ok());
}

#[test]
fn failed_attempts_do_not_burn_counts() {
    let mut d = digest();
    let c = challenge(&mut d, at(0), Algorithm::Sha256);
    assert_eq!(verdict(&mut d, at(1), &auth(&c, "alice", "guess", 0xffff_ffff)), Verdict::Failed(FailReason::WrongResponse));
    assert_eq!(verdict(&mut d, at(2), &auth(&c, "alice", "wonderland", 1)), ok());
}

#[test]
fn replay_table_forgets_expired_nonces_and_evicts_oldest() {
    let mut d = digest();
    let c = challenge(&mut d, at(0), Algorithm::Sha256);
    assert_eq!(verdict(&mut d, at(1), &auth(&c, "alice", "wonderland", 1)), ok());
    assert_eq!(d.tracked_nonces(), 1);
    let _ = d.challenge(at(300_001), false);
    assert_eq!(d.tracked_nonces(), 0);

    let mut d = Digest::new(DigestConfig { max_tracked_nonces: 2, ..DigestConfig::new(REALM, SECRET) });
    let cs: Vec<Challenge> = (0..3).map(|i| challenge(&mut d, at(i), Algorithm::Sha256)).collect();
    for c in &cs {
        assert_eq!(verdict(&mut d, at(10), &auth(c, "alice", "wonderland", 1)), ok());
    }
    assert_eq!(d.tracked_nonces(), 2);
    // The evicted (oldest) nonce can no longer be checked for replay: stale.
    assert_eq!(verdict(&mut d, at(11), &auth(&cs[0], "alice", "wonderland", 2)), Verdict::Stale(StaleReason::Replayed));
    assert_eq!(verdict(&mut d, at(11), &auth(&cs[1], "alice", "wonderland", 2)), ok());
    // A newer nonce never used before is still welcome.
    let c = challenge(&mut d, at(12), Algorithm::Sha256);
    assert_eq!(verdict(&mut d, at(13), &auth(&c, "alice", "wonderland", 1)), ok());

    let mut none = Digest::new(DigestConfig { max_tracked_nonces: 0, ..DigestConfig::new(REALM, SECRET) });
    let c = challenge(&mut none, at(0), Algorithm::Md5);
    assert_eq!(verdict(&mut none, at(1), &auth(&c, "alice", "wonderland", 1)), ok());
    assert_eq!(verdict(&mut none, at(1), &auth(&c, "alice", "wonderland", 2)), Verdict::Stale(StaleReason::Replayed));
    assert_eq!(none.tracked_nonces(), 0);
}

#[test]
fn qop_and_algorithm_rules() {
    let mut d = digest();
    let c = challenge(&mut d, at(0), Algorithm::Md5);
    // RFC 2069 style (no qop, cnonce, nc): answered by a client seeing no qop offered.
    let no_qop = Challenge::parse(&format!("Digest realm=\"{REALM}\", nonce=\"{}\"", c.nonce())).unwrap();
    assert_eq!(verdict(&mut d, at(1), &auth(&no_qop, "alice", "wonderland", 1)), Verdict::Failed(FailReason::UnsupportedQop));
    let good = auth(&c, "alice", "wonderland", 1);
    let cases = [
        (good.replace("qop=auth", "qop=auth-int"), FailReason::UnsupportedQop),
        (good.replace("algorithm=MD5", "algorithm=MD5-sess"), FailReason::UnsupportedAlgorithm),
        (good.replace("algorithm=MD5", "algorithm=SHA-512-256"), FailReason::UnsupportedAlgorithm),
        (good.replace(", cnonce=\"0a4f113b\"", ""), FailReason::Malformed),
        (good.replace("cnonce=\"0a4f113b\"", "cnonce=\"\""), FailReason::Malformed),
        (good.replace(", nc=00000001", ""), FailReason::Malformed),
        (good.replace("nc=00000001", "nc=1"), FailReason::Malformed),
        (good.replace("nc=00000001", "nc=00000000"), FailReason::Malformed),
        (good.replace("nc=00000001", "nc=0000000g"), FailReason::Malformed),
        (good.replace("nc=00000001", "nc=+0000001"), FailReason::Malformed),
        (format!("{good}, userhash=true"), FailReason::Malformed),
        (format!("{good}, nc=00000002"), FailReason::Malformed),
    ];
    for (credentials, reason) in cases {
        assert_eq!(verdict(&mut d, at(1), &credentials), Verdict::Failed(reason), "{credentials}");
    }
    // Quoted qop (a common client quirk) and an uppercase response are accepted.
    let quirky = good.replace("qop=auth", "qop=\"auth\"");
    let resp = quirky.split("response=\"").nth(1).unwrap()[..32].to_owned();
    assert_eq!(verdict(&mut d, at(1), &quirky.replace(&resp, &resp.to_uppercase())), ok());
}

#[test]
fn odd_formatting_and_escapes() {
    let mut d = digest();
    let c = challenge(&mut d, at(0), Algorithm::Sha256);
    let lookup = |u: &str| (u == "a\"l\\ice").then_some("pa\"ss");
    let a = c.authorization("a\"l\\ice", "pa\"ss", "INVITE", URI, "c\"n", 1);
    assert!(a.contains(r#"username="a\"l\\ice""#), "{a}");
    let odd = format!("  digest\t{}  ,, unknown=\"ignored\", x=y", a["Digest ".len()..].replace(", ", " ,\r\n\t ").replace('=', " = "));
    let v = d.verify(at(1), "INVITE", &odd, lookup);
    assert_eq!(v.verdict, Verdict::Authenticated { username: "a\"l\\ice".into() }, "{odd}");
    // Reordered parameters.
    let a = c.authorization("a\"l\\ice", "pa\"ss", "INVITE", URI, "c\"n", 2);
    let mut parts: Vec<&str> = a["Digest ".len()..].split(", ").collect();
    parts.reverse();
    let reordered = format!("Digest {}", parts.join(","));
    assert_eq!(d.verify(at(1), "INVITE", &reordered, lookup).verdict, Verdict::Authenticated { username: "a\"l\\ice".into() });
}

#[test]
fn garbage_fails_without_panicking() {
    let mut d = digest();
    let c = challenge(&mut d, at(0), Algorithm::Sha256);
    let good = auth(&c, "alice", "wonderland", 1);
    let mut inputs: Vec<String> = [
        "",
        "Digest",
        "Digest ",
        "Digest realm",
        "Digest realm=\"sipbridge.test\"",
        "Digest realm=\"sipbridge.test",
        "Digest realm=\"sipbridge.test\", realm=\"sipbridge.test\"",
        "Digest username=\"alice\"",
        "Digest ,,,",
        "Digest \"",
        "Digest realm=\"sipbridge.test\" username=\"alice\"",
        "Digest realm=\"sipbridge.test\", username=\"a\\",
        "\u{0}\u{7f}é",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for field in ["username", "nonce", "uri", "response"] {
        let cut = good["Digest ".len()..].split(", ").filter(|p| !p.starts_with(&format!("{field}="))).collect::<Vec<_>>().join(", ");
        inputs.push(format!("Digest {cut}"));
    }
    for i in 0..good.len() {
        if good.is_char_boundary(i) {
            inputs.push(good[..i].to_owned());
        }
    }
    for input in &inputs {
        let v = verdict(&mut d, at(1), input);
        assert!(matches!(v, Verdict::Failed(_) | Verdict::Missing), "{input:?}: {v:?}");
    }
}

fn request(headers: &str) -> Request {
    let wire = format!(
        "INVITE {URI} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:alice@sipbridge.test>;tag=1\r\n\
         To: <{URI}>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{headers}Content-Length: 0\r\n\r\n"
    );
    match Message::parse(Bytes::from(wire)).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

#[test]
fn verify_request_picks_our_realm() {
    let mut d = digest();
    let mut other = Digest::new(DigestConfig::new("other.test", SECRET));
    let ours = auth(&challenge(&mut d, at(0), Algorithm::Sha256), "alice", "wonderland", 1);
    let theirs = auth(&challenge(&mut other, at(0), Algorithm::Sha256), "alice", "wonderland", 1);
    let req = request(&format!("Authorization: Basic Zm9vOmJhcg==\r\nAuthorization: {theirs}\r\nAuthorization: {ours}\r\n"));
    assert_eq!(d.verify_request(at(1), Challenger::UserAgent, &req, alice).verdict, ok());
    // The proxy role reads Proxy-Authorization only.
    assert_eq!(d.verify_request(at(1), Challenger::Proxy, &req, alice).verdict, Verdict::Missing);
    let req = request(&format!("Proxy-Authorization: {theirs}\r\n"));
    assert_eq!(d.verify_request(at(1), Challenger::Proxy, &req, alice).verdict, Verdict::Missing);
    let req = request("Proxy-Authorization: Digest realm=\"sipbridge.test\r\n");
    assert_eq!(d.verify_request(at(1), Challenger::Proxy, &req, alice).verdict, Verdict::Failed(FailReason::Malformed));
    assert_eq!(d.verify_request(at(1), Challenger::UserAgent, &request(""), alice).verdict, Verdict::Missing);
}

#[test]
fn debug_hides_the_secret() {
    let d = digest();
    let shown = format!("{d:?}");
    assert!(shown.contains("********") && !shown.contains("90, 90"), "{shown}");
}

proptest! {
    #[test]
    fn arbitrary_credentials_never_panic(s in any::<String>(), now in 0u64..1_000_000) {
        let mut d = digest();
        let v = verdict(&mut d, at(now), &s);
        prop_assert!(!v.is_authenticated());
        let _ = Challenge::parse(&s);
    }

    #[test]
    fn digest_shaped_credentials_never_panic(s in "(Digest|digest|Basic)?[ \t\r\n]*([a-z]{1,8}[ ]*=[ ]*(\"([^\"\\\\]|\\\\.){0,12}\"?|[a-z0-9]{0,10})[ ]*,?[ ]*){0,8}") {
        let mut d = digest();
        let v = verdict(&mut d, at(1), &s);
        prop_assert!(!v.is_authenticated());
    }

    #[test]
    fn mangled_good_credentials_never_panic(cut in 0usize..400, byte in any::<u8>()) {
        let mut d = digest();
        let c = challenge(&mut d, at(0), Algorithm::Sha256);
        let mut good = auth(&c, "alice", "wonderland", 1).into_bytes();
        if cut < good.len() {
            good[cut] = byte;
        }
        let s = String::from_utf8_lossy(&good).into_owned();
        let _ = verdict(&mut d, at(1), &s);
    }
}

#[test]
fn challenges_follow_the_configured_algorithms_and_others_are_refused() {
    let mut config = DigestConfig::new(REALM, SECRET);
    config.algorithms = vec![Algorithm::Md5];
    let mut md5_only = Digest::new(config);
    let c = md5_only.challenge(at(0), false);
    assert_eq!(c.len(), 1);
    assert!(c[0].contains("algorithm=MD5"), "{}", c[0]);
    // SHA-256 credentials on a nonce of ours: not an algorithm we offered.
    let mut sha = Challenge::parse(&c[0].replace("algorithm=MD5", "algorithm=SHA-256")).unwrap();
    assert_eq!(sha.algorithm(), Algorithm::Sha256);
    let a = auth(&sha, "alice", "wonderland", 1);
    assert_eq!(verdict(&mut md5_only, at(1), &a), Verdict::Failed(FailReason::UnsupportedAlgorithm));
    sha = Challenge::parse(&c[0]).unwrap();
    assert_eq!(verdict(&mut md5_only, at(1), &auth(&sha, "alice", "wonderland", 1)), ok());
    // MD5 first, then SHA-256: the order of the headers.
    let mut config = DigestConfig::new(REALM, SECRET);
    config.algorithms = vec![Algorithm::Md5, Algorithm::Sha256];
    let c = Digest::new(config).challenge(at(0), true);
    assert!(c[0].contains("algorithm=MD5") && c[1].contains("algorithm=SHA-256") && c[1].ends_with("stale=true"), "{c:?}");
}
