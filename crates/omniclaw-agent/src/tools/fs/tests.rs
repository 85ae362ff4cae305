use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;

struct Ws {
    /// Holds the workspace and, beside it, files that must stay out of reach.
    dir: tempfile::TempDir,
}

impl Ws {
    fn new() -> Ws {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("ws")).expect("ws");
        std::fs::create_dir(dir.path().join("outside")).expect("outside");
        std::fs::write(
            dir.path().join("outside").join("secret.txt"),
            "SECRET-OUTSIDE",
        )
        .expect("secret");
        Ws { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    fn put(&self, rel: &str, text: &str) {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    fn ctx(&self) -> ToolContext {
        ToolContext {
            workspace: self.root(),
            session_key: "agent:main:main".into(),
            cancel: CancellationToken::new(),
            child_env: BTreeMap::new(),
        }
    }

    async fn call(&self, tool: &dyn Tool, args: Value) -> ToolOutput {
        tool.call(args, &self.ctx()).await
    }
}

fn read_tool() -> ReadTool {
    ReadTool::new(FsSettings::default())
}

fn assert_refused(out: &ToolOutput, words: &str) {
    assert!(out.is_error, "expected a refusal, got {out:?}");
    assert!(
        out.text.contains(words),
        "{:?} should say {words:?}",
        out.text
    );
    assert!(!out.text.contains("SECRET"), "leaked: {}", out.text);
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).expect("symlink");
}

#[tokio::test]
async fn read_returns_lines_and_pages_through_long_files() {
    let ws = Ws::new();
    let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    ws.put("notes/a.txt", &text);
    let out = ws.call(&read_tool(), json!({"path": "notes/a.txt"})).await;
    assert_eq!(out, ToolOutput::ok(text.clone()));
    let out = ws
        .call(
            &read_tool(),
            json!({"path": "notes/a.txt", "offset": 5, "limit": 2}),
        )
        .await;
    assert_eq!(
        out.text,
        "line 5\nline 6\n\n[Showing lines 5-6 of 30. Use offset=7 to continue.]"
    );
    let small_page = ReadTool::new(FsSettings {
        max_output_bytes: 20,
        ..FsSettings::default()
    });
    let out = ws.call(&small_page, json!({"path": "notes/a.txt"})).await;
    assert!(
        out.text
            .starts_with("line 1\nline 2\n\n[Showing lines 1-2 of 30"),
        "{}",
        out.text
    );
    let out = ws
        .call(&read_tool(), json!({"path": "notes/a.txt", "offset": 31}))
        .await;
    assert_refused(&out, "past the end");
    ws.put("empty.txt", "");
    assert_eq!(
        ws.call(&read_tool(), json!({"path": "empty.txt"}))
            .await
            .text,
        "(empty file)"
    );
    // An absolute path inside the workspace is fine.
    let abs = ws.root().join("notes/a.txt");
    let out = ws
        .call(&read_tool(), json!({"path": abs.to_string_lossy()}))
        .await;
    assert!(!out.is_error, "{out:?}");
}

#[tokio::test]
async fn read_refuses_what_is_not_a_small_text_file() {
    let ws = Ws::new();
    std::fs::write(ws.root().join("bin"), [0xff, 0xfe, 0x00, 0x80]).expect("bin");
    assert_refused(
        &ws.call(&read_tool(), json!({"path": "bin"})).await,
        "not UTF-8 text",
    );
    ws.put("big.txt", &"x".repeat(2000));
    let capped = ReadTool::new(FsSettings {
        max_file_bytes: 1000,
        ..FsSettings::default()
    });
    assert_refused(
        &ws.call(&capped, json!({"path": "big.txt"})).await,
        "more than the 1000 bytes",
    );
    std::fs::create_dir(ws.root().join("sub")).expect("dir");
    assert_refused(
        &ws.call(&read_tool(), json!({"path": "sub"})).await,
        "is a directory",
    );
    assert_refused(
        &ws.call(&read_tool(), json!({"path": "nope.txt"})).await,
        "does not exist",
    );
    assert_refused(
        &ws.call(&read_tool(), json!({})).await,
        "invalid arguments for read",
    );
}

#[tokio::test]
async fn paths_outside_the_workspace_are_refused() {
    let ws = Ws::new();
    let out = ws
        .call(&read_tool(), json!({"path": "../outside/secret.txt"}))
        .await;
    assert_refused(&out, "contains \"..\"");
    let out = ws
        .call(&read_tool(), json!({"path": "a/../../outside/secret.txt"}))
        .await;
    assert_refused(&out, "contains \"..\"");
    let secret = ws.outside().join("secret.txt");
    let out = ws
        .call(&read_tool(), json!({"path": secret.to_string_lossy()}))
        .await;
    assert_refused(&out, "is outside the workspace");
    let out = ws.call(&read_tool(), json!({"path": "/etc/passwd"})).await;
    assert_refused(&out, "is outside the workspace");
    let out = ws
        .call(&LsTool::new(FsSettings::default()), json!({"path": ".."}))
        .await;
    assert_refused(&out, "contains \"..\"");
    let out = ws
        .call(
            &WriteTool::new(FsSettings::default()),
            json!({"path": "../outside/new.txt", "content": "x"}),
        )
        .await;
    assert_refused(&out, "contains \"..\"");
    assert!(!ws.outside().join("new.txt").exists());
}

#[cfg(unix)]
#[tokio::test]
async fn symbolic_links_out_of_the_workspace_are_not_followed() {
    let ws = Ws::new();
    symlink(Path::new("/etc"), &ws.root().join("etc"));
    symlink(
        &ws.outside().join("secret.txt"),
        &ws.root().join("secret-link"),
    );
    symlink(&ws.outside(), &ws.root().join("out"));
    let out = ws.call(&read_tool(), json!({"path": "etc/passwd"})).await;
    assert_refused(&out, "through a symbolic link");
    assert!(!out.text.contains("root:"), "{}", out.text);
    let out = ws.call(&read_tool(), json!({"path": "secret-link"})).await;
    assert_refused(&out, "through a symbolic link");
    let out = ws
        .call(&LsTool::new(FsSettings::default()), json!({"path": "out"}))
        .await;
    assert_refused(&out, "through a symbolic link");
    // Writing into a linked directory would land outside: refused.
    let out = ws
        .call(
            &WriteTool::new(FsSettings::default()),
            json!({"path": "out/planted.txt", "content": "x"}),
        )
        .await;
    assert_refused(&out, "through a symbolic link");
    assert!(!ws.outside().join("planted.txt").exists());
    // Writing over a link that points out is refused too.
    let out = ws
        .call(
            &WriteTool::new(FsSettings::default()),
            json!({"path": "secret-link", "content": "mine"}),
        )
        .await;
    assert_refused(&out, "through a symbolic link");
    assert_eq!(
        std::fs::read_to_string(ws.outside().join("secret.txt")).expect("read"),
        "SECRET-OUTSIDE"
    );
    // A link that stays inside is followed.
    ws.put("real/a.txt", "inside");
    symlink(Path::new("real"), &ws.root().join("alias"));
    let out = ws.call(&read_tool(), json!({"path": "alias/a.txt"})).await;
    assert_eq!(out, ToolOutput::ok("inside"));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_swapped_in_during_reads_never_reaches_outside() {
    let ws = Ws::new();
    let root = ws.root();
    let secret = ws.outside().join("secret.txt");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Swaps "target" between a file inside and a link to the secret, each
    // swap one atomic rename.
    let swapper = {
        let stop = stop.clone();
        let root = root.clone();
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tmp = root.join(".swap");
                let _ = std::fs::remove_file(&tmp);
                if swaps.is_multiple_of(2) {
                    std::os::unix::fs::symlink(&secret, &tmp).expect("link");
                } else {
                    std::fs::write(&tmp, "inside").expect("file");
                }
                std::fs::rename(&tmp, root.join("target")).expect("swap");
                swaps += 1;
            }
            swaps
        })
    };
    let tool = read_tool();
    let (mut inside, mut refused) = (0, 0);
    // Until both states were met many times (a loaded machine swaps slowly).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while (inside < 200 || refused < 200) && std::time::Instant::now() < deadline {
        let out = ws.call(&tool, json!({"path": "target"})).await;
        assert!(
            !out.text.contains("SECRET"),
            "read through a swapped link: {}",
            out.text
        );
        if out.is_error {
            refused += 1;
        } else {
            assert_eq!(out.text, "inside");
            inside += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");
    assert!(
        inside > 0 && refused > 0,
        "both states were seen: {inside} reads, {refused} refusals, {swaps} swaps"
    );
}

#[tokio::test]
async fn write_creates_directories_replaces_whole_files_and_has_a_cap() {
    let ws = Ws::new();
    let write = WriteTool::new(FsSettings {
        max_write_bytes: 100,
        ..FsSettings::default()
    });
    let out = ws
        .call(&write, json!({"path": "a/b/c.txt", "content": "hello"}))
        .await;
    assert_eq!(out, ToolOutput::ok("Wrote 5 bytes to a/b/c.txt"));
    assert_eq!(
        std::fs::read_to_string(ws.root().join("a/b/c.txt")).expect("read"),
        "hello"
    );
    let out = ws
        .call(&write, json!({"path": "a/b/c.txt", "content": "bye"}))
        .await;
    assert!(!out.is_error);
    assert_eq!(
        std::fs::read_to_string(ws.root().join("a/b/c.txt")).expect("read"),
        "bye"
    );
    let out = ws
        .call(
            &write,
            json!({"path": "a/b/c.txt", "content": "x".repeat(101)}),
        )
        .await;
    assert_refused(&out, "more than the 100 bytes");
    assert_eq!(
        std::fs::read_to_string(ws.root().join("a/b/c.txt")).expect("read"),
        "bye"
    );
    let out = ws
        .call(&write, json!({"path": "a/b", "content": "x"}))
        .await;
    assert_refused(&out, "is a directory");
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(ws.root().join("a/b"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["c.txt"]);
}

#[cfg(unix)]
#[tokio::test]
async fn write_keeps_the_mode_of_the_file_it_replaces() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Ws::new();
    ws.put("run.sh", "#!/bin/sh\n");
    std::fs::set_permissions(
        ws.root().join("run.sh"),
        std::fs::Permissions::from_mode(0o750),
    )
    .expect("chmod");
    let out = ws
        .call(
            &WriteTool::new(FsSettings::default()),
            json!({"path": "run.sh", "content": "#!/bin/sh\necho\n"}),
        )
        .await;
    assert!(!out.is_error, "{out:?}");
    let mode = std::fs::metadata(ws.root().join("run.sh"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o750);
}

#[tokio::test]
async fn edit_replaces_unique_text_and_explains_what_it_cannot() {
    let ws = Ws::new();
    let edit = EditTool::new(FsSettings::default());
    ws.put("a.rs", "fn a() {}\nfn b() {}\nfn b2() {}\n");
    let out = ws
        .call(
            &edit,
            json!({"path": "a.rs", "edits": [
                {"oldText": "fn a() {}", "newText": "fn a() { 1 }"},
                {"oldText": "fn b2", "newText": "fn c"}
            ]}),
        )
        .await;
    assert_eq!(out, ToolOutput::ok("Edited a.rs: 2 replacements"));
    assert_eq!(
        std::fs::read_to_string(ws.root().join("a.rs")).expect("read"),
        "fn a() { 1 }\nfn b() {}\nfn c() {}\n"
    );
    let out = ws
        .call(
            &edit,
            json!({"path": "a.rs", "edits": [{"oldText": "fn ", "newText": "pub fn "}]}),
        )
        .await;
    assert_refused(&out, "occurs 3 times");
    let out = ws
        .call(
            &edit,
            json!({"path": "a.rs", "edits": [{"oldText": "nothing", "newText": ""}]}),
        )
        .await;
    assert_refused(&out, "was not found");
    let out = ws
        .call(
            &edit,
            json!({"path": "a.rs", "edits": [
                {"oldText": "fn b() {}", "newText": ""},
                {"oldText": "{}\nfn c", "newText": ""}
            ]}),
        )
        .await;
    assert_refused(&out, "overlap");
    // The older single-replacement form.
    let out = ws
        .call(
            &edit,
            json!({"path": "a.rs", "oldText": "fn c", "newText": "fn d"}),
        )
        .await;
    assert!(!out.is_error, "{out:?}");
    assert!(std::fs::read_to_string(ws.root().join("a.rs"))
        .expect("read")
        .contains("fn d()"));
    // A CRLF file is matched with the model's LF text and keeps its endings.
    ws.put("w.txt", "one\r\ntwo\r\n");
    let out = ws
        .call(
            &edit,
            json!({"path": "w.txt", "edits": [{"oldText": "one\ntwo", "newText": "1\n2"}]}),
        )
        .await;
    assert!(!out.is_error, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(ws.root().join("w.txt")).expect("read"),
        "1\r\n2\r\n"
    );
}

#[tokio::test]
async fn ls_lists_in_byte_order_with_pages() {
    let ws = Ws::new();
    for name in ["b.txt", "a.txt", ".hidden", "Z.txt"] {
        ws.put(name, "x");
    }
    std::fs::create_dir(ws.root().join("dir")).expect("dir");
    let ls = LsTool::new(FsSettings::default());
    let out = ws.call(&ls, json!({})).await;
    assert_eq!(
        out.text,
        "\".hidden\"\n\"Z.txt\"\n\"a.txt\"\n\"b.txt\"\n\"dir/\""
    );
    let out = ws.call(&ls, json!({"limit": 2})).await;
    assert_eq!(
        out.text,
        "\".hidden\"\n\"Z.txt\"\n\n[More entries. Continue with the same path and after=\"Z.txt\".]"
    );
    let out = ws.call(&ls, json!({"limit": 2, "after": "Z.txt"})).await;
    assert!(out.text.starts_with("\"a.txt\"\n\"b.txt\""), "{}", out.text);
    let out = ws.call(&ls, json!({"path": "dir"})).await;
    assert_eq!(out.text, "(empty directory)");
}
