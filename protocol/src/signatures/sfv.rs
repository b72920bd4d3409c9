//! The subset of RFC 8941 Structured Field Values that RFC 9421 needs: dictionaries whose
//! members are items or inner lists, with parameters, and their canonical serialisation.
//!
//! Parsing follows RFC 8941 §4.2 strictly, because the signature base is rebuilt from the
//! parsed value: anything we accepted loosely we could not serialise back the way the signer did.

use std::fmt::Write as _;

use base64::Engine as _;

use super::BASE64;

/// A bare item (RFC 8941 §3.3). Decimals are kept as written, since we never compute with them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum BareItem {
    Integer(i64),
    Decimal(String),
    String(String),
    Token(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

/// Parameters in the order they were written; order matters for serialisation.
pub(crate) type Params = Vec<(String, BareItem)>;

/// An item with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Item {
    pub(crate) bare: BareItem,
    pub(crate) params: Params,
}

/// A dictionary member's value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Member {
    Item(Item),
    InnerList(Vec<Item>, Params),
}

/// Looks a parameter up by name.
pub(crate) fn param<'p>(params: &'p Params, name: &str) -> Option<&'p BareItem> {
    params.iter().find(|(key, _)| key == name).map(|(_, value)| value)
}

/// Parses a dictionary field value. Later duplicates replace earlier ones, as RFC 8941 says.
pub(crate) fn parse_dictionary(input: &str) -> Result<Vec<(String, Member)>, String> {
    let mut parser = Parser { input: input.as_bytes(), pos: 0 };
    let mut members: Vec<(String, Member)> = Vec::new();
    parser.skip_sp();
    if parser.at_end() {
        return Ok(members);
    }
    loop {
        let key = parser.key()?;
        let member = if parser.eat(b'=') {
            parser.item_or_inner_list()?
        } else {
            Member::Item(Item { bare: BareItem::Bool(true), params: parser.params()? })
        };
        match members.iter_mut().find(|(existing, _)| *existing == key) {
            Some(slot) => slot.1 = member,
            None => members.push((key, member)),
        }
        parser.skip_ows();
        if parser.at_end() {
            return Ok(members);
        }
        if !parser.eat(b',') {
            return Err(parser.error("expected ','"));
        }
        parser.skip_ows();
        if parser.at_end() {
            return Err(parser.error("trailing ','"));
        }
    }
}

/// Serialises an item with its parameters (RFC 8941 §4.1.3).
pub(crate) fn serialize_item(item: &Item, out: &mut String) {
    serialize_bare(&item.bare, out);
    serialize_params(&item.params, out);
}

/// Serialises an inner list with its parameters (RFC 8941 §4.1.1.1).
pub(crate) fn serialize_inner_list(items: &[Item], params: &Params, out: &mut String) {
    out.push('(');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        serialize_item(item, out);
    }
    out.push(')');
    serialize_params(params, out);
}

fn serialize_params(params: &Params, out: &mut String) {
    for (key, value) in params {
        out.push(';');
        out.push_str(key);
        if *value != BareItem::Bool(true) {
            out.push('=');
            serialize_bare(value, out);
        }
    }
}

fn serialize_bare(bare: &BareItem, out: &mut String) {
    match bare {
        BareItem::Integer(n) => {
            let _ = write!(out, "{n}");
        }
        BareItem::Decimal(text) | BareItem::Token(text) => out.push_str(text),
        BareItem::String(text) => {
            out.push('"');
            for c in text.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        BareItem::Bytes(bytes) => {
            out.push(':');
            out.push_str(&BASE64.encode(bytes));
            out.push(':');
        }
        BareItem::Bool(value) => out.push_str(if *value { "?1" } else { "?0" }),
    }
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &str {
        let start = self.pos;
        while self.peek().is_some_and(&accept) {
            self.pos += 1;
        }
        // Only ASCII bytes are ever accepted, so the slice is valid UTF-8.
        std::str::from_utf8(&self.input[start..self.pos]).unwrap_or_default()
    }

    fn key(&mut self) -> Result<String, String> {
        if !self.peek().is_some_and(|b| b.is_ascii_lowercase() || b == b'*') {
            return Err(self.error("expected a key"));
        }
        let key = self.take_while(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b'*')
        });
        Ok(key.to_owned())
    }

    fn item_or_inner_list(&mut self) -> Result<Member, String> {
        if self.eat(b'(') {
            let mut items = Vec::new();
            loop {
                self.skip_sp();
                if self.eat(b')') {
                    return Ok(Member::InnerList(items, self.params()?));
                }
                items.push(self.item()?);
                if !matches!(self.peek(), Some(b' ' | b')')) {
                    return Err(self.error("expected ' ' or ')' in inner list"));
                }
            }
        }
        Ok(Member::Item(self.item()?))
    }

    fn item(&mut self) -> Result<Item, String> {
        let bare = self.bare_item()?;
        Ok(Item { bare, params: self.params()? })
    }

    fn params(&mut self) -> Result<Params, String> {
        let mut params: Params = Vec::new();
        while self.eat(b';') {
            self.skip_sp();
            let key = self.key()?;
            let value = if self.eat(b'=') { self.bare_item()? } else { BareItem::Bool(true) };
            match params.iter_mut().find(|(existing, _)| *existing == key) {
                Some(slot) => slot.1 = value,
                None => params.push((key, value)),
            }
        }
        Ok(params)
    }

    fn bare_item(&mut self) -> Result<BareItem, String> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'"') => self.string(),
            Some(b':') => self.bytes(),
            Some(b'?') => {
                self.pos += 1;
                match self.peek() {
                    Some(b'1') => {
                        self.pos += 1;
                        Ok(BareItem::Bool(true))
                    }
                    Some(b'0') => {
                        self.pos += 1;
                        Ok(BareItem::Bool(false))
                    }
                    _ => Err(self.error("invalid boolean")),
                }
            }
            Some(b) if b.is_ascii_alphabetic() || b == b'*' => {
                let token = self.take_while(|b| is_tchar(b) || b == b':' || b == b'/');
                Ok(BareItem::Token(token.to_owned()))
            }
            _ => Err(self.error("expected an item")),
        }
    }

    fn number(&mut self) -> Result<BareItem, String> {
        let start = self.pos;
        self.eat(b'-');
        let digits = self.take_while(|b| b.is_ascii_digit()).len();
        if digits == 0 {
            return Err(self.error("expected a digit"));
        }
        if self.eat(b'.') {
            let fraction = self.take_while(|b| b.is_ascii_digit()).len();
            if digits > 12 || fraction == 0 || fraction > 3 {
                return Err(self.error("invalid decimal"));
            }
            let text = std::str::from_utf8(&self.input[start..self.pos]).unwrap_or_default();
            return Ok(BareItem::Decimal(text.to_owned()));
        }
        if digits > 15 {
            return Err(self.error("integer too long"));
        }
        let text = std::str::from_utf8(&self.input[start..self.pos]).unwrap_or_default();
        text.parse().map(BareItem::Integer).map_err(|_| self.error("invalid integer"))
    }

    fn string(&mut self) -> Result<BareItem, String> {
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(BareItem::String(text));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => text.push(char::from(c)),
                        _ => return Err(self.error("invalid escape in string")),
                    }
                }
                Some(c @ 0x20..=0x7e) => text.push(char::from(c)),
                Some(_) => return Err(self.error("invalid character in string")),
            }
            self.pos += 1;
        }
    }

    fn bytes(&mut self) -> Result<BareItem, String> {
        self.pos += 1;
        let encoded =
            self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
        let decoded = BASE64.decode(encoded);
        if !self.eat(b':') {
            return Err(self.error("unterminated byte sequence"));
        }
        decoded.map(BareItem::Bytes).map_err(|err| self.error(&format!("invalid base64 ({err})")))
    }
}

/// `tchar` from RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}
