//! From text to [`raw::File`]: TOML syntax errors (every one, with line
//! and column), values of the wrong TOML type (with the key and line),
//! and unknown keys (every one, with its line and the closest known key
//! when there is one). Also the key names of services: `services.web`
//! when the service has a usable name, `services[2]` otherwise.

use std::ops::Range;

use serde::{
    Deserialize, Deserializer,
    de::{self, Visitor},
    forward_to_deserialize_any,
};
use toml::de::{DeTable, DeValue};

use super::{Problem, Report, raw};

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    /// A table key.
    Key(String),
    /// An array element.
    Index(usize),
}

/// Parses and deserializes `text`: the file, and a report that already
/// holds the unknown keys; `Err` when the TOML cannot be read at all (a
/// syntax error, a value of the wrong type).
pub(super) fn deserialize(text: &str) -> Result<(raw::File, Report), Vec<Problem>> {
    let (root, mut errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.span().map(|s| s.start));
        return Err(errors
            .iter()
            .map(|e| Problem {
                key: String::new(),
                message: at(text, e.span(), e.message()),
                hint: Some(
                    "fix the TOML syntax: strings need quotes, each key is given once, tables are [name] and lists of tables [[name]]"
                        .into(),
                ),
            })
            .collect());
    }
    let mut unknown: Vec<Vec<Seg>> = Vec::new();
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        vec![Problem {
            key: String::new(),
            message: at(text, e.span(), e.message()),
            hint: Some("fix the TOML syntax".into()),
        }]
    })?;
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(segments_ignored(&path));
    let ignoring = serde_ignored::Deserializer::new(deserializer, &mut record);
    let file: raw::File = match serde_path_to_error::deserialize(ignoring) {
        Ok(file) => file,
        Err(e) => {
            let path: Vec<Seg> = e
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                    _ => None,
                })
                .collect();
            let inner = e.into_inner();
            return Err(vec![Problem {
                key: show(&path, &[]),
                message: at(text, inner.span(), inner.message()),
                hint: Some(type_hint(inner.message()).into()),
            }]);
        }
    };
    let services = service_keys(&file.services);
    let mut report = Report::default();
    let root = root.into_inner();
    for path in unknown {
        let key = show(&path, &services);
        let name = match path.last() {
            Some(Seg::Key(name)) => name.clone(),
            _ => continue,
        };
        let line = locate(&root, &path).map(|offset| line_col(text, offset).0);
        let known = known_keys(&path[..path.len() - 1]);
        let message = match line {
            Some(line) => format!("unknown key `{name}` (line {line})"),
            None => format!("unknown key `{name}`"),
        };
        let hint = match closest(&name, known) {
            Some(near) => format!("did you mean `{near}`?"),
            None if known.is_empty() => "remove it".to_owned(),
            None => format!("remove it; the keys here are {}", known.join(", ")),
        };
        report.add(key, message, hint);
    }
    Ok((file, report))
}

/// The key of each service: `services.<name>` when its name is usable as
/// a key and unique, `services[<index>]` otherwise.
pub(super) fn service_keys(services: &[raw::Service]) -> Vec<String> {
    services
        .iter()
        .enumerate()
        .map(|(i, s)| match &s.name {
            Some(name)
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    && services
                        .iter()
                        .filter(|o| o.name.as_deref() == Some(name))
                        .count()
                        == 1 =>
            {
                format!("services.{name}")
            }
            _ => format!("services[{i}]"),
        })
        .collect()
}

/// A path as a key: `overlay.peers[0].identity`, with services by name.
fn show(path: &[Seg], services: &[String]) -> String {
    let mut out = String::new();
    let mut rest = path;
    if let [Seg::Key(first), Seg::Index(i), tail @ ..] = path {
        if first == "services" {
            if let Some(name) = services.get(*i) {
                out.push_str(name);
                rest = tail;
            }
        }
    }
    for seg in rest {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The segments of a path serde_ignored reports.
fn segments_ignored(path: &serde_ignored::Path<'_>) -> Vec<Seg> {
    use serde_ignored::Path as P;
    let mut out = match path {
        P::Root => return Vec::new(),
        P::Seq { parent, .. }
        | P::Map { parent, .. }
        | P::Some { parent }
        | P::NewtypeStruct { parent }
        | P::NewtypeVariant { parent } => segments_ignored(parent),
    };
    match path {
        P::Seq { index, .. } => out.push(Seg::Index(*index)),
        P::Map { key, .. } => out.push(Seg::Key(key.clone())),
        _ => {}
    }
    out
}

/// The byte offset of the key at `path` in the parsed document.
fn locate(root: &DeTable<'_>, path: &[Seg]) -> Option<usize> {
    let (Seg::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let (key, value) = root.iter().find(|(k, _)| k.get_ref() == first)?;
    if rest.is_empty() {
        return Some(key.span().start);
    }
    locate_in(value.get_ref(), rest)
}

fn locate_in(value: &DeValue<'_>, path: &[Seg]) -> Option<usize> {
    match (value, path.first()?) {
        (DeValue::Table(table), Seg::Key(_)) => locate(table, path),
        (DeValue::Array(array), Seg::Index(i)) => {
            let element = array.get(*i)?;
            if path.len() == 1 {
                return Some(element.span().start);
            }
            locate_in(element.get_ref(), &path[1..])
        }
        _ => None,
    }
}

/// The keys a table at `path` may have.
fn known_keys(path: &[Seg]) -> &'static [&'static str] {
    use Seg::{Index as I, Key as K};
    let names: Vec<&str> = path
        .iter()
        .map(|s| match s {
            K(k) => k.as_str(),
            I(_) => "[]",
        })
        .collect();
    match names.as_slice() {
        [] => fields_of::<raw::File>(),
        ["node"] => fields_of::<raw::Node>(),
        ["services", "[]"] => fields_of::<raw::Service>(),
        ["services", "[]", "probes", "[]"] => fields_of::<raw::Probe>(),
        ["services", "[]", "health"] => fields_of::<raw::Health>(),
        ["policy"] => fields_of::<raw::Policy>(),
        ["upstream", "[]"] => fields_of::<raw::Upstream>(),
        ["bfd"] | ["upstream", "[]", "bfd"] | ["overlay", "bfd"] => fields_of::<raw::Bfd>(),
        ["bfd", "auth"] | ["upstream", "[]", "bfd", "auth"] | ["overlay", "bfd", "auth"] => {
            fields_of::<raw::BfdAuth>()
        }
        ["overlay"] => fields_of::<raw::Overlay>(),
        ["overlay", "peers", "[]"] => fields_of::<raw::Peer>(),
        ["overlay", "discovery"] => fields_of::<raw::Discovery>(),
        ["overlay", "strangers"] => fields_of::<raw::Strangers>(),
        ["netlink"] => fields_of::<raw::Netlink>(),
        ["dns"] => fields_of::<raw::Dns>(),
        ["dns", "rate_limit"] => fields_of::<raw::DnsRateLimit>(),
        ["dns", "zones", "[]"] => fields_of::<raw::DnsZone>(),
        ["daemon"] => fields_of::<raw::Daemon>(),
        ["doors"] => fields_of::<raw::Doors>(),
        _ => &[],
    }
}

/// The field names serde knows for `T` (a struct deriving `Deserialize`).
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

/// A deserializer that only records the field names of the struct asked
/// for, then fails.
struct Fields<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for Fields<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only field names are read"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("only field names are read"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The known key closest to `name`, if one is close enough to be a typo.
fn closest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    known
        .iter()
        .map(|k| (distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance (Levenshtein) between two short strings.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// `message` prefixed with the line and column of `span`.
fn at(text: &str, span: Option<Range<usize>>, message: &str) -> String {
    let message = message.trim().replace('\n', "; ");
    match span {
        Some(span) => {
            let (line, column) = line_col(text, span.start);
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// The line and column (both from 1) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A hint for a value of the wrong TOML type.
fn type_hint(message: &str) -> &'static str {
    if message.contains("expected true, false or a table") {
        "write true, false or a table of settings, e.g. bfd = { multiplier = 5 }"
    } else if message.contains("expected a sequence") {
        "this key takes a list: write [\"a\", \"b\"]"
    } else if message.contains("expected i64") {
        "this key takes a number: write it without quotes"
    } else if message.contains("expected a boolean") {
        "this key takes true or false, without quotes"
    } else if message.contains("expected a string") {
        "this key takes a string: put the value in quotes"
    } else {
        "give the value the type the example config shows (docs/edge.example.toml)"
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
