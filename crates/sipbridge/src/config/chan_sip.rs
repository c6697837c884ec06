//! Asterisk chan_sip spellings of the direct-media setting, so a `sip.conf` peer can be
//! carried over line by line.
//!
//! chan_sip has one key, `directmedia` (older name `canreinvite`), whose value is a
//! boolean or a comma-separated list of words; sipbridge splits it into `direct_media`
//! and `direct_media_method`:
//!
//! | chan_sip value                                      | `direct_media` | `direct_media_method` |
//! |-----------------------------------------------------|----------------|-----------------------|
//! | `yes` (or `true`, `y`, `t`, `1`, `on`; TOML `true`)  | `yes`          | `invite`              |
//! | `no` (or `false`, `n`, `f`, `0`, `off`; TOML `false`)| `no`           | `invite`              |
//! | `nonat`                                             | `nonat`        | `invite`              |
//! | `outgoing`                                          | `outgoing`     | `invite`              |
//! | `update`                                            | `yes`          | `update`              |
//! | `update,nonat` (any order)                          | `nonat`        | `update`              |
//! | `update,outgoing` (any order)                       | `outgoing`     | `update`              |
//!
//! Words are case-insensitive. Refused, with the key's line: `nonat` together with
//! `outgoing` (chan_sip keeps them as two flags, sipbridge's `direct_media` is one
//! choice), unknown words (chan_sip only warns), both `directmedia` and `canreinvite` on
//! one endpoint, and either of them together with `direct_media` or
//! `direct_media_method` (which one should win would be a guess).
//!
//! The rewrite happens on the parsed document before deserializing, so the new keys
//! keep the chan_sip value's position for any later error.

use std::borrow::Cow;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::{Invalid, KeyPath};
use super::{DirectMedia, DirectMediaMethod, InvalidValue};

/// What a `directmedia` value may be, for error messages.
const EXPECTED: &str = "expected yes, no, or a comma-separated list of update, nonat, outgoing";

/// The chan_sip keys that set direct media, newest name first.
const KEYS: [&str; 2] = ["directmedia", "canreinvite"];

/// Map a chan_sip `directmedia` / `canreinvite` value (see the module docs).
pub fn parse_directmedia(value: &str) -> Result<(DirectMedia, DirectMediaMethod), InvalidValue> {
    let value = value.trim();
    let is_any = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(value));
    if is_any(&["yes", "true", "y", "t", "1", "on"]) {
        return Ok((DirectMedia::Yes, DirectMediaMethod::Invite));
    }
    if is_any(&["no", "false", "n", "f", "0", "off"]) {
        return Ok((DirectMedia::No, DirectMediaMethod::Invite));
    }
    let (mut nonat, mut outgoing, mut update) = (false, false, false);
    for word in value.split(',').map(str::trim) {
        match word.to_ascii_lowercase().as_str() {
            "nonat" => nonat = true,
            "outgoing" => outgoing = true,
            "update" => update = true,
            _ => return Err(InvalidValue(format!("unknown directmedia value {word:?} in {value:?}: {EXPECTED}"))),
        }
    }
    let mode = match (nonat, outgoing) {
        (true, true) => {
            return Err(InvalidValue(
                "`nonat` and `outgoing` cannot be combined: sipbridge's direct_media is one of yes, no, nonat, outgoing".to_owned(),
            ))
        }
        (true, false) => DirectMedia::Nonat,
        (false, true) => DirectMedia::Outgoing,
        (false, false) => DirectMedia::Yes,
    };
    let method = if update { DirectMediaMethod::Update } else { DirectMediaMethod::Invite };
    Ok((mode, method))
}

/// Replace the chan_sip keys of every `[[endpoint]]` in `doc` by `direct_media` and
/// `direct_media_method`. Values of the wrong shape are left for deserializing to report.
pub(super) fn rewrite(doc: &mut Spanned<DeTable<'_>>) -> Result<(), Invalid> {
    let Some(endpoints) = doc.get_mut().get_mut("endpoint") else { return Ok(()) };
    let DeValue::Array(endpoints) = endpoints.get_mut() else { return Ok(()) };
    for (i, endpoint) in endpoints.iter_mut().enumerate() {
        if let DeValue::Table(table) = endpoint.get_mut() {
            rewrite_endpoint(table, &KeyPath::key("endpoint").index(i))?;
        }
    }
    Ok(())
}

fn rewrite_endpoint(table: &mut DeTable<'_>, here: &KeyPath) -> Result<(), Invalid> {
    let present: Vec<&str> = KEYS.into_iter().filter(|k| table.contains_key(*k)).collect();
    let chan_key = match present.as_slice() {
        [] => return Ok(()),
        [one] => *one,
        _ => return Err(Invalid::new(here.then("canreinvite"), "`directmedia` and `canreinvite` are the same chan_sip setting; keep one")),
    };
    for native in ["direct_media", "direct_media_method"] {
        if table.contains_key(native) {
            return Err(Invalid::new(
                here.then(chan_key),
                format!("`{chan_key}` sets both `direct_media` and `direct_media_method`, so it cannot be combined with `{native}`"),
            ));
        }
    }
    let Some((key, value)) = table.remove_entry(chan_key) else { return Ok(()) };
    let (mode, method) = match value.get_ref() {
        DeValue::String(text) => parse_directmedia(text),
        DeValue::Boolean(true) => Ok((DirectMedia::Yes, DirectMediaMethod::Invite)),
        DeValue::Boolean(false) => Ok((DirectMedia::No, DirectMediaMethod::Invite)),
        other => Err(InvalidValue(format!("expected a string such as \"update,nonat\" or a boolean, found {}", other.type_str()))),
    }
    .map_err(|InvalidValue(message)| Invalid::new(here.then(chan_key), message))?;
    for (native, setting) in [("direct_media", mode.as_str()), ("direct_media_method", method.as_str())] {
        table.insert(Spanned::new(key.span(), Cow::Borrowed(native)), Spanned::new(value.span(), DeValue::String(Cow::Borrowed(setting))));
    }
    Ok(())
}
