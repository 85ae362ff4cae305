//! The workspace file tools: `read`, `write`, `edit`, `ls` (OpenClaw's
//! names and arguments).
//!
//! Every path is opened beneath a handle on the workspace directory
//! (`cap-std`: `openat2(RESOLVE_BENEATH)` on Linux, component by component
//! with `O_NOFOLLOW` elsewhere), so a symbolic link that points out of the
//! workspace — even one swapped in between a check and the open — is
//! refused by the kernel, not by a string comparison. `..` and absolute
//! paths outside the workspace are refused before that, with a message
//! that says so. Writes go to a temporary file beside the target and are
//! renamed over it: a file is never left half-written.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::Deserialize;
use serde_json::{json, Value};

use super::parse_args;
use crate::provider::ToolSpec;
use crate::tool::{Tool, ToolContext, ToolOutput};

/// Size caps of the file tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsSettings {
    /// The largest file `read` and `edit` open, in bytes.
    pub max_file_bytes: u64,
    /// The largest content `write` (or an `edit`'s result) may have.
    pub max_write_bytes: usize,
    /// The most text one `read` or `ls` returns; the rest is a page away.
    pub max_output_bytes: usize,
}

impl Default for FsSettings {
    fn default() -> FsSettings {
        FsSettings {
            max_file_bytes: 10 * 1024 * 1024,
            max_write_bytes: 10 * 1024 * 1024,
            // OpenClaw's page size.
            max_output_bytes: 50 * 1024,
        }
    }
}

/// Lines `read` returns when the model names no `limit` (OpenClaw's).
const DEFAULT_READ_LINES: usize = 2000;
/// Entries `ls` returns when the model names no `limit` (OpenClaw's).
const DEFAULT_LS_ENTRIES: usize = 500;

/// The workspace, opened as a directory handle.
pub(crate) struct Workspace {
    root: PathBuf,
    dir: Dir,
}

impl Workspace {
    pub(crate) fn open(root: &Path) -> Result<Workspace, String> {
        let dir = Dir::open_ambient_dir(root, ambient_authority()).map_err(|e| {
            format!(
                "the workspace {} cannot be opened ({e}); check agents.defaults.workspace",
                root.display()
            )
        })?;
        Ok(Workspace {
            root: root.to_path_buf(),
            dir,
        })
    }

    /// The path the model gave, relative to the workspace; refuses `..` and
    /// absolute paths outside it.
    pub(crate) fn relative(&self, raw: &str) -> Result<PathBuf, String> {
        let given = Path::new(raw);
        let rel = if given.is_absolute() {
            let canonical = self.root.canonicalize().ok();
            given
                .strip_prefix(&self.root)
                .ok()
                .or_else(|| {
                    canonical
                        .as_deref()
                        .and_then(|c| given.strip_prefix(c).ok())
                })
                .ok_or_else(|| self.outside(raw))?
        } else {
            given
        };
        let mut out = PathBuf::new();
        for c in rel.components() {
            match c {
                Component::Normal(part) => out.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(format!(
                        "path {raw:?} contains \"..\": file tools stay inside the workspace {}; \
                         give the path relative to it without \"..\"",
                        self.root.display()
                    ))
                }
                Component::RootDir | Component::Prefix(_) => return Err(self.outside(raw)),
            }
        }
        Ok(out)
    }

    fn outside(&self, raw: &str) -> String {
        format!(
            "path {raw:?} is outside the workspace {}: file tools reach only files inside it; \
             give a path relative to the workspace",
            self.root.display()
        )
    }

    /// Words an IO failure on `raw` for the model.
    pub(crate) fn io_error(&self, raw: &str, e: &io::Error) -> String {
        // cap-std's word for a resolution that would leave the directory.
        if e.kind() == io::ErrorKind::PermissionDenied
            && e.to_string().contains("outside of the filesystem")
        {
            return format!(
                "path {raw:?} leads outside the workspace {} through a symbolic link: \
                 file tools do not follow links out of it",
                self.root.display()
            );
        }
        match e.kind() {
            io::ErrorKind::NotFound => {
                format!("{raw:?} does not exist in the workspace (ls shows what is there)")
            }
            io::ErrorKind::PermissionDenied => format!("{raw:?}: permission denied"),
            _ => format!("{raw:?}: {e}"),
        }
    }

    /// Opens a directory beneath the workspace.
    pub(crate) fn open_dir(&self, rel: &Path) -> io::Result<Dir> {
        self.dir.open_dir(rel)
    }

    /// Reads a whole text file of at most `max` bytes.
    fn read_text(&self, raw: &str, rel: &Path, max: u64) -> Result<String, String> {
        if rel.as_os_str().is_empty() {
            return Err(format!(
                "{raw:?} is the workspace itself; name a file in it"
            ));
        }
        let file = self.dir.open(rel).map_err(|e| self.io_error(raw, &e))?;
        let meta = file.metadata().map_err(|e| self.io_error(raw, &e))?;
        if meta.is_dir() {
            return Err(format!("{raw:?} is a directory; use ls to list it"));
        }
        if meta.len() > max {
            return Err(format!(
                "{raw:?} has {} bytes, more than the {max} bytes the file tools open; \
                 use exec with a tool that reads part of it, if exec is allowed",
                meta.len()
            ));
        }
        let mut bytes = Vec::new();
        // The file may grow after the size check: read one byte past the cap
        // to notice.
        file.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.io_error(raw, &e))?;
        if bytes.len() as u64 > max {
            return Err(format!("{raw:?} grew past {max} bytes while it was read"));
        }
        String::from_utf8(bytes)
            .map_err(|_| format!("{raw:?} is not UTF-8 text; read handles text files only"))
    }

    /// Replaces (or creates) a file whole: a temporary file beside it,
    /// synced, then renamed over it, keeping the old file's permissions.
    fn write_atomic(&self, raw: &str, rel: &Path, content: &[u8]) -> Result<(), String> {
        let name = rel
            .file_name()
            .ok_or_else(|| format!("{raw:?} names no file"))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        if !parent.as_os_str().is_empty() {
            if let Err(e) = self.dir.create_dir_all(parent) {
                // A link out of the workspace shows as "exists"; opening it
                // says why it cannot be used.
                let e = self.dir.open_dir(parent).err().unwrap_or(e);
                return Err(self.io_error(raw, &e));
            }
        }
        let existing = match self.dir.metadata(rel) {
            Ok(m) if m.is_dir() => return Err(format!("{raw:?} is a directory; name a file")),
            Ok(m) => Some(m.permissions()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.io_error(raw, &e)),
        };
        let tmp = parent.join(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            uuid::Uuid::new_v4().simple()
        ));
        let result = (|| -> io::Result<()> {
            let mut file = self.dir.create(&tmp)?;
            file.write_all(content)?;
            if let Some(p) = existing {
                file.set_permissions(p)?;
            }
            file.sync_all()?;
            self.dir.rename(&tmp, &self.dir, rel)
        })();
        if let Err(e) = result {
            // Best effort: a leftover temporary file is harmless.
            let _ = self.dir.remove_file(&tmp);
            return Err(self.io_error(raw, &e));
        }
        Ok(())
    }
}

/// Runs blocking file work off the async threads.
async fn blocking(f: impl FnOnce() -> ToolOutput + Send + 'static) -> ToolOutput {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| ToolOutput::error(format!("the file tool failed: {e}")))
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

pub struct ReadTool {
    settings: FsSettings,
}

impl ReadTool {
    pub fn new(settings: FsSettings) -> ReadTool {
        ReadTool { settings }
    }
}

#[derive(Deserialize)]
struct ReadArgs {
    path: String,
    offset: Option<u64>,
    limit: Option<u64>,
}

#[async_trait]
impl Tool for ReadTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "read".into(),
            description: format!(
                "Read a text file in the workspace. Returns up to {DEFAULT_READ_LINES} lines or {} KB; \
                 continue with offset/limit.",
                self.settings.max_output_bytes / 1024
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path, relative to the workspace."},
                    "offset": {"type": "integer", "minimum": 1, "description": "Start line; 1-based."},
                    "limit": {"type": "integer", "minimum": 1, "description": "Max lines."}
                },
                "required": ["path"]
            }),
        }
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let args: ReadArgs = match parse_args("read", args) {
            Ok(a) => a,
            Err(e) => return e,
        };
        let settings = self.settings.clone();
        let root = ctx.workspace.clone();
        blocking(move || match read(&root, &args, &settings) {
            Ok(text) => ToolOutput::ok(text),
            Err(e) => ToolOutput::error(e),
        })
        .await
    }
}

fn read(root: &Path, args: &ReadArgs, settings: &FsSettings) -> Result<String, String> {
    let ws = Workspace::open(root)?;
    let rel = ws.relative(&args.path)?;
    let text = ws.read_text(&args.path, &rel, settings.max_file_bytes)?;
    if text.is_empty() {
        return Ok("(empty file)".into());
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let total = lines.len();
    let first = usize::try_from(args.offset.unwrap_or(1).max(1)).unwrap_or(usize::MAX);
    if first > total {
        return Err(format!(
            "offset {first} is past the end of {:?}, which has {total} lines",
            args.path
        ));
    }
    let limit = args
        .limit
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(DEFAULT_READ_LINES)
        .max(1);
    let mut out = String::new();
    let mut last = first - 1;
    for line in lines.iter().skip(first - 1).take(limit) {
        if out.len() + line.len() > settings.max_output_bytes {
            if out.is_empty() {
                // One line longer than a page: show its start.
                out.push_str(cut(line, settings.max_output_bytes));
                out.push_str(&format!(
                    "\n\n[Line {first} is longer than {} bytes; only its start is shown.]",
                    settings.max_output_bytes
                ));
                return Ok(out);
            }
            break;
        }
        out.push_str(line);
        last += 1;
    }
    if last < total {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!(
            "\n[Showing lines {first}-{last} of {total}. Use offset={} to continue.]",
            last + 1
        ));
    }
    Ok(out)
}

pub struct WriteTool {
    settings: FsSettings,
}

impl WriteTool {
    pub fn new(settings: FsSettings) -> WriteTool {
        WriteTool { settings }
    }
}

#[derive(Deserialize)]
struct WriteArgs {
    path: String,
    content: String,
}

#[async_trait]
impl Tool for WriteTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "write".into(),
            description: "Write or overwrite a file in the workspace; creates parent directories."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path, relative to the workspace."},
                    "content": {"type": "string", "description": "File content."}
                },
                "required": ["path", "content"]
            }),
        }
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let args: WriteArgs = match parse_args("write", args) {
            Ok(a) => a,
            Err(e) => return e,
        };
        let max = self.settings.max_write_bytes;
        let root = ctx.workspace.clone();
        blocking(move || {
            if args.content.len() > max {
                return ToolOutput::error(format!(
                    "the content has {} bytes, more than the {max} bytes write accepts; write it in smaller files",
                    args.content.len()
                ));
            }
            let done = Workspace::open(&root).and_then(|ws| {
                let rel = ws.relative(&args.path)?;
                ws.write_atomic(&args.path, &rel, args.content.as_bytes())
            });
            match done {
                Ok(()) => ToolOutput::ok(format!("Wrote {} bytes to {}", args.content.len(), args.path)),
                Err(e) => ToolOutput::error(e),
            }
        })
        .await
    }
}

pub struct EditTool {
    settings: FsSettings,
}

impl EditTool {
    pub fn new(settings: FsSettings) -> EditTool {
        EditTool { settings }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Replacement {
    old_text: String,
    new_text: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EditArgs {
    path: String,
    #[serde(default)]
    edits: Vec<Replacement>,
    // The single-replacement form older OpenClaw prompts use.
    old_text: Option<String>,
    new_text: Option<String>,
}

#[async_trait]
impl Tool for EditTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "edit".into(),
            description:
                "Exact replacements in one workspace file. Each oldText must occur exactly once in \
                          the original file; replacements must not overlap."
                    .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path, relative to the workspace."},
                    "edits": {
                        "type": "array",
                        "description": "Targeted replacements against the original file; no overlap.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "oldText": {"type": "string", "description": "Exact original text; unique in the file."},
                                "newText": {"type": "string", "description": "Replacement text."}
                            },
                            "required": ["oldText", "newText"]
                        }
                    }
                },
                "required": ["path", "edits"]
            }),
        }
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let mut args: EditArgs = match parse_args("edit", args) {
            Ok(a) => a,
            Err(e) => return e,
        };
        if let (Some(old_text), Some(new_text)) = (args.old_text.take(), args.new_text.take()) {
            args.edits.push(Replacement { old_text, new_text });
        }
        let settings = self.settings.clone();
        let root = ctx.workspace.clone();
        blocking(move || match edit(&root, &args, &settings) {
            Ok(text) => ToolOutput::ok(text),
            Err(e) => ToolOutput::error(e),
        })
        .await
    }
}

fn edit(root: &Path, args: &EditArgs, settings: &FsSettings) -> Result<String, String> {
    if args.edits.is_empty() {
        return Err("edit needs at least one {oldText, newText} in edits".into());
    }
    let ws = Workspace::open(root)?;
    let rel = ws.relative(&args.path)?;
    let original = ws.read_text(&args.path, &rel, settings.max_file_bytes)?;
    let crlf = original.contains("\r\n");
    let mut spans: Vec<(usize, usize, String)> = Vec::new();
    for (i, e) in args.edits.iter().enumerate() {
        if e.old_text.is_empty() {
            return Err(format!(
                "edits[{i}].oldText is empty; give the exact text to replace"
            ));
        }
        // A model writes "\n"; a CRLF file has "\r\n".
        let (old, new) = if crlf && !original.contains(&e.old_text) {
            (
                e.old_text.replace('\n', "\r\n"),
                e.new_text.replace('\n', "\r\n"),
            )
        } else {
            (e.old_text.clone(), e.new_text.clone())
        };
        let mut found = original.match_indices(&old);
        let Some((start, _)) = found.next() else {
            return Err(format!(
                "edits[{i}].oldText was not found in {:?}; read the file and copy the text exactly",
                args.path
            ));
        };
        let more = found.count();
        if more > 0 {
            return Err(format!(
                "edits[{i}].oldText occurs {} times in {:?}; add surrounding lines to make it unique",
                more + 1,
                args.path
            ));
        }
        spans.push((start, start + old.len(), new));
    }
    spans.sort_by_key(|s| s.0);
    if spans.windows(2).any(|w| w[0].1 > w[1].0) {
        return Err("two edits overlap; merge them into one".into());
    }
    let mut out = String::with_capacity(original.len());
    let mut at = 0;
    for (start, end, new) in &spans {
        out.push_str(&original[at..*start]);
        out.push_str(new);
        at = *end;
    }
    out.push_str(&original[at..]);
    if out == original {
        return Ok(format!(
            "No change: the edits leave {} as it was",
            args.path
        ));
    }
    if out.len() > settings.max_write_bytes {
        return Err(format!(
            "the edited file would have {} bytes, more than the {} bytes the file tools write",
            out.len(),
            settings.max_write_bytes
        ));
    }
    ws.write_atomic(&args.path, &rel, out.as_bytes())?;
    Ok(format!(
        "Edited {}: {} replacement{}",
        args.path,
        spans.len(),
        if spans.len() == 1 { "" } else { "s" }
    ))
}

pub struct LsTool {
    settings: FsSettings,
}

impl LsTool {
    pub fn new(settings: FsSettings) -> LsTool {
        LsTool { settings }
    }
}

#[derive(Deserialize)]
struct LsArgs {
    path: Option<String>,
    limit: Option<u64>,
    after: Option<String>,
}

#[async_trait]
impl Tool for LsTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "ls".into(),
            description: "List a workspace directory in byte order, dotfiles and links included. Names are \
                          JSON-quoted; / marks directories. Pass the returned after cursor with the same path \
                          to continue."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Directory, relative to the workspace; default the workspace."},
                    "limit": {"type": "integer", "minimum": 1, "description": "Max entries; default 500."},
                    "after": {"type": "string", "description": "Filename cursor returned by the previous page."}
                }
            }),
        }
    }

    async fn call(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let args: LsArgs = match parse_args("ls", args) {
            Ok(a) => a,
            Err(e) => return e,
        };
        let max = self.settings.max_output_bytes;
        let root = ctx.workspace.clone();
        blocking(move || match ls(&root, &args, max) {
            Ok(text) => ToolOutput::ok(text),
            Err(e) => ToolOutput::error(e),
        })
        .await
    }
}

fn ls(root: &Path, args: &LsArgs, max_bytes: usize) -> Result<String, String> {
    let ws = Workspace::open(root)?;
    let raw = args.path.as_deref().unwrap_or(".");
    let rel = ws.relative(raw)?;
    let entries = if rel.as_os_str().is_empty() {
        ws.dir.entries()
    } else {
        ws.dir.read_dir(&rel)
    }
    .map_err(|e| ws.io_error(raw, &e))?;
    let mut names: Vec<(String, bool)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ws.io_error(raw, &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if args
            .after
            .as_ref()
            .is_some_and(|a| name.as_str() <= a.as_str())
        {
            continue;
        }
        // The entry's own type: a link to a directory is not marked.
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        names.push((name, is_dir));
    }
    if names.is_empty() {
        return Ok("(empty directory)".into());
    }
    names.sort();
    let limit = args
        .limit
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(DEFAULT_LS_ENTRIES)
        .max(1);
    let mut out = String::new();
    let mut shown = 0;
    for (name, is_dir) in names.iter().take(limit) {
        let line = serde_json::to_string(&format!("{name}{}", if *is_dir { "/" } else { "" }))
            .unwrap_or_default();
        if out.len() + line.len() + 1 > max_bytes && shown > 0 {
            break;
        }
        if shown > 0 {
            out.push('\n');
        }
        out.push_str(&line);
        shown += 1;
    }
    if shown < names.len() {
        let after = serde_json::to_string(&names[shown - 1].0).unwrap_or_default();
        out.push_str(&format!(
            "\n\n[More entries. Continue with the same path and after={after}.]"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
