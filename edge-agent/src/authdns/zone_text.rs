//! Zone-file text (RFC 1035 section 5) into records: comments,
//! parentheses across lines, quoted strings, `@`, a blank owner for the
//! previous one, TTL and class in either order, `$ORIGIN` and `$TTL`.
//! Record data is parsed by hickory-proto's per-type parsers.
//!
//! Our own line layer rather than hickory's whole-file parser, whose
//! TTL handling differs from what operators expect: it gives the SOA its
//! EXPIRE as TTL and lets one record's TTL carry over to the next. Here a
//! record's TTL is the one written on it, else `$TTL`, else the default
//! from the config (RFC 2308). `$INCLUDE` is refused: a zone is one file
//! or the config's lines.

use std::str::FromStr;

use hickory_proto::{
    rr::{DNSClass, Name, RData, Record, RecordType},
    serialize::{
        binary::{BinDecodable, BinEncodable},
        txt::{Parser, RDataParser},
    },
};

use super::zone::{SERVED_TYPES, SERVED_TYPES_TEXT};

/// One logical line: its first physical line, whether it started with
/// blank space (the previous owner), and its tokens.
struct Line {
    number: usize,
    blank_owner: bool,
    tokens: Vec<String>,
}

/// Splits `text` into logical lines of tokens.
fn lines(text: &str) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    let mut number = 1;
    let mut line = Line {
        number,
        blank_owner: false,
        tokens: Vec::new(),
    };
    let mut token = String::new();
    let mut in_token = false;
    let mut depth = 0usize;
    let mut at_start = true;
    let mut chars = text.chars().peekable();
    let finish = |token: &mut String, in_token: &mut bool, line: &mut Line| {
        if *in_token {
            line.tokens.push(std::mem::take(token));
            *in_token = false;
        }
    };
    while let Some(c) = chars.next() {
        if at_start {
            at_start = false;
            if line.tokens.is_empty() && !in_token {
                line.blank_owner = c == ' ' || c == '\t';
            }
        }
        match c {
            '"' => {
                // A quoted string is one token, escapes \" and \\ kept as
                // the character.
                in_token = true;
                loop {
                    match chars.next() {
                        None => {
                            return Err(format!("line {number}: a quoted string is not closed"));
                        }
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\')) => token.push(e),
                            Some(e) => {
                                token.push('\\');
                                token.push(e);
                            }
                            None => {
                                return Err(format!(
                                    "line {number}: a quoted string is not closed"
                                ));
                            }
                        },
                        Some('\n') => {
                            return Err(format!("line {number}: a quoted string is not closed"));
                        }
                        Some(other) => token.push(other),
                    }
                }
            }
            ';' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '(' => {
                finish(&mut token, &mut in_token, &mut line);
                depth += 1;
            }
            ')' => {
                finish(&mut token, &mut in_token, &mut line);
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("line {number}: `)` without `(`"))?;
            }
            '\n' => {
                finish(&mut token, &mut in_token, &mut line);
                number += 1;
                if depth == 0 {
                    let next = Line {
                        number,
                        blank_owner: false,
                        tokens: Vec::new(),
                    };
                    let done = std::mem::replace(&mut line, next);
                    if !done.tokens.is_empty() {
                        lines.push(done);
                    }
                    at_start = true;
                }
            }
            ' ' | '\t' | '\r' => finish(&mut token, &mut in_token, &mut line),
            '\\' => {
                // Escapes in names stay for Name to read.
                in_token = true;
                token.push('\\');
                if let Some(e) = chars.next() {
                    token.push(e);
                }
            }
            other => {
                in_token = true;
                token.push(other);
            }
        }
    }
    if depth > 0 {
        return Err(format!("line {}: `(` is not closed", line.number));
    }
    finish(&mut token, &mut in_token, &mut line);
    if !line.tokens.is_empty() {
        lines.push(line);
    }
    Ok(lines)
}

/// A TTL: seconds, or with units (`1h30m`); `None` if the token is not
/// one (it may be a class or a type).
fn ttl(token: &str) -> Option<u32> {
    if !token.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Parser::parse_time(token).ok()
}

/// The records of `text` for the zone at `origin`.
pub(super) fn records(text: &str, origin: &Name, default_ttl: u32) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    let mut origin = origin.clone();
    let mut default_ttl = default_ttl;
    let mut previous: Option<Name> = None;
    for line in lines(text)? {
        let at = |message: String| format!("line {}: {message}", line.number);
        let mut tokens = line.tokens.iter().map(String::as_str);
        let owner = if line.blank_owner {
            previous
                .clone()
                .ok_or_else(|| at("no owner name, and no record before to take it from".into()))?
        } else {
            let first = tokens.next().unwrap_or_default();
            match first.to_ascii_uppercase().as_str() {
                "$ORIGIN" => {
                    let name = tokens
                        .next()
                        .ok_or_else(|| at("$ORIGIN needs a name".into()))?;
                    origin = Name::parse(name, Some(&origin))
                        .map_err(|e| at(format!("$ORIGIN {name}: {e}")))?;
                    continue;
                }
                "$TTL" => {
                    let value = tokens.next().unwrap_or_default();
                    default_ttl =
                        ttl(value).ok_or_else(|| at(format!("$TTL `{value}` is not a TTL")))?;
                    continue;
                }
                "$INCLUDE" => {
                    return Err(at(
                        "$INCLUDE is not supported: put the zone's records in one file".into(),
                    ));
                }
                "@" => origin.clone(),
                _ => Name::parse(first, Some(&origin))
                    .map_err(|e| at(format!("`{first}` is not a domain name: {e}")))?,
            }
        };
        previous = Some(owner.clone());
        let mut record_ttl = None;
        let mut class = DNSClass::IN;
        let rtype = loop {
            let token = tokens
                .next()
                .ok_or_else(|| at("the record has no type".into()))?;
            if record_ttl.is_none()
                && let Some(value) = ttl(token)
            {
                record_ttl = Some(value);
                continue;
            }
            let upper = token.to_ascii_uppercase();
            if let Ok(c) = DNSClass::from_str(&upper)
                && matches!(upper.as_str(), "IN" | "CH" | "HS" | "CS")
            {
                class = c;
                continue;
            }
            break RecordType::from_str(&upper)
                .map_err(|_| at(format!("`{token}` is not a record type")))?;
        };
        // Checked before its data is parsed: only the parsers of served
        // types ever see a zone's text.
        if !SERVED_TYPES.contains(&rtype) {
            return Err(at(format!(
                "type {rtype} is not served ({SERVED_TYPES_TEXT})"
            )));
        }
        let what = |e: String| at(format!("{rtype} record of {owner}: {e}"));
        let rdata = parse_rdata(rtype, &mut tokens, &origin).map_err(what)?;
        let rest: Vec<&str> = tokens.collect();
        if !rest.is_empty() {
            return Err(what(format!(
                "`{}` after the record's data: remove it, or quote it if it belongs to the data",
                rest.join(" ")
            )));
        }
        let mut record =
            Record::from_rdata(owner.clone(), record_ttl.unwrap_or(default_ttl), rdata);
        record.set_dns_class(class);
        on_the_wire(&record).map_err(what)?;
        records.push(record);
    }
    Ok(records)
}

/// The data of a record of `rtype` from its tokens, by hickory-proto's
/// parser for the type. A parser that panics (hickory-proto's SVCB one
/// does on some input) is caught here and is an error like any other.
fn parse_rdata<'i>(
    rtype: RecordType,
    tokens: &mut impl Iterator<Item = &'i str>,
    origin: &Name,
) -> Result<RData, String> {
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        RData::parse(rtype, tokens.by_ref(), Some(origin))
    }));
    match parsed {
        Ok(Ok(rdata)) => Ok(rdata),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the record's data cannot be parsed".into()),
    }
}

/// Whether `record` can be answered: it must encode, and read back from
/// the wire as itself. This refuses what the text parsers accept but the
/// wire cannot carry (a TXT string or CAA tag over 255 bytes, a CAA tag
/// that is not letters and digits, data over 65,535 bytes), which would
/// otherwise load and then break every answer that holds it.
fn on_the_wire(record: &Record) -> Result<(), String> {
    let checked = std::panic::catch_unwind(|| {
        let bytes = record
            .to_bytes()
            .map_err(|e| format!("cannot be put on the wire: {e}"))?;
        let back = Record::from_bytes(&bytes)
            .map_err(|e| format!("does not read back from the wire: {e}"))?;
        if back != *record || back.to_bytes().ok().as_ref() != Some(&bytes) {
            return Err(format!("reads back from the wire as `{back}`"));
        }
        Ok(())
    });
    checked.unwrap_or_else(|_| Err("cannot be put on the wire".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("cdn.test.").unwrap()
    }

    fn text(records: &[Record]) -> Vec<String> {
        records.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn ttls_come_from_the_record_then_dollar_ttl_then_the_default() {
        let zone = "\
@ 3600 IN SOA ns1 hostmaster ( 1 ; serial
    7200 3600 1209600 300 )
www A 203.0.113.10
$TTL 1h
    IN 60 AAAA 2001:db8:ac::10
txt TXT \"a \\\"quoted\\\" string\" ; comment
$ORIGIN sub.cdn.test.
x CNAME www.cdn.test.
";
        let records = records(zone, &origin(), 300).unwrap();
        assert_eq!(
            text(&records),
            [
                "cdn.test. 3600 IN SOA ns1.cdn.test. hostmaster.cdn.test. 1 7200 3600 1209600 300",
                "www.cdn.test. 300 IN A 203.0.113.10",
                "www.cdn.test. 60 IN AAAA 2001:db8:ac::10",
                "txt.cdn.test. 3600 IN TXT a \"quoted\" string",
                "x.sub.cdn.test. 3600 IN CNAME www.cdn.test.",
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("www A 203.0.113.300\n", "line 1: A record of www.cdn.test."),
            ("\n\nwww BOGUS x\n", "line 3: `BOGUS` is not a record type"),
            ("www 300\n", "line 1: the record has no type"),
            ("  A 192.0.2.1\n", "line 1: no owner name"),
            ("www TXT \"open\n", "line 1: a quoted string is not closed"),
            ("www ( A 192.0.2.1\n", "line 1: `(` is not closed"),
            ("www A 192.0.2.1 )\n", "line 1: `)` without `(`"),
            ("$TTL soon\n", "line 1: $TTL `soon` is not a TTL"),
            (
                "$INCLUDE /etc/passwd\n",
                "line 1: $INCLUDE is not supported",
            ),
        ];
        for (zone, want) in cases {
            let e = records(zone, &origin(), 300).unwrap_err();
            assert!(e.starts_with(want), "{zone:?}: {e}");
        }
    }

    // Findings of coverage-guided fuzzing (issue 18), each minimised.

    #[test]
    fn records_that_cannot_be_answered_are_refused() {
        let long = "x".repeat(256);
        let cases = [
            // hickory-proto's SVCB parser panics on this (`expect("infallible")`):
            // the type is refused before its data is parsed.
            (
                "h HTTPS 1 . alpn=\x11\n".into(),
                "line 1: type HTTPS is not served (A, AAAA",
            ),
            (
                "x A 192.0.2.1 junk\n".into(),
                "line 1: A record of x.cdn.test.: `junk` after",
            ),
            (
                "m MX 10 mail.cdn.test. 20\n".into(),
                "line 1: MX record of m.cdn.test.: `20` after",
            ),
            (
                format!("t TXT {long}\n"),
                "line 1: TXT record of t.cdn.test.: cannot be put",
            ),
            (
                format!("t TXT ok \"{long}\"\n"),
                "line 1: TXT record of t.cdn.test.: cannot",
            ),
            ("@ CAA 0 a.b c\n".into(), "line 1: CAA record of cdn.test.:"),
            (
                format!("@ CAA 0 {long} c\n"),
                "line 1: CAA record of cdn.test.:",
            ),
        ];
        for (zone, want) in cases {
            let e = records(&zone, &origin(), 300).unwrap_err();
            assert!(e.starts_with(want), "{zone:?}: {e}");
        }
    }

    #[test]
    fn a_parser_that_panics_is_an_error() {
        let mut tokens = ["1", ".", "alpn=\x11"].into_iter();
        let e = parse_rdata(RecordType::HTTPS, &mut tokens, &origin()).unwrap_err();
        assert_eq!(e, "the record's data cannot be parsed");
    }

    #[test]
    fn ordinary_records_of_every_served_type_load() {
        let zone = "\
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
@ MX 10 mail
@ CAA 0 issue \"ca.example.net\"
@ CAA 128 iodef \"mailto:security@cdn.test\"
@ CAA 0 issuewild \";\"
@ TXT \"v=spf1 -all\" \"second string\"
_https._tcp SRV 10 5 443 www
ns1 A 192.0.2.53
www AAAA 2001:db8:ac::10
alias CNAME www
";
        let loaded = records(zone, &origin(), 300).unwrap();
        assert_eq!(loaded.len(), 11);
    }
}
