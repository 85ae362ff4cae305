//! Markdown of untrusted text (model output) as a tree the page builds with
//! DOM calls: a closed set of tags, text as text, never HTML.
//!
//! The text is parsed with `pulldown-cmark` on this side; raw HTML in it
//! (blocks and inline tags alike) comes out as visible text, images as
//! their alt text, and only `http`, `https` and `mailto` links stay links
//! (the page opens them in the system browser through the app, never in
//! the web view). The page maps each [`Tag`] to an element and each text
//! to a text node, so nothing in a reply can become markup or script.

use pulldown_cmark::{Event, Options, Parser, Tag as MdTag, TagEnd};
use serde::Serialize;

/// An element of the rendered tree. The page knows exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tag {
    P,
    H1,
    H2,
    H3,
    H4,
    H5,
    H6,
    Blockquote,
    Pre,
    Code,
    Ul,
    Ol,
    Li,
    Em,
    Strong,
    Del,
    A,
    Hr,
    Br,
    Table,
    Thead,
    Tr,
    Th,
    Td,
    Span,
}

/// A node: text, or an element with children.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Node {
    Text(String),
    El(El),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct El {
    pub tag: Tag,
    /// A link's target (`a` only): an absolute `http`, `https` or
    /// `mailto` URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// The first number of an ordered list that does not start at 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    #[serde(rename = "c", skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Node>,
}

impl El {
    fn new(tag: Tag) -> El {
        El {
            tag,
            href: None,
            start: None,
            children: Vec::new(),
        }
    }
}

/// `url` when the page may offer it as a link to open in the browser.
pub fn safe_link(url: &str) -> Option<String> {
    let parsed = tauri::Url::parse(url.trim()).ok()?;
    matches!(parsed.scheme(), "http" | "https" | "mailto").then(|| parsed.to_string())
}

/// Renders `text` as Markdown into block nodes.
pub fn render(text: &str) -> Vec<Node> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut builder = Builder::default();
    for event in Parser::new_ext(text, options) {
        builder.event(event);
    }
    builder.finish()
}

/// The text of `text` read as Markdown, without its marks (raw HTML stays
/// as written): for one-line previews.
pub fn plain_text(text: &str) -> String {
    fn walk(nodes: &[Node], out: &mut String) {
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::El(el) => {
                    walk(&el.children, out);
                    out.push(' ');
                }
            }
        }
    }
    let mut out = String::new();
    walk(&render(text), &mut out);
    out
}

/// Builds the tree from parser events with a stack of open elements.
#[derive(Default)]
struct Builder {
    /// Open elements; `None` marks a parser tag that adds no element of
    /// its own (an image's alt text, a dropped link) but still closes.
    stack: Vec<Option<El>>,
    root: Vec<Node>,
    in_table_head: bool,
}

impl Builder {
    fn push(&mut self, node: Node) {
        match self.stack.iter_mut().rev().find_map(Option::as_mut) {
            Some(open) => open.children.push(node),
            None => self.root.push(node),
        }
    }

    fn text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        // Adjacent texts merge, so the page makes one node of them.
        let last = match self.stack.iter_mut().rev().find_map(Option::as_mut) {
            Some(open) => open.children.last_mut(),
            None => self.root.last_mut(),
        };
        match last {
            Some(Node::Text(t)) => t.push_str(text),
            _ => self.push(Node::Text(text.to_string())),
        }
    }

    fn open(&mut self, el: Option<El>) {
        self.stack.push(el);
    }

    fn close(&mut self) {
        if let Some(Some(el)) = self.stack.pop() {
            self.push(Node::El(el));
        }
    }

    fn leaf(&mut self, tag: Tag, text: &str) {
        let mut el = El::new(tag);
        if !text.is_empty() {
            el.children.push(Node::Text(text.to_string()));
        }
        self.push(Node::El(el));
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(end) => self.end(end),
            Event::Text(t) => self.text(&t),
            Event::Code(t) => self.leaf(Tag::Code, &t),
            Event::InlineMath(t) | Event::DisplayMath(t) => self.leaf(Tag::Code, &t),
            // Raw HTML is shown as what it is: text.
            Event::Html(t) | Event::InlineHtml(t) => self.text(&t),
            Event::FootnoteReference(name) => self.text(&format!("[^{name}]")),
            Event::SoftBreak => self.text("\n"),
            Event::HardBreak => self.push(Node::El(El::new(Tag::Br))),
            Event::Rule => self.push(Node::El(El::new(Tag::Hr))),
            Event::TaskListMarker(done) => self.text(if done { "☑ " } else { "☐ " }),
        }
    }

    fn start(&mut self, tag: MdTag<'_>) {
        use pulldown_cmark::HeadingLevel as L;
        let el = match tag {
            MdTag::Paragraph => El::new(Tag::P),
            MdTag::Heading { level, .. } => El::new(match level {
                L::H1 => Tag::H1,
                L::H2 => Tag::H2,
                L::H3 => Tag::H3,
                L::H4 => Tag::H4,
                L::H5 => Tag::H5,
                L::H6 => Tag::H6,
            }),
            MdTag::BlockQuote(_) => El::new(Tag::Blockquote),
            MdTag::CodeBlock(_) => {
                // <pre><code>…</code></pre>: the code element is opened as
                // a second level and closed with the block.
                self.open(Some(El::new(Tag::Pre)));
                El::new(Tag::Code)
            }
            MdTag::HtmlBlock => El::new(Tag::P),
            MdTag::List(Some(first)) => {
                let mut el = El::new(Tag::Ol);
                el.start = (first != 1).then_some(first);
                el
            }
            MdTag::List(None) => El::new(Tag::Ul),
            MdTag::Item => El::new(Tag::Li),
            MdTag::Emphasis => El::new(Tag::Em),
            MdTag::Strong => El::new(Tag::Strong),
            MdTag::Strikethrough => El::new(Tag::Del),
            MdTag::Link { dest_url, .. } => match safe_link(&dest_url) {
                Some(href) => {
                    let mut el = El::new(Tag::A);
                    el.href = Some(href);
                    el
                }
                // Not a link the browser should open: its text only.
                None => return self.open(None),
            },
            // Remote images are not loaded: the alt text stands in.
            MdTag::Image { .. } => return self.open(None),
            MdTag::Table(_) => El::new(Tag::Table),
            MdTag::TableHead => {
                self.in_table_head = true;
                self.open(Some(El::new(Tag::Thead)));
                El::new(Tag::Tr)
            }
            MdTag::TableRow => El::new(Tag::Tr),
            MdTag::TableCell => El::new(if self.in_table_head { Tag::Th } else { Tag::Td }),
            // Footnote definitions, definition lists, metadata and the
            // rest: a plain container, their text kept.
            _ => El::new(Tag::Span),
        };
        self.open(Some(el));
    }

    fn end(&mut self, end: TagEnd) {
        match end {
            TagEnd::CodeBlock => {
                self.close();
                self.close();
            }
            TagEnd::TableHead => {
                self.in_table_head = false;
                self.close();
                self.close();
            }
            _ => self.close(),
        }
    }

    fn finish(mut self) -> Vec<Node> {
        while !self.stack.is_empty() {
            self.close();
        }
        self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(markdown: &str, expected: serde_json::Value) {
        let got = serde_json::to_value(render(markdown)).expect("serialisable");
        assert_eq!(got, expected, "{markdown:?}");
    }

    #[test]
    fn markdown_becomes_a_tree_of_known_tags() {
        check("hello", json!([{"tag": "p", "c": ["hello"]}]));
        check(
            "# Title\n\nSome **bold** and *it* and `code`.",
            json!([
                {"tag": "h1", "c": ["Title"]},
                {"tag": "p", "c": ["Some ", {"tag": "strong", "c": ["bold"]}, " and ", {"tag": "em", "c": ["it"]}, " and ", {"tag": "code", "c": ["code"]}, "."]}
            ]),
        );
        check(
            "```rust\nfn main() {}\n```",
            json!([{"tag": "pre", "c": [{"tag": "code", "c": ["fn main() {}\n"]}]}]),
        );
        check(
            "3. three\n4. four",
            json!([{"tag": "ol", "start": 3, "c": [{"tag": "li", "c": ["three"]}, {"tag": "li", "c": ["four"]}]}]),
        );
        check(
            "- [x] done\n- [ ] todo",
            json!([{"tag": "ul", "c": [{"tag": "li", "c": ["☑ done"]}, {"tag": "li", "c": ["☐ todo"]}]}]),
        );
        check(
            "| a | b |\n|---|---|\n| 1 | 2 |",
            json!([{"tag": "table", "c": [
                {"tag": "thead", "c": [{"tag": "tr", "c": [{"tag": "th", "c": ["a"]}, {"tag": "th", "c": ["b"]}]}]},
                {"tag": "tr", "c": [{"tag": "td", "c": ["1"]}, {"tag": "td", "c": ["2"]}]}
            ]}]),
        );
        check(
            "a  \nb\n\n---",
            json!([{"tag": "p", "c": ["a", {"tag": "br"}, "b"]}, {"tag": "hr"}]),
        );
    }

    #[test]
    fn html_in_a_reply_stays_text() {
        check(
            "<script>alert(1)</script>",
            json!([{"tag": "p", "c": ["<script>alert(1)</script>"]}]),
        );
        check(
            "say <b onclick=\"x()\">hi</b> <img src=x onerror=alert(1)>",
            json!([{"tag": "p", "c": ["say <b onclick=\"x()\">hi</b> <img src=x onerror=alert(1)>"]}]),
        );
        check(
            "<div>\n<iframe src=\"https://example.com\"></iframe>\n</div>",
            json!([{"tag": "p", "c": ["<div>\n<iframe src=\"https://example.com\"></iframe>\n</div>"]}]),
        );
    }

    #[test]
    fn every_prefix_of_a_streamed_reply_renders() {
        // A reply is rendered again at every delta: each cut must work.
        let reply = "word <script>x</script> [the docs](https://example.com/docs?a=1) [bad](javascript:alert(1)) ![img](https://e/x.png) **bold end**\n\n| a |\n|---|\n| 1 |\n\n```\ncode";
        for (at, _) in reply.char_indices() {
            let _ = render(&reply[..at]);
        }
        check(
            "[bad](javascript:alert(1)) **end**",
            json!([{"tag": "p", "c": ["bad ", {"tag": "strong", "c": ["end"]}]}]),
        );
    }

    #[test]
    fn only_web_and_mail_links_stay_links() {
        check(
            "[site](https://example.com/a?b=1) [mail](mailto:a@example.com)",
            json!([{"tag": "p", "c": [
                {"tag": "a", "href": "https://example.com/a?b=1", "c": ["site"]},
                " ",
                {"tag": "a", "href": "mailto:a@example.com", "c": ["mail"]}
            ]}]),
        );
        for bad in [
            "[x](javascript:alert(1))",
            "[x](file:///etc/passwd)",
            "[x](/relative)",
            "[x](data:text/html,hi)",
        ] {
            check(bad, json!([{"tag": "p", "c": ["x"]}]));
        }
        check(
            "![a cat](https://example.com/cat.png)",
            json!([{"tag": "p", "c": ["a cat"]}]),
        );
        assert_eq!(safe_link(" http://h/ "), Some("http://h/".into()));
        assert_eq!(safe_link("vbscript:x"), None);
    }
}
