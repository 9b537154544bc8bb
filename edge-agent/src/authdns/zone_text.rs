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
    serialize::txt::{Parser, RDataParser},
};

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
        let rdata = RData::parse(rtype, tokens, Some(&origin))
            .map_err(|e| at(format!("{rtype} record of {owner}: {e}")))?;
        let mut record = Record::from_rdata(owner, record_ttl.unwrap_or(default_ttl), rdata);
        record.set_dns_class(class);
        records.push(record);
    }
    Ok(records)
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
}
