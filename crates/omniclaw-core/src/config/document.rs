//! JSON5 text to a [`Document`]: the value as `serde_json::Value` plus the
//! line and column of every key and value, and the [`Diagnostic`] type all of
//! `config` reports problems with.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use jsonc_parser::ast;
use jsonc_parser::errors::ParseErrorKind;
use jsonc_parser::{CollectOptions, ParseOptions};
use serde_json::{Map, Number, Value};

use super::path::{self, Segment};

/// One problem in a config: where it is and what to do about it.
///
/// `path` is dotted (`gateway.auth.mode`), with array items as
/// `channels.telegram.allowFrom[2]`; it is empty for syntax errors and for
/// problems with the document as a whole, and then `Display` leaves it out.
/// `line` and `col` are 1-based; columns count characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: String,
    pub message: String,
    pub line: usize,
    pub col: usize,
}

impl Diagnostic {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>, at: Pos) -> Self {
        Diagnostic {
            path: path.into(),
            message: message.into(),
            line: at.line,
            col: at.col,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{} ({}:{})", self.message, self.line, self.col)
        } else {
            write!(
                f,
                "{}: {} ({}:{})",
                self.path, self.message, self.line, self.col
            )
        }
    }
}

/// Every problem found in a config, in document order. Never empty when
/// returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<Diagnostic>);

impl ConfigErrors {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.0
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A 1-based line and column in the config text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub(crate) const START: Pos = Pos { line: 1, col: 1 };
}

/// Where one path sits: its key (absent for array items and the root) and its
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    key: Option<Pos>,
    value: Pos,
}

/// A syntactically valid config: its value and where each part of it sits.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    value: Value,
    spans: HashMap<String, Span>,
}

impl Document {
    /// The whole config as plain JSON (secrets included: pass it through
    /// [`super::redacted`] before showing it).
    pub fn value(&self) -> &Value {
        &self.value
    }

    pub fn into_value(self) -> Value {
        self.value
    }

    /// Line and column (1-based) of `path` in the text: its key for an object
    /// member, its value for an array item or the root (`""`). `None` when
    /// the path is malformed or not in the document.
    pub fn position(&self, path: &str) -> Option<(usize, usize)> {
        let canonical = if path.is_empty() {
            String::new()
        } else {
            path::render(&path::parse_path(path).ok()?)
        };
        let span = self.spans.get(&canonical)?;
        let at = span.key.unwrap_or(span.value);
        Some((at.line, at.col))
    }

    /// Position of the key of a canonical path, falling back to its value.
    pub(crate) fn key_pos(&self, canonical: &str) -> Pos {
        self.spans
            .get(canonical)
            .map(|span| span.key.unwrap_or(span.value))
            .unwrap_or(Pos::START)
    }

    /// Position of the value of a canonical path.
    pub(crate) fn value_pos(&self, canonical: &str) -> Pos {
        self.spans
            .get(canonical)
            .map(|span| span.value)
            .unwrap_or(Pos::START)
    }
}

/// Parses JSON5 text into a [`Document`], checking syntax only (plus
/// duplicate keys and numbers too large to represent). The root must be an
/// object; the file must not be empty.
pub fn parse(text: &str) -> Result<Document, ConfigErrors> {
    let body = strip_bom(text);
    let root = parse_value_text(body)?;
    let Some(root) = root else {
        return Err(ConfigErrors(vec![Diagnostic::new(
            "",
            "the config is empty: write `{}` for a config that keeps every default",
            Pos::START,
        )]));
    };
    let lines = LineIndex::new(body);
    let mut builder = Builder {
        text: body,
        lines: &lines,
        spans: HashMap::new(),
        errors: Vec::new(),
    };
    let value = builder.convert(root, Vec::new(), None);
    if !builder.errors.is_empty() {
        builder.errors.sort_by_key(|d| (d.line, d.col));
        return Err(ConfigErrors(builder.errors));
    }
    Ok(Document {
        value,
        spans: builder.spans,
    })
}

/// Parses one JSON5 value of any type (for `set`); `None` for blank input.
pub(crate) fn parse_value(text: &str) -> Result<Option<Value>, ConfigErrors> {
    let body = strip_bom(text);
    let Some(root) = parse_value_text(body)? else {
        return Ok(None);
    };
    let lines = LineIndex::new(body);
    let mut builder = Builder {
        text: body,
        lines: &lines,
        spans: HashMap::new(),
        errors: Vec::new(),
    };
    let value = builder.convert(root, Vec::new(), None);
    if builder.errors.is_empty() {
        Ok(Some(value))
    } else {
        Err(ConfigErrors(builder.errors))
    }
}

fn parse_value_text(body: &str) -> Result<Option<ast::Value<'_>>, ConfigErrors> {
    match jsonc_parser::parse_to_ast(body, &CollectOptions::default(), &parse_options()) {
        Ok(result) => Ok(result.value),
        Err(err) => {
            let range = err.range();
            let token = body.get(range.start..range.end).unwrap_or("");
            let message = format!("syntax error: {}", syntax_message(err.kind(), token));
            Err(ConfigErrors(vec![Diagnostic::new(
                "",
                message,
                Pos {
                    line: err.line_display(),
                    col: err.column_display(),
                },
            )]))
        }
    }
}

/// The JSON5 dialect every part of `config` parses with (see the module docs).
pub(crate) fn parse_options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_loose_object_property_names: true,
        allow_trailing_commas: true,
        allow_missing_commas: false,
        allow_single_quoted_strings: true,
        allow_hexadecimal_numbers: true,
        allow_unary_plus_numbers: true,
        allow_bare_decimal_point_numbers: true,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: true,
    }
}

/// Editors on Windows may save a byte-order mark; it carries no meaning.
pub(crate) fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

fn syntax_message(kind: &ParseErrorKind, token: &str) -> String {
    let shown: String = token.chars().take(24).collect();
    match kind {
        ParseErrorKind::UnterminatedObject => {
            "unclosed object: this `{` has no matching `}`".to_string()
        }
        ParseErrorKind::UnterminatedArray => {
            "unclosed array: this `[` has no matching `]`".to_string()
        }
        ParseErrorKind::UnexpectedComma | ParseErrorKind::UnexpectedTokenInObject
            if token == "," =>
        {
            "unexpected `,`: remove the extra comma".to_string()
        }
        ParseErrorKind::UnexpectedCloseBrace => {
            "unexpected `}`: something is missing before it (a `]`, a value), or it is one `}` too many"
                .to_string()
        }
        ParseErrorKind::UnexpectedCloseBracket => {
            "unexpected `]`: something is missing before it (a `}`, a value), or it is one `]` too many"
                .to_string()
        }
        ParseErrorKind::UnexpectedTokenInObject if token == "]" => {
            "unexpected `]` inside an object: close the object with `}` first".to_string()
        }
        ParseErrorKind::ExpectedComma => {
            "expected `,` between two entries: add the missing comma".to_string()
        }
        ParseErrorKind::UnexpectedWord if matches!(token, "Infinity" | "-Infinity" | "NaN") => {
            format!("`{shown}` is not supported in omniclaw.json: use a finite number")
        }
        ParseErrorKind::UnexpectedWord => format!(
            "unexpected word `{shown}`: quote strings, and write true, false or null in lower case"
        ),
        ParseErrorKind::MultipleRootJsonValues => {
            "text after the end of the config: the whole config is one `{ ... }` object".to_string()
        }
        ParseErrorKind::UnexpectedToken | ParseErrorKind::UnexpectedTokenInObject
            if !shown.is_empty() =>
        {
            format!("unexpected `{shown}`")
        }
        other => {
            let text = other.to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => text,
            }
        }
    }
}

/// Byte offsets to 1-based line and column, counting `\n`, `\r\n` and a lone
/// `\r` as line breaks (as the parser does).
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        for (i, b) in bytes.iter().enumerate() {
            let breaks = *b == b'\n' || (*b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
            if breaks {
                starts.push(i + 1);
            }
        }
        LineIndex { starts }
    }

    fn pos(&self, text: &str, offset: usize) -> Pos {
        // `starts[0]` is 0, so at least one start is <= offset and `line` >= 1.
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let col = text.get(start..offset).map_or(0, |s| s.chars().count()) + 1;
        Pos { line, col }
    }
}

struct Builder<'t> {
    text: &'t str,
    lines: &'t LineIndex,
    spans: HashMap<String, Span>,
    errors: Vec<Diagnostic>,
}

impl Builder<'_> {
    fn convert(&mut self, node: ast::Value<'_>, at: Vec<Segment>, key: Option<Pos>) -> Value {
        let rendered = path::render(&at);
        let value_pos = self.lines.pos(self.text, value_start(&node));
        self.spans.insert(
            rendered.clone(),
            Span {
                key,
                value: value_pos,
            },
        );
        match node {
            ast::Value::NullKeyword(_) => Value::Null,
            ast::Value::BooleanLit(b) => Value::Bool(b.value),
            ast::Value::StringLit(s) => Value::String(s.value.into_owned()),
            ast::Value::NumberLit(n) => match number(n.value) {
                Some(number) => Value::Number(number),
                None => {
                    self.errors.push(Diagnostic::new(
                        rendered,
                        format!(
                            "the number {} is out of range: use an integer or a finite decimal",
                            n.value
                        ),
                        value_pos,
                    ));
                    Value::Null
                }
            },
            ast::Value::Array(array) => {
                let mut items = Vec::with_capacity(array.elements.len());
                for (i, element) in array.elements.into_iter().enumerate() {
                    let mut child = at.clone();
                    child.push(Segment::Index(i));
                    items.push(self.convert(element, child, None));
                }
                Value::Array(items)
            }
            ast::Value::Object(object) => {
                let mut map = Map::new();
                let mut seen: HashMap<String, Pos> = HashMap::new();
                for prop in object.properties {
                    let key_pos = self.lines.pos(self.text, prop_name_start(&prop.name));
                    let name = prop.name.into_string();
                    let mut child = at.clone();
                    child.push(Segment::Key(name.clone()));
                    if let Some(first) = seen.get(&name) {
                        self.errors.push(Diagnostic::new(
                            path::render(&child),
                            format!(
                                "duplicate key {name:?}: it is already set at {}:{}; keep only one",
                                first.line, first.col
                            ),
                            key_pos,
                        ));
                        continue;
                    }
                    seen.insert(name.clone(), key_pos);
                    let value = self.convert(prop.value, child, Some(key_pos));
                    map.insert(name, value);
                }
                Value::Object(map)
            }
        }
    }
}

fn value_start(node: &ast::Value<'_>) -> usize {
    match node {
        ast::Value::StringLit(n) => n.range.start,
        ast::Value::NumberLit(n) => n.range.start,
        ast::Value::BooleanLit(n) => n.range.start,
        ast::Value::Object(n) => n.range.start,
        ast::Value::Array(n) => n.range.start,
        ast::Value::NullKeyword(n) => n.range.start,
    }
}

fn prop_name_start(name: &ast::ObjectPropName<'_>) -> usize {
    match name {
        ast::ObjectPropName::String(lit) => lit.range.start,
        ast::ObjectPropName::Word(lit) => lit.range.start,
    }
}

/// A JSON5 number literal as a JSON number: hex, a leading `+` and bare
/// decimal points included. `None` when it does not fit (`1e400`, a hex
/// literal past 64 bits).
fn number(raw: &str) -> Option<Number> {
    let (negative, unsigned) = match raw.as_bytes().first() {
        Some(b'-') => (true, &raw[1..]),
        Some(b'+') => (false, &raw[1..]),
        _ => (false, raw),
    };
    if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        let magnitude = u64::from_str_radix(hex, 16).ok()?;
        return if negative {
            let magnitude = i64::try_from(magnitude).ok()?;
            Some(Number::from(-magnitude))
        } else {
            Some(Number::from(magnitude))
        };
    }
    let mut filled = String::with_capacity(unsigned.len() + 3);
    if negative {
        filled.push('-');
    }
    match unsigned.find('.') {
        Some(dot) => {
            let (before, after) = (&unsigned[..dot], &unsigned[dot + 1..]);
            filled.push_str(if before.is_empty() { "0" } else { before });
            filled.push('.');
            if !after.starts_with(|c: char| c.is_ascii_digit()) {
                filled.push('0');
            }
            filled.push_str(after);
        }
        None => filled.push_str(unsigned),
    }
    let number = Number::from_str(&filled).ok()?;
    // serde_json turns some overflowing literals into infinities on the way
    // through f64; those are not representable config values either.
    match number.as_f64() {
        Some(f) if !f.is_finite() => None,
        _ => Some(number),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(text: &str, expected: Result<Value, &str>) {
        let got = parse(text)
            .map(Document::into_value)
            .map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string), "input: {text:?}");
    }

    #[test]
    fn json5_features_parse() {
        let table: &[(&str, Value)] = &[
            ("{}", json!({})),
            ("// header\n{ a: 1, } // tail", json!({"a": 1})),
            ("/* block */ { 'a': 'single' }", json!({"a": "single"})),
            (
                "{ a: 0x1F, b: -0x10, c: +1 }",
                json!({"a": 31, "b": -16, "c": 1}),
            ),
            (
                "{ a: .5, b: 5., c: -.25 }",
                json!({"a": 0.5, "b": 5.0, "c": -0.25}),
            ),
            (
                "{ a: 'x\\x41', b: \"line\\\ncont\" }",
                json!({"a": "xA", "b": "linecont"}),
            ),
            (
                "{ $schema: 'x', _k: [1, 2,], }",
                json!({"$schema": "x", "_k": [1, 2]}),
            ),
            (
                "\u{feff}{ a: null, b: true }",
                json!({"a": null, "b": true}),
            ),
            ("{ \"a\": 99999999999999999999 }", json!({"a": 1e20})),
        ];
        for (text, expected) in table {
            check(text, Ok(expected.clone()));
        }
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let table: &[(&str, &str)] = &[
            (
                "{\n  gateway: {\n    port: 1,\n",
                "syntax error: unclosed object: this `{` has no matching `}` (2:12)",
            ),
            (
                "{\n  a: 1,,\n  b: 2\n}",
                "syntax error: unexpected `,`: remove the extra comma (2:8)",
            ),
            (
                "{\n  a: [1, 2,, 3]\n}",
                "syntax error: unexpected `,`: remove the extra comma (2:12)",
            ),
            ("{\n  a: @\n}", "syntax error: unexpected `@` (2:6)"),
            (
                "{\n  a: 1\n  b: 2\n}",
                "syntax error: expected `,` between two entries: add the missing comma (2:7)",
            ),
            (
                "{ a: tru }",
                "syntax error: unexpected word `tru`: quote strings, and write true, false or null in lower case (1:6)",
            ),
            (
                "{ a: Infinity }",
                "syntax error: `Infinity` is not supported in omniclaw.json: use a finite number (1:6)",
            ),
            (
                "{} {}",
                "syntax error: text after the end of the config: the whole config is one `{ ... }` object (1:4)",
            ),
            ("{ a: 'open }", "syntax error: unterminated string literal (1:6)"),
            (
                "{ a: [1, 2 }",
                "syntax error: unexpected `}`: something is missing before it (a `]`, a value), or it is one `}` too many (1:12)",
            ),
            (
                "{ a: { b: 1 ] }",
                "syntax error: unexpected `]` inside an object: close the object with `}` first (1:13)",
            ),
            (
                "{ a: [1, 2",
                "syntax error: unclosed array: this `[` has no matching `]` (1:6)",
            ),
            (
                "",
                "the config is empty: write `{}` for a config that keeps every default (1:1)",
            ),
            (
                "// nothing\n",
                "the config is empty: write `{}` for a config that keeps every default (1:1)",
            ),
        ];
        for (text, expected) in table {
            check(text, Err(expected));
        }
    }

    #[test]
    fn duplicate_keys_are_errors_at_every_depth() {
        check(
            "{\n  gateway: { port: 1, port: 2 },\n  'gateway': {},\n}",
            Err("gateway.port: duplicate key \"port\": it is already set at 2:14; keep only one (2:23)\n\
                 gateway: duplicate key \"gateway\": it is already set at 2:3; keep only one (3:3)"),
        );
    }

    #[test]
    fn out_of_range_numbers_are_errors() {
        check(
            "{ a: 1e400 }",
            Err("a: the number 1e400 is out of range: use an integer or a finite decimal (1:6)"),
        );
        check(
            "{\n  a: 0x1FFFFFFFFFFFFFFFF }",
            Err("a: the number 0x1FFFFFFFFFFFFFFFF is out of range: use an integer or a finite decimal (2:6)"),
        );
    }

    #[test]
    fn positions_of_keys_values_and_items() {
        let text = "{\n  gateway: {\n    port: 19001, // comment\n  },\n  'odd.key': 1,\n  list: [\n    7,\n    8,\n  ],\n}\n";
        let doc = parse(text).expect("parses");
        let table: &[(&str, Option<(usize, usize)>)] = &[
            ("", Some((1, 1))),
            ("gateway", Some((2, 3))),
            ("gateway.port", Some((3, 5))),
            ("[\"odd.key\"]", Some((5, 3))),
            ("list[0]", Some((7, 5))),
            ("list[1]", Some((8, 5))),
            ("list[2]", None),
            ("missing", None),
            ("bad..path", None),
        ];
        for (path, expected) in table {
            assert_eq!(doc.position(path), *expected, "path: {path}");
        }
    }

    #[test]
    fn columns_count_characters_and_crlf_is_one_break() {
        let doc = parse("{\r\n  \"é\": 1,\r\n  b: 2\r\n}").expect("parses");
        assert_eq!(doc.position("b"), Some((3, 3)));
        let doc = parse("{ \"éé\": 1, b: 2 }").expect("parses");
        assert_eq!(doc.position("b"), Some((1, 12)));
    }

    #[test]
    fn diagnostic_display_omits_an_empty_path() {
        let with = Diagnostic::new("gateway.port", "bad", Pos { line: 2, col: 3 });
        let without = Diagnostic::new("", "bad", Pos { line: 2, col: 3 });
        assert_eq!(with.to_string(), "gateway.port: bad (2:3)");
        assert_eq!(without.to_string(), "bad (2:3)");
        assert_eq!(
            ConfigErrors(vec![with, without]).to_string(),
            "gateway.port: bad (2:3)\nbad (2:3)"
        );
    }

    #[test]
    fn parse_value_accepts_any_json5_value() {
        let table: &[(&str, Option<Value>)] = &[
            ("19001", Some(json!(19001))),
            ("'loopback'", Some(json!("loopback"))),
            (
                "{ source: 'keychain' }",
                Some(json!({"source": "keychain"})),
            ),
            ("[1, 2,]", Some(json!([1, 2]))),
            ("null", Some(Value::Null)),
            ("  ", None),
        ];
        for (text, expected) in table {
            assert_eq!(parse_value(text).ok(), Some(expected.clone()), "{text}");
        }
        assert!(parse_value("loopback").is_err());
    }
}
