//! The config of one gateway: `omniclaw.json`, written in JSON5.
//!
//! Text goes through three stages, each usable on its own:
//!
//! 1. [`parse`]: JSON5 syntax only, into a [`Document`] that keeps where every
//!    key and value sits in the text. Diagnostic commands stop here, so they
//!    still work on a config that does not validate.
//! 2. [`validate`]: the strict check against the one schema tree in
//!    `schema.rs`. It reports every problem at once, in document order, as
//!    `path: message (line:col)`.
//! 3. The typed [`Config`], built only from a document that validated.
//!
//! [`load`] runs all three. Edits ([`set`], [`unset`], [`merge_patch`]) work
//! on the text through a concrete syntax tree, so user comments and
//! formatting survive, and they validate the whole result before handing it
//! back: a caller never receives text it must not write.
//!
//! The same schema tree drives validation, path lookup ([`get`]), secret
//! redaction ([`redacted`]) and the editor schema ([`json_schema`]), so the
//! four cannot drift apart.
//!
//! # JSON5 support
//!
//! Parsing uses `jsonc-parser` with its JSON5 extensions on: `//` and `/* */`
//! comments, unquoted keys, trailing commas, single-quoted strings, hex
//! numbers, a leading `+`, leading or trailing decimal points, and the JSON5
//! string escapes (`\x41`, `\v`, line continuations). A leading byte-order
//! mark is skipped. Differences from the JSON5 spec:
//!
//! - `Infinity` and `NaN` are refused: no config value can use them, and the
//!   value model (`serde_json`) cannot hold them.
//! - Unquoted keys may not contain `\u` escapes; quote such a key instead.
//! - Unquoted keys are a little looser than JSON5 identifiers (a key such as
//!   `a-b` parses); it is then refused as an unknown key anyway.
//! - Commas between entries are required, as in JSON5 (the parser's own
//!   "missing commas" leniency is turned off).
//! - Duplicate keys are an error rather than "last one wins".
//! - An empty file (or one holding only comments) is an error: `{}` is the
//!   all-defaults config. An emptied file must not silently fall back to the
//!   default port of another profile.

mod agent;
mod document;
mod edit;
mod model;
mod path;
mod schema;
mod validate;

pub use agent::{
    public_http_host, AgentConfig, AgentModel, Budget, Exec, ModelCost, ModelDef, ModelProvider,
    ModelRef, Models, ProviderConfig, Session, SsrfPolicy, Tools, WebFetch,
    DEFAULT_BOOTSTRAP_MAX_CHARS, DEFAULT_BOOTSTRAP_TOTAL_MAX_CHARS,
    DEFAULT_PROVIDER_TIMEOUT_SECONDS, DEFAULT_RUN_TIMEOUT_SECONDS, KNOWN_PROVIDERS,
};
pub use document::{parse, ConfigErrors, Diagnostic, Document};
pub use edit::{hash, initial, merge_patch, set, unset, EditError};
pub use model::{
    AgentDefaults, Agents, AuthMode, BindMode, BreakPreference, Browser, BrowserProfile,
    CanvasHost, Channels, ChunkMode, Coalesce, CommandText, Config, DmPolicy, DmScope, ExecMode,
    Gateway, GatewayAuth, GatewayMode, GatewayReload, GatewayRemote, GroupPolicy, LogLevel,
    Logging, ModelsMode, ProviderApi, ReloadMode, Rescue, SecretRef, SecretSource, StreamingChunk,
    StreamingMode, Telegram, TelegramGroup, TelegramStreaming, Watch, WatchAction, WatchSettings,
};
pub use path::{get, get_raw, plaintext_secrets, redacted, secret_refs, PathError, REDACTED};
pub use schema::{is_provider_id, json_schema};
pub use validate::{unknown_targets, validate, warnings};

/// A config that parsed and validated: the typed model plus the document it
/// came from (for positions and raw values).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub doc: Document,
}

impl Loaded {
    /// What is allowed but probably not meant (a capped gateway using a
    /// model without a price): shown by `config validate` and `doctor`,
    /// never a reason to refuse the config.
    pub fn warnings(&self) -> Vec<Diagnostic> {
        warnings(&self.doc)
    }
}

/// Parses and validates `text`, the whole content of an `omniclaw.json`.
///
/// Every problem is reported, syntax errors first (parsing stops at the first
/// one), then all validation errors in document order.
pub fn load(text: &str) -> Result<Loaded, ConfigErrors> {
    let doc = parse(text)?;
    let config = validate(&doc)?;
    Ok(Loaded { config, doc })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<Option<u16>, &str>) {
        let got = load(text)
            .map(|loaded| loaded.config.gateway_port())
            .map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string), "input: {text}");
    }

    #[test]
    fn load_runs_parse_then_validate() {
        check("{}", Ok(None));
        check("{ gateway: { port: 19001 } }", Ok(Some(19001)));
        check(
            "{ gateway: { port: 0 } }",
            Err("gateway.port: expected an integer 1–65535, got 0 (1:20)"),
        );
        check(
            "{ gateway: { port: 1 }",
            Err("syntax error: unclosed object: this `{` has no matching `}` (1:1)"),
        );
    }

    #[test]
    fn loaded_keeps_the_document_for_positions() {
        let loaded = load("{\n  gateway: {\n    port: 19001,\n  },\n}\n").expect("valid");
        assert_eq!(loaded.doc.position("gateway.port"), Some((3, 5)));
        assert_eq!(loaded.doc.value()["gateway"]["port"], 19001);
    }
}
