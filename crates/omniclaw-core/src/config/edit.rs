//! Edits of the config text that keep the user's comments and formatting
//! (through jsonc-parser's concrete syntax tree), and that validate the whole
//! result before returning it: callers never get text they must not write.
//! Also the text `setup` writes for a new profile and the hash used for
//! `baseHash` checks.

use jsonc_parser::cst::{
    CstArray, CstContainerNode, CstInputValue, CstLeafNode, CstNode, CstObject, CstRootNode,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::document::{self, ConfigErrors, Diagnostic, Pos};
use super::path::{self, render, PathError, Segment};

/// Why an edit was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error("the config does not parse, so it cannot be edited; fix it by hand first:\n{0}")]
    Unparsable(ConfigErrors),
    #[error("the new value {value:?} is not valid JSON5 (quote strings: '\"text\"'):\n{errors}")]
    BadValue { value: String, errors: ConfigErrors },
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("cannot edit {path}: the config has {found} at {parent}, not {wanted}; set or unset {parent} itself first")]
    WrongType {
        path: String,
        parent: String,
        found: &'static str,
        wanted: &'static str,
    },
    #[error("cannot set {path}: {array} has {len} items; use index {len} to append one")]
    IndexOutOfRange {
        path: String,
        array: String,
        len: usize,
    },
    #[error("refusing the edit: the config would be invalid:\n{0}")]
    Invalid(ConfigErrors),
}

/// Sets `path` to the JSON5 value `value_json5` in the config `text`,
/// creating missing parent objects and replacing an existing value in place.
/// Comments and unrelated formatting are kept byte for byte. The result is
/// validated as a whole; an invalid result is refused with its diagnostics.
///
/// The config must exist and parse: for a new one start from `"{}"` or
/// [`initial`].
pub fn set(text: &str, path: &str, value_json5: &str) -> Result<String, EditError> {
    let segments = path::parse_path(path)?;
    path::schema_node(&segments)?;
    let value = match document::parse_value(value_json5) {
        Ok(Some(value)) => value,
        Ok(None) => {
            return Err(EditError::BadValue {
                value: value_json5.to_string(),
                errors: ConfigErrors(vec![Diagnostic::new(
                    "",
                    "the value is empty; to remove a key use unset",
                    Pos::START,
                )]),
            })
        }
        Err(errors) => {
            return Err(EditError::BadValue {
                value: value_json5.to_string(),
                errors,
            })
        }
    };
    let tree = Tree::parse(text)?;
    let root = tree.root_object()?;
    let (last, parents) = segments
        .split_last()
        .ok_or(EditError::Path(PathError::Empty))?;
    let parent = walk(Container::Object(root), &segments, parents.len(), true)?
        .ok_or(EditError::Path(PathError::Empty))?;
    let input = to_input(&value);
    match (parent, last) {
        (Container::Object(object), Segment::Key(key)) => match object.get(key) {
            Some(prop) => prop.set_value(input),
            None => {
                object.append(key, input);
            }
        },
        (Container::Array(array), Segment::Index(index)) => {
            let elements = array.elements();
            match elements.into_iter().nth(*index) {
                Some(element) => replace(element, input),
                None if *index == array.elements().len() => {
                    array.append(input);
                }
                None => {
                    return Err(EditError::IndexOutOfRange {
                        path: render(&segments),
                        array: render(parents),
                        len: array.elements().len(),
                    })
                }
            }
        }
        (container, _) => return Err(wrong_type(&segments, parents, &container)),
    }
    tree.finish()
}

/// Removes `path` from the config `text` (a no-op when it is not set),
/// keeping comments and formatting. A key the schema does not know can be
/// removed when it is present, so typos can be fixed this way. The result is
/// validated as a whole.
pub fn unset(text: &str, path: &str) -> Result<String, EditError> {
    let segments = path::parse_path(path)?;
    let tree = Tree::parse(text)?;
    let present = path::lookup(tree.doc_value(), &segments).is_some();
    if !present {
        path::schema_node(&segments)?;
        return tree.finish();
    }
    let root = tree.root_object()?;
    let (last, parents) = segments
        .split_last()
        .ok_or(EditError::Path(PathError::Empty))?;
    if let Some(parent) = walk(Container::Object(root), &segments, parents.len(), false)? {
        match (parent, last) {
            (Container::Object(object), Segment::Key(key)) => {
                if let Some(prop) = object.get(key) {
                    prop.remove();
                }
            }
            (Container::Array(array), Segment::Index(index)) => {
                if let Some(element) = array.elements().into_iter().nth(*index) {
                    element.remove();
                }
            }
            (container, _) => return Err(wrong_type(&segments, parents, &container)),
        }
    }
    tree.finish()
}

/// Applies a JSON merge patch (RFC 7386) to the config `text`: objects merge
/// key by key, `null` deletes, anything else replaces. Used by the gateway's
/// `config.patch`. Comments survive where the patch does not replace them;
/// the result is validated as a whole.
pub fn merge_patch(text: &str, patch: &Value) -> Result<String, EditError> {
    let tree = Tree::parse(text)?;
    match patch {
        Value::Object(members) => {
            let root = tree.root_object()?;
            patch_object(&root, members);
        }
        other => tree.root.set_value(to_input(other)),
    }
    tree.finish()
}

/// Hex SHA-256 of the raw config text, for `baseHash` checks: a patch made
/// against an older text is refused instead of overwriting newer edits.
pub fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The config `setup` writes for a new profile: its base port, a loopback
/// bind, token auth, and the workspace when given (a blank one is left out).
/// It validates for any port from 1 to 65535.
pub fn initial(port: u16, workspace: Option<&str>) -> String {
    let mut text = String::from(
        "// OmniClaw gateway config (JSON5: comments and trailing commas are fine).\n\
         // Every key is listed by `omniclaw config schema`; check edits with\n\
         // `omniclaw config validate`. Keep ports and workspace unique per profile.\n",
    );
    text.push_str("{\n  \"gateway\": {\n");
    text.push_str(&format!("    \"port\": {port},\n"));
    text.push_str("    \"bind\": \"loopback\",\n");
    text.push_str("    \"auth\": {\n      \"mode\": \"token\"\n    }\n  }");
    if let Some(workspace) = workspace.filter(|w| !w.trim().is_empty()) {
        text.push_str(",\n  \"agents\": {\n    \"defaults\": {\n");
        text.push_str(&format!(
            "      \"workspace\": {}\n",
            Value::String(workspace.to_string())
        ));
        text.push_str("    }\n  }");
    }
    text.push_str("\n}\n");
    text
}

/// The text being edited: its syntax tree, parsed value, and byte-order mark.
struct Tree {
    root: CstRootNode,
    doc: document::Document,
    bom: bool,
}

impl Tree {
    fn parse(text: &str) -> Result<Tree, EditError> {
        let body = document::strip_bom(text);
        let doc = document::parse(body).map_err(EditError::Unparsable)?;
        let root = CstRootNode::parse(body, &document::parse_options()).map_err(|err| {
            EditError::Unparsable(ConfigErrors(vec![Diagnostic::new(
                "",
                format!("syntax error: {}", err.kind()),
                Pos {
                    line: err.line_display(),
                    col: err.column_display(),
                },
            )]))
        })?;
        Ok(Tree {
            root,
            doc,
            bom: body.len() != text.len(),
        })
    }

    fn doc_value(&self) -> &Value {
        self.doc.value()
    }

    fn root_object(&self) -> Result<CstObject, EditError> {
        self.root
            .object_value()
            .ok_or_else(|| EditError::WrongType {
                path: "the config".to_string(),
                parent: "the top level".to_string(),
                found: kind_of(self.root.value().as_ref()),
                wanted: "an object",
            })
    }

    /// The edited text, if it validates.
    fn finish(self) -> Result<String, EditError> {
        let body = self.root.to_string();
        let text = if self.bom {
            format!("\u{feff}{body}")
        } else {
            body
        };
        super::load(&text).map_err(EditError::Invalid)?;
        Ok(text)
    }
}

enum Container {
    Object(CstObject),
    Array(CstArray),
}

/// Follows the first `depth` segments of `full` from `start`. With `create`,
/// missing objects and arrays are created on the way (an array when the next
/// segment is an index); without it a missing step yields `Ok(None)`.
fn walk(
    start: Container,
    full: &[Segment],
    depth: usize,
    create: bool,
) -> Result<Option<Container>, EditError> {
    let mut current = start;
    for (i, segment) in full.iter().enumerate().take(depth) {
        let next_is_index = matches!(full.get(i + 1), Some(Segment::Index(_)));
        let existing = match (&current, segment) {
            (Container::Object(object), Segment::Key(key)) => match object.get(key) {
                Some(prop) => prop.value(),
                None if !create => return Ok(None),
                None => {
                    let empty = if next_is_index {
                        CstInputValue::Array(Vec::new())
                    } else {
                        CstInputValue::Object(Vec::new())
                    };
                    object.append(key, empty);
                    object.get(key).and_then(|p| p.value())
                }
            },
            (Container::Array(array), Segment::Index(index)) => {
                match array.elements().into_iter().nth(*index) {
                    Some(element) => Some(element),
                    None if !create => return Ok(None),
                    None => {
                        return Err(EditError::IndexOutOfRange {
                            path: render(full),
                            array: render(&full[..i]),
                            len: array.elements().len(),
                        })
                    }
                }
            }
            (container, _) => return Err(wrong_type(full, &full[..i], container)),
        };
        current = match existing {
            Some(CstNode::Container(CstContainerNode::Object(object))) => Container::Object(object),
            Some(CstNode::Container(CstContainerNode::Array(array))) => Container::Array(array),
            other => {
                return Err(EditError::WrongType {
                    path: render(full),
                    parent: render(&full[..=i]),
                    found: kind_of(other.as_ref()),
                    wanted: if next_is_index {
                        "an array"
                    } else {
                        "an object"
                    },
                })
            }
        };
    }
    Ok(Some(current))
}

fn wrong_type(path: &[Segment], parent: &[Segment], container: &Container) -> EditError {
    let (found, wanted) = match container {
        Container::Object(_) => ("an object", "an array"),
        Container::Array(_) => ("an array", "an object"),
    };
    EditError::WrongType {
        path: render(path),
        parent: if parent.is_empty() {
            "the top level".to_string()
        } else {
            render(parent)
        },
        found,
        wanted,
    }
}

fn kind_of(node: Option<&CstNode>) -> &'static str {
    match node {
        Some(CstNode::Container(CstContainerNode::Object(_))) => "an object",
        Some(CstNode::Container(CstContainerNode::Array(_))) => "an array",
        Some(CstNode::Leaf(CstLeafNode::StringLit(_))) => "a string",
        Some(CstNode::Leaf(CstLeafNode::NumberLit(_))) => "a number",
        Some(CstNode::Leaf(CstLeafNode::BooleanLit(_))) => "a boolean",
        Some(CstNode::Leaf(CstLeafNode::NullKeyword(_))) => "null",
        Some(_) => "a value",
        None => "nothing",
    }
}

/// Replaces one array element in place.
fn replace(node: CstNode, input: CstInputValue) {
    match node {
        CstNode::Container(CstContainerNode::Object(n)) => {
            n.replace_with(input);
        }
        CstNode::Container(CstContainerNode::Array(n)) => {
            n.replace_with(input);
        }
        CstNode::Leaf(CstLeafNode::StringLit(n)) => {
            n.replace_with(input);
        }
        CstNode::Leaf(CstLeafNode::NumberLit(n)) => {
            n.replace_with(input);
        }
        CstNode::Leaf(CstLeafNode::BooleanLit(n)) => {
            n.replace_with(input);
        }
        CstNode::Leaf(CstLeafNode::NullKeyword(n)) => {
            n.replace_with(input);
        }
        CstNode::Leaf(CstLeafNode::WordLit(n)) => {
            n.replace_with(input);
        }
        // Array elements are always values; trivia never reaches here.
        CstNode::Container(_) | CstNode::Leaf(_) => {}
    }
}

fn patch_object(object: &CstObject, members: &Map<String, Value>) {
    for (key, patch) in members {
        match patch {
            Value::Null => {
                if let Some(prop) = object.get(key) {
                    prop.remove();
                }
            }
            Value::Object(inner) => match object.get(key) {
                Some(prop) => match prop.object_value() {
                    Some(existing) => patch_object(&existing, inner),
                    None => prop.set_value(to_input(&without_nulls(patch))),
                },
                None => {
                    object.append(key, to_input(&without_nulls(patch)));
                }
            },
            other => match object.get(key) {
                Some(prop) => prop.set_value(to_input(other)),
                None => {
                    object.append(key, to_input(other));
                }
            },
        }
    }
}

/// A patch object applied to nothing: its `null` members simply vanish.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn to_input(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(items) => CstInputValue::Array(items.iter().map(to_input).collect()),
        Value::Object(map) => {
            CstInputValue::Object(map.iter().map(|(k, v)| (k.clone(), to_input(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, parse};
    use serde_json::json;

    const COMMENTED: &str = "// my main gateway\n{\n  /* ports */\n  gateway: {\n    port: 18789, // base\n    bind: 'loopback',\n  },\n\n  logging: { level: 'info' }, // quiet\n}\n";

    fn check(result: Result<String, EditError>, expected: Result<&str, &str>) {
        let got = result.map_err(|e| e.to_string());
        let shown = match &got {
            Ok(text) | Err(text) => text.clone(),
        };
        let expected = expected.map(str::to_string).map_err(str::to_string);
        assert_eq!(got, expected, "\n--- got ---\n{shown}\n");
    }

    #[test]
    fn set_replaces_in_place_and_keeps_everything_else() {
        let table: &[(&str, &str, &str)] = &[
            (
                "gateway.port",
                "19001",
                "// my main gateway\n{\n  /* ports */\n  gateway: {\n    port: 19001, // base\n    bind: 'loopback',\n  },\n\n  logging: { level: 'info' }, // quiet\n}\n",
            ),
            (
                "logging.level",
                "'debug'",
                "// my main gateway\n{\n  /* ports */\n  gateway: {\n    port: 18789, // base\n    bind: 'loopback',\n  },\n\n  logging: { level: \"debug\" }, // quiet\n}\n",
            ),
            (
                "gateway.bind",
                "\"lan\"",
                "// my main gateway\n{\n  /* ports */\n  gateway: {\n    port: 18789, // base\n    bind: \"lan\",\n  },\n\n  logging: { level: 'info' }, // quiet\n}\n",
            ),
        ];
        for (path, value, expected) in table {
            check(set(COMMENTED, path, value), Ok(expected));
        }
    }

    #[test]
    fn a_validated_edit_keeps_openclaws_streaming_keys_untouched() {
        // Keys OmniClaw accepts for OpenClaw's sake, some without an
        // effect here (narration), legacy flat ones included.
        let streaming = "  channels: {\n    telegram: {\n      streaming: {\n        mode: 'progress',\n        block: { enabled: true, coalesce: { minChars: 400, maxChars: 900, idleMs: 0 } },\n        preview: { chunk: { minChars: 200, maxChars: 800, breakPreference: 'sentence' }, commandText: 'raw' },\n        progress: { commandText: 'status', commentary: true, narration: false }, // as in OpenClaw\n      },\n      draftChunk: { maxChars: 500 },\n      blockStreaming: false,\n    },\n  },\n";
        let text = format!("{{\n  gateway: {{ port: 18789 }},\n{streaming}}}\n");
        let edited = set(&text, "gateway.port", "19001").expect("a valid edit");
        assert_eq!(
            edited,
            format!("{{\n  gateway: {{ port: 19001 }},\n{streaming}}}\n")
        );
        let again = set(&edited, "gateway.port", "18789").expect("and back");
        assert_eq!(again, text);
    }

    #[test]
    fn set_creates_missing_parents() {
        check(
            set(COMMENTED, "agents.defaults.workspace", "'~/.omniclaw/workspace-main'"),
            Ok("// my main gateway\n{\n  /* ports */\n  gateway: {\n    port: 18789, // base\n    bind: 'loopback',\n  },\n\n  logging: { level: 'info' }, // quiet\n  \"agents\": {\n    \"defaults\": {\n      \"workspace\": \"~/.omniclaw/workspace-main\"\n    }\n  },\n}\n"),
        );
        check(
            set("{}", "browser.profiles.work.cdpPort", "18850"),
            Ok("{\n  \"browser\": {\n    \"profiles\": {\n      \"work\": {\n        \"cdpPort\": 18850\n      }\n    }\n  }\n}"),
        );
        check(
            set("{}", "rescue.targets[0]", "'main'"),
            Ok("{\n  \"rescue\": {\n    \"targets\": [\"main\"]\n  }\n}"),
        );
    }

    #[test]
    fn set_edits_array_items() {
        let text = "{ channels: { telegram: { allowFrom: [1, 2] } } }";
        check(
            set(text, "channels.telegram.allowFrom[1]", "3"),
            Ok("{ channels: { telegram: { allowFrom: [1, 3] } } }"),
        );
        check(
            set(text, "channels.telegram.allowFrom[2]", "'4'"),
            Ok("{ channels: { telegram: { allowFrom: [1, 2, \"4\"] } } }"),
        );
        check(
            set(text, "channels.telegram.allowFrom[5]", "4"),
            Err("cannot set channels.telegram.allowFrom[5]: channels.telegram.allowFrom has 2 items; use index 2 to append one"),
        );
        check(
            set(text, "channels.telegram.allowFrom", "[7]"),
            Ok("{ channels: { telegram: { allowFrom: [7] } } }"),
        );
    }

    #[test]
    fn set_refuses_what_would_not_validate() {
        let table: &[(&str, &str, &str, &str)] = &[
            (
                COMMENTED,
                "gateway.port",
                "70000",
                "refusing the edit: the config would be invalid:\ngateway.port: expected an integer 1–65535, got 70000 (5:11)",
            ),
            (
                COMMENTED,
                "gateway.bind",
                "'custom'",
                "refusing the edit: the config would be invalid:\ngateway.customBindHost: required when gateway.bind is \"custom\": set the IP address or host name to listen on (6:5)",
            ),
            (
                COMMENTED,
                "gateway.prot",
                "1",
                "unknown config path \"gateway.prot\": gateway has no key \"prot\"; did you mean \"port\"?",
            ),
            (
                COMMENTED,
                "gateway.bind",
                "loopback",
                "the new value \"loopback\" is not valid JSON5 (quote strings: '\"text\"'):\nsyntax error: unexpected word `loopback`: quote strings, and write true, false or null in lower case (1:1)",
            ),
            (
                COMMENTED,
                "gateway.port",
                "",
                "the new value \"\" is not valid JSON5 (quote strings: '\"text\"'):\nthe value is empty; to remove a key use unset (1:1)",
            ),
            (
                "{ gateway: 5 }",
                "gateway.port",
                "1",
                "cannot edit gateway.port: the config has a number at gateway, not an object; set or unset gateway itself first",
            ),
            (
                "{ gateway: { port: 1 ",
                "gateway.port",
                "2",
                "the config does not parse, so it cannot be edited; fix it by hand first:\nsyntax error: unclosed object: this `{` has no matching `}` (1:12)",
            ),
        ];
        for (text, path, value, expected) in table {
            check(set(text, path, value), Err(expected));
        }
    }

    #[test]
    fn set_keeps_a_byte_order_mark() {
        check(
            set("\u{feff}{ gateway: { port: 1 } }", "gateway.port", "2"),
            Ok("\u{feff}{ gateway: { port: 2 } }"),
        );
    }

    #[test]
    fn unset_removes_and_keeps_comments() {
        check(
            unset(COMMENTED, "gateway.bind"),
            Ok("// my main gateway\n{\n  /* ports */\n  gateway: {\n    port: 18789, // base\n  },\n\n  logging: { level: 'info' }, // quiet\n}\n"),
        );
        check(unset(COMMENTED, "canvasHost.port"), Ok(COMMENTED));
        check(unset(COMMENTED, "agents.defaults.workspace"), Ok(COMMENTED));
        check(
            unset("{ gateway: { prot: 1, port: 2 } }", "gateway.prot"),
            Ok("{ gateway: { port: 2 } }"),
        );
        check(
            unset(COMMENTED, "gateway.nope"),
            Err("unknown config path \"gateway.nope\": gateway has no key \"nope\"; known keys: mode, port, bind, customBindHost, auth, remote, reload"),
        );
        check(
            unset("{ rescue: { targets: ['a', 'b'] } }", "rescue.targets[0]"),
            Ok("{ rescue: { targets: [ 'b'] } }"),
        );
        check(
            unset("{ gateway: { bind: 'custom', customBindHost: 'h' } }", "gateway.customBindHost"),
            Err("refusing the edit: the config would be invalid:\ngateway.customBindHost: required when gateway.bind is \"custom\": set the IP address or host name to listen on (1:14)"),
        );
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let table: &[(Value, Result<&str, &str>)] = &[
            (
                json!({"gateway": {"bind": null}}),
                Ok("// my main gateway\n{\n  /* ports */\n  gateway: {\n    port: 18789, // base\n  },\n\n  logging: { level: 'info' }, // quiet\n}\n"),
            ),
            (
                json!({"gateway": {"port": 19001}, "logging": null}),
                Ok("// my main gateway\n{\n  /* ports */\n  gateway: {\n    port: 19001, // base\n    bind: 'loopback',\n  },\n\n}\n"),
            ),
            (
                json!({"canvasHost": {"port": 18793, "root": null}}),
                Ok("// my main gateway\n{\n  /* ports */\n  gateway: {\n    port: 18789, // base\n    bind: 'loopback',\n  },\n\n  logging: { level: 'info' }, // quiet\n  \"canvasHost\": {\n    \"port\": 18793,\n  },\n}\n"),
            ),
            (json!({"nothing": null}), Ok(COMMENTED)),
            (
                json!({"gateway": {"port": "x"}}),
                Err("refusing the edit: the config would be invalid:\ngateway.port: expected an integer 1–65535, got \"x\" (5:11)"),
            ),
            (
                json!({"gatway": {}}),
                Err("refusing the edit: the config would be invalid:\ngatway: unknown key \"gatway\"; did you mean \"gateway\"? (10:3)"),
            ),
            (
                json!([1]),
                Err("refusing the edit: the config would be invalid:\nthe config must be an object `{ ... }`, got an array (2:1)"),
            ),
        ];
        for (patch, expected) in table {
            check(merge_patch(COMMENTED, patch), *expected);
        }
    }

    #[test]
    fn merge_patch_replaces_non_objects_with_objects() {
        let out = merge_patch(
            "{ gateway: { auth: { token: 'x' } } }",
            &json!({"gateway": {"auth": {"token": {"source": "keychain", "extra": null}}}}),
        )
        .expect("valid");
        assert_eq!(
            parse(&out).expect("parses").value(),
            &json!({"gateway": {"auth": {"token": {"source": "keychain"}}}})
        );
    }

    #[test]
    fn hash_is_hex_sha256_of_the_raw_text() {
        let table = [
            (
                "",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                "{}",
                "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            ),
        ];
        for (text, expected) in table {
            assert_eq!(hash(text), expected, "{text:?}");
        }
        assert_ne!(hash("{}\n"), hash("{}"));
    }

    #[test]
    fn initial_config_validates_and_says_what_it_sets() {
        let table: &[(u16, Option<&str>, Option<&str>)] = &[
            (18789, None, None),
            (
                19789,
                Some("~/.omniclaw/workspace-rescue"),
                Some("~/.omniclaw/workspace-rescue"),
            ),
            (
                1,
                Some("C:\\Users\\me\\ws \"x\""),
                Some("C:\\Users\\me\\ws \"x\""),
            ),
            (65425, Some("  "), None),
        ];
        for (port, workspace, expected_workspace) in table {
            let text = initial(*port, *workspace);
            let loaded = load(&text).unwrap_or_else(|e| panic!("{text}\n{e}"));
            assert_eq!(loaded.config.gateway_port(), Some(*port));
            assert_eq!(
                loaded.config.gateway.bind,
                Some(crate::config::BindMode::Loopback)
            );
            assert_eq!(
                loaded.config.gateway.auth.mode,
                Some(crate::config::AuthMode::Token)
            );
            assert_eq!(loaded.config.workspace(), *expected_workspace);
            assert!(text.starts_with("// OmniClaw gateway config"));
        }
        insta::assert_snapshot!(
            "initial_rescue",
            initial(19789, Some("~/.omniclaw/workspace-rescue"))
        );
    }

    proptest::proptest! {
        #[test]
        fn setting_any_valid_port_round_trips_and_touches_only_that_line(
            // 65425 + 110 = 65535: the highest base whose default ports fit.
            before in 1u16..=65425,
            after in 1u16..=65425,
        ) {
            let text = initial(before, Some("~/ws"));
            let edited = set(&text, "gateway.port", &after.to_string()).expect("valid port");
            let port = load(&edited).expect("valid").config.gateway_port();
            proptest::prop_assert_eq!(port, Some(after));
            let old_line = format!("\"port\": {before},");
            let new_line = format!("\"port\": {after},");
            proptest::prop_assert_eq!(edited, text.replacen(&old_line, &new_line, 1));
        }

        #[test]
        fn bases_whose_derived_ports_pass_65535_are_refused(port in 65426u16..=65535) {
            let refused = set("{}", "gateway.port", &port.to_string());
            let message = match refused {
                Err(EditError::Invalid(errors)) => errors.to_string(),
                other => format!("{other:?}"),
            };
            proptest::prop_assert!(
                message.starts_with(&format!("gateway.port: base port {port} leaves no room")),
                "{}", message
            );
        }

        #[test]
        fn out_of_range_ports_are_always_refused(port in 65536u32..10_000_000) {
            let refused = set("{}", "gateway.port", &port.to_string());
            proptest::prop_assert!(matches!(refused, Err(EditError::Invalid(_))));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "\\PC{0,80}") {
            let _ = parse(&text);
            let _ = set(&text, "gateway.port", "1");
        }
    }

    #[test]
    fn edits_of_initial_keep_its_header() {
        let text = initial(19789, None);
        let edited = set(
            &text,
            "channels.telegram.botToken",
            "{ source: 'keychain' }",
        )
        .expect("valid");
        assert!(edited.starts_with(&text[..text.find('{').unwrap_or(0)]));
        let edited = unset(&edited, "channels.telegram.botToken").expect("valid");
        assert!(load(&edited).is_ok());
        assert!(edited.contains("\"port\": 19789"));
    }
}
