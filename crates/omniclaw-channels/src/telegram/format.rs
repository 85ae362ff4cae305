//! Models write Markdown; Telegram shows its own subset of HTML. The
//! Markdown is parsed with `pulldown-cmark` (CommonMark with strikethrough
//! and task lists) and written as that subset only: `b` (bold, headings),
//! `i`, `s`, `code`, `pre` (with the fence's language as
//! `class="language-…"`), `a href` for `http`, `https` and `tg` links, and
//! `blockquote`. Everything else is text, escaped: raw HTML in the model's
//! output is shown as what it is and never reaches Telegram as markup;
//! a link to any other scheme is its label followed by the address.
//!
//! A long answer is cut into messages on the rendered text, not on the
//! Markdown: cuts fall on paragraph (or line) breaks, tags open at a cut
//! are closed at the end of one message and opened again at the start of
//! the next, and text is escaped after it is cut, so no message ever holds
//! half a tag or half an entity. Each message also carries its plain text
//! (what it shows, link addresses included), which the sender uses when
//! Telegram still refuses the HTML ("can't parse entities").

use pulldown_cmark::{CodeBlockKind, Event, LinkType, Options, Parser, Tag as MdTag, TagEnd};

/// One message of an answer: Telegram HTML, and the same text plain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub html: String,
    pub plain: String,
}

/// Telegram HTML for a Markdown text, in one piece.
pub fn to_html(markdown: &str) -> String {
    render(&[], &tokens(markdown)).html
}

/// Cuts an answer into messages whose text (plain and as Telegram counts
/// the HTML's) is at most `max` characters: on the last paragraph break
/// that fits when `paragraphs` is set, else on the last line break, else
/// on a space, else anywhere between two characters.
pub fn parts(markdown: &str, max: usize, paragraphs: bool) -> Vec<Part> {
    let chunks = chunk(tokens(markdown), max.max(1), paragraphs);
    let mut out: Vec<Part> = chunks
        .iter()
        .map(|(open, toks)| render(open, toks))
        // Telegram refuses a message that shows nothing.
        .filter(|p| !p.plain.trim().is_empty() && !p.html.trim().is_empty())
        .collect();
    if out.is_empty() {
        out.push(Part {
            html: String::new(),
            plain: String::new(),
        });
    }
    out
}

/// The tags Telegram's HTML has that Markdown produces.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tag {
    Bold,
    Italic,
    Strike,
    Code,
    /// A code block, with its language when the fence names a plain one.
    Pre(Option<String>),
    Link(String),
    Quote,
}

impl Tag {
    fn open(&self) -> String {
        match self {
            Tag::Bold => "<b>".into(),
            Tag::Italic => "<i>".into(),
            Tag::Strike => "<s>".into(),
            Tag::Code => "<code>".into(),
            Tag::Pre(None) => "<pre>".into(),
            Tag::Pre(Some(lang)) => format!("<pre><code class=\"language-{lang}\">"),
            Tag::Link(url) => format!("<a href=\"{}\">", escape(url)),
            Tag::Quote => "<blockquote>".into(),
        }
    }

    fn close(&self) -> &'static str {
        match self {
            Tag::Bold => "</b>",
            Tag::Italic => "</i>",
            Tag::Strike => "</s>",
            Tag::Code => "</code>",
            Tag::Pre(None) => "</pre>",
            Tag::Pre(Some(_)) => "</code></pre>",
            Tag::Link(_) => "</a>",
            Tag::Quote => "</blockquote>",
        }
    }
}

/// The rendered answer as a flat stream, which is what gets cut.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open(Tag),
    Close,
    /// Text as shown, not yet escaped, without line breaks.
    Text(String),
    /// Shown in the plain text only (a link's address after its label).
    PlainOnly(String),
    Break(Break),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Break {
    Line,
    Paragraph,
}

impl Break {
    fn text(self) -> &'static str {
        match self {
            Break::Line => "\n",
            Break::Paragraph => "\n\n",
        }
    }
}

/// Escapes text for Telegram's HTML (it knows these four entities).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A link target Telegram may open: `http`, `https` or `tg`, with no
/// spaces or control characters in it.
fn linkable(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    ["http://", "https://", "tg://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len())
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A fence's language when it is a plain name (`rust`, `c++`, `objective-c`).
fn language(info: &str) -> Option<String> {
    let lang = info.split_whitespace().next()?;
    lang.chars()
        .all(|c| c.is_ascii_alphanumeric() || "+-_#.".contains(c))
        .then(|| lang.to_string())
}

/// Parser events to tokens.
#[derive(Default)]
struct Tokens {
    out: Vec<Token>,
    /// Line breaks owed before the next thing shown (blocks are
    /// separated lazily, so none trails the answer or leads a quote's end).
    pending: usize,
    /// Whether anything has been shown yet (no break leads the answer).
    shown: bool,
    /// Open lists: the next number of an ordered one.
    lists: Vec<Option<u64>>,
    /// Open links: the address to show after the label when the link is
    /// not kept as one (or is, and the label is not the address), and
    /// where its label starts in `out`.
    links: Vec<(Option<String>, bool, usize)>,
    /// The text of the code block being read.
    code: Option<(Option<String>, String)>,
}

impl Tokens {
    fn owe(&mut self, brk: Break) {
        self.pending = self.pending.max(brk.text().len());
    }

    fn block_end(&mut self) {
        let brk = if self.lists.is_empty() {
            Break::Paragraph
        } else {
            Break::Line
        };
        self.owe(brk);
    }

    /// Pays an owed break before something is shown.
    fn settle(&mut self) {
        let mut owed = std::mem::take(&mut self.pending);
        if !self.shown {
            return;
        }
        while owed > 0 {
            let brk = if owed >= 2 {
                Break::Paragraph
            } else {
                Break::Line
            };
            owed -= brk.text().len();
            self.out.push(Token::Break(brk));
        }
    }

    fn open(&mut self, tag: Tag) {
        self.settle();
        self.out.push(Token::Open(tag));
    }

    fn text(&mut self, text: &str) {
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                self.pending += 1;
            }
            if !line.is_empty() {
                self.settle();
                self.shown = true;
                self.out.push(Token::Text(line.to_string()));
            }
        }
    }

    fn event(&mut self, event: Event<'_>) {
        if let Some((_, code)) = self.code.as_mut() {
            match event {
                Event::Text(t) => code.push_str(&t),
                Event::End(TagEnd::CodeBlock) => self.code_block(),
                _ => {}
            }
            return;
        }
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(end) => self.end(end),
            Event::Text(t) => self.text(&t),
            Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                self.open(Tag::Code);
                self.text(&t);
                self.out.push(Token::Close);
            }
            // Raw HTML is shown as what it is: text.
            Event::Html(t) | Event::InlineHtml(t) => self.text(&t),
            Event::FootnoteReference(name) => self.text(&format!("[^{name}]")),
            Event::SoftBreak | Event::HardBreak => self.pending += 1,
            Event::Rule => {
                self.text("———");
                self.block_end();
            }
            Event::TaskListMarker(done) => self.text(if done { "☑ " } else { "☐ " }),
        }
    }

    fn start(&mut self, tag: MdTag<'_>) {
        match tag {
            MdTag::Heading { .. } => self.open(Tag::Bold),
            MdTag::BlockQuote(_) => self.open(Tag::Quote),
            MdTag::CodeBlock(kind) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => language(&info),
                    CodeBlockKind::Indented => None,
                };
                self.code = Some((lang, String::new()));
            }
            MdTag::List(first) => {
                if self.lists.is_empty() {
                    self.owe(Break::Paragraph);
                } else {
                    self.owe(Break::Line);
                }
                self.lists.push(first);
            }
            MdTag::Item => {
                self.owe(Break::Line);
                let depth = self.lists.len().saturating_sub(1);
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => "• ".to_string(),
                };
                self.text(&format!("{}{marker}", "  ".repeat(depth)));
            }
            MdTag::Emphasis => self.open(Tag::Italic),
            MdTag::Strong => self.open(Tag::Bold),
            MdTag::Strikethrough => self.open(Tag::Strike),
            MdTag::Link {
                link_type,
                dest_url,
                ..
            }
            | MdTag::Image {
                link_type,
                dest_url,
                ..
            } => {
                let url = dest_url.to_string();
                let keep = link_type != LinkType::Email && linkable(&url);
                if keep {
                    self.open(Tag::Link(url.clone()));
                }
                self.links.push((Some(url), keep, self.out.len()));
            }
            _ => {}
        }
    }

    fn end(&mut self, end: TagEnd) {
        match end {
            TagEnd::Paragraph | TagEnd::HtmlBlock | TagEnd::Table | TagEnd::TableRow => {
                self.block_end();
            }
            TagEnd::TableCell => self.text(" "),
            TagEnd::Heading(_) => {
                self.out.push(Token::Close);
                self.block_end();
            }
            TagEnd::BlockQuote(_) => {
                self.out.push(Token::Close);
                self.block_end();
            }
            TagEnd::List(_) => {
                self.lists.pop();
                self.block_end();
            }
            TagEnd::Item => self.owe(Break::Line),
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => {
                self.out.push(Token::Close);
            }
            TagEnd::Link | TagEnd::Image => {
                let Some((Some(url), keep, from)) = self.links.pop() else {
                    return;
                };
                let label: String = self.out[from..]
                    .iter()
                    .filter_map(|t| match t {
                        Token::Text(t) => Some(t.as_str()),
                        _ => None,
                    })
                    .collect();
                if keep {
                    self.out.push(Token::Close);
                }
                if label.trim() == url.trim() || url.is_empty() {
                    return;
                }
                let shown = if label.trim().is_empty() {
                    url
                } else {
                    format!(" ({url})")
                };
                if keep {
                    self.out.push(Token::PlainOnly(shown));
                } else {
                    self.text(&shown);
                }
            }
            _ => {}
        }
    }

    fn code_block(&mut self) {
        let Some((lang, code)) = self.code.take() else {
            return;
        };
        let code = code.strip_suffix('\n').unwrap_or(&code).to_string();
        self.open(Tag::Pre(lang));
        // An empty block still shows (Telegram refuses an empty entity).
        self.text(if code.is_empty() { " " } else { &code });
        self.out.push(Token::Close);
        self.block_end();
    }
}

fn tokens(markdown: &str) -> Vec<Token> {
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut tokens = Tokens::default();
    for event in Parser::new_ext(markdown, options) {
        tokens.event(event);
    }
    tokens.out
}

fn len(token: &Token) -> usize {
    match token {
        Token::Text(t) | Token::PlainOnly(t) => t.chars().count(),
        Token::Break(b) => b.text().len(),
        Token::Open(_) | Token::Close => 0,
    }
}

/// Where a chunk may end: before the break at `at`, with `open` the tags
/// open there.
struct Cut {
    at: usize,
    open: Vec<Tag>,
}

/// Cuts the stream into chunks of at most `max` characters shown, each
/// with the tags open where it starts.
fn chunk(tokens: Vec<Token>, max: usize, paragraphs: bool) -> Vec<(Vec<Tag>, Vec<Token>)> {
    let mut out = Vec::new();
    let mut queue: std::collections::VecDeque<Token> = tokens.into();
    let mut start: Vec<Tag> = Vec::new();
    let mut open: Vec<Tag> = Vec::new();
    let mut cur: Vec<Token> = Vec::new();
    let mut size = 0usize;
    let mut last_para: Option<Cut> = None;
    let mut last_break: Option<Cut> = None;
    while let Some(token) = queue.pop_front() {
        match &token {
            Token::Open(tag) => open.push(tag.clone()),
            Token::Close => {
                open.pop();
            }
            // Nothing starts a chunk with a break.
            Token::Break(_) if size == 0 => continue,
            Token::Break(brk) => {
                let cut = Cut {
                    at: cur.len(),
                    open: open.clone(),
                };
                if *brk == Break::Paragraph {
                    last_para = Some(Cut {
                        at: cut.at,
                        open: cut.open.clone(),
                    });
                }
                last_break = Some(cut);
            }
            Token::Text(_) | Token::PlainOnly(_) => {}
        }
        let n = len(&token);
        // A link's address for the plain text is left out where it does
        // not fit: the link itself is in the HTML.
        if matches!(token, Token::PlainOnly(_)) && size + n > max {
            continue;
        }
        if size + n <= max {
            size += n;
            cur.push(token);
            continue;
        }
        let cut = if paragraphs {
            last_para.take().or(last_break.take())
        } else {
            last_break.take()
        };
        // A break that does not fit is where this chunk ends.
        let cut = match (&token, cut) {
            (Token::Break(_), _) => Some(Cut {
                at: cur.len(),
                open: open.clone(),
            }),
            (_, cut) => cut,
        };
        match (cut, &token) {
            (Some(cut), _) => {
                let rest: Vec<Token> = cur.drain(cut.at..).skip(1).collect();
                if !matches!(token, Token::Break(_)) {
                    queue.push_front(token);
                }
                for t in rest.into_iter().rev() {
                    queue.push_front(t);
                }
                out.push((std::mem::replace(&mut start, cut.open.clone()), cur));
                open = cut.open;
            }
            (None, Token::Text(text)) if size < max => {
                // No break fits: a space, or else anywhere, in this text.
                let room = max - size;
                let end = text.char_indices().nth(room).map_or(text.len(), |(i, _)| i);
                let at = text[..end].rfind(' ').filter(|&at| at > 0).unwrap_or(end);
                cur.push(Token::Text(text[..at].to_string()));
                let tail = text[at..].trim_start_matches(' ');
                if !tail.is_empty() {
                    queue.push_front(Token::Text(tail.to_string()));
                }
                out.push((std::mem::replace(&mut start, open.clone()), cur));
            }
            (None, _) => {
                // Full to the last character: the text starts the next one.
                queue.push_front(token);
                out.push((std::mem::replace(&mut start, open.clone()), cur));
            }
        }
        cur = Vec::new();
        size = 0;
        last_para = None;
        last_break = None;
    }
    if !cur.is_empty() {
        out.push((start, cur));
    }
    out
}

/// Writes a chunk: the tags open at its start opened again (each only once
/// something is shown inside it, so no empty element is sent), every tag
/// still open at its end closed.
fn render(start: &[Tag], tokens: &[Token]) -> Part {
    let mut html = String::new();
    let mut plain = String::new();
    // Open tags, and whether each has been written yet.
    let mut open: Vec<(Tag, bool)> = start.iter().map(|t| (t.clone(), false)).collect();
    let show = |open: &mut Vec<(Tag, bool)>, html: &mut String| {
        for (tag, written) in open.iter_mut() {
            if !*written {
                html.push_str(&tag.open());
                *written = true;
            }
        }
    };
    for token in tokens {
        match token {
            Token::Open(tag) => open.push((tag.clone(), false)),
            Token::Close => {
                if let Some((tag, true)) = open.pop() {
                    html.push_str(tag.close());
                }
            }
            Token::Text(text) => {
                show(&mut open, &mut html);
                html.push_str(&escape(text));
                plain.push_str(text);
            }
            Token::Break(brk) => {
                show(&mut open, &mut html);
                html.push_str(brk.text());
                plain.push_str(brk.text());
            }
            Token::PlainOnly(text) => plain.push_str(text),
        }
    }
    for (tag, written) in open.iter().rev() {
        if *written {
            html.push_str(tag.close());
        }
    }
    Part { html, plain }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_telegram_html() {
        fn check(md: &str, html: &str) {
            assert_eq!(to_html(md), html, "{md:?}");
        }
        check("plain <b> & text", "plain &lt;b&gt; &amp; text");
        check(
            "**bold** and *it* and _it_",
            "<b>bold</b> and <i>it</i> and <i>it</i>",
        );
        check("***both***", "<i><b>both</b></i>");
        check("a snake_case_name stays", "a snake_case_name stays");
        check("~~gone~~ `x < 1`", "<s>gone</s> <code>x &lt; 1</code>");
        check("`**not bold**`", "<code>**not bold**</code>");
        check(
            "[docs](https://example.org/a?b=1&c=2)",
            "<a href=\"https://example.org/a?b=1&amp;c=2\">docs</a>",
        );
        check(
            "[chat](tg://resolve?domain=x) <https://example.org>",
            "<a href=\"tg://resolve?domain=x\">chat</a> <a href=\"https://example.org\">https://example.org</a>",
        );
        check(
            "[x](https://a.example/\"onclick=\"y)",
            "<a href=\"https://a.example/&quot;onclick=&quot;y\">x</a>",
        );
        check("[x](javascript:alert(1))", "x (javascript:alert(1))");
        check("[mail](mailto:a@b.example)", "mail (mailto:a@b.example)");
        check(
            "![logo](https://example.org/l.png)",
            "<a href=\"https://example.org/l.png\">logo</a>",
        );
        check(
            "# Title\n- one\n- **two**\n  - nested",
            "<b>Title</b>\n\n• one\n• <b>two</b>\n  • nested",
        );
        check("1. first\n2. second", "1. first\n2. second");
        check("3. three\n4. four", "3. three\n4. four");
        check("- [x] done\n- [ ] todo", "• ☑ done\n• ☐ todo");
        check(
            "```rust\nlet a = 1 < 2;\n```\nafter",
            "<pre><code class=\"language-rust\">let a = 1 &lt; 2;</code></pre>\n\nafter",
        );
        check("```\nplain\n```", "<pre>plain</pre>");
        check("```\"><script>\nx\n```", "<pre>x</pre>");
        check("    indented\n    code", "<pre>indented\ncode</pre>");
        check("> quoted\n> more", "<blockquote>quoted\nmore</blockquote>");
        check(
            "> **a**\n\nafter",
            "<blockquote><b>a</b></blockquote>\n\nafter",
        );
        check("one\ntwo\n\nthree", "one\ntwo\n\nthree");
        check("2 * 3 * 4", "2 * 3 * 4");
        check("unclosed **bold", "unclosed **bold");
        check("a\n\n---\n\nb", "a\n\n———\n\nb");
        // Raw HTML is text, inline and as a block.
        check(
            "hi <b onclick=x>there</b> &amp; you",
            "hi &lt;b onclick=x&gt;there&lt;/b&gt; &amp; you",
        );
        check(
            "<div>\n<script>alert(1)</script>\n</div>",
            "&lt;div&gt;\n&lt;script&gt;alert(1)&lt;/script&gt;\n&lt;/div&gt;",
        );
        check("`<pre>`", "<code>&lt;pre&gt;</code>");
        check("5 > 3 & \"q\"", "5 &gt; 3 &amp; &quot;q&quot;");
        check("", "");
    }

    #[test]
    fn parts_are_cut_on_breaks_with_their_plain_text() {
        fn check(md: &str, max: usize, paragraphs: bool, expected: &[(&str, &str)]) {
            let got: Vec<(String, String)> = parts(md, max, paragraphs)
                .into_iter()
                .map(|p| (p.html, p.plain))
                .collect();
            let expected: Vec<(String, String)> = expected
                .iter()
                .map(|(h, p)| (h.to_string(), p.to_string()))
                .collect();
            assert_eq!(got, expected, "{md:?} at {max}");
        }
        check("short", 10, true, &[("short", "short")]);
        check(
            "first para\n\nsecond para",
            15,
            true,
            &[("first para", "first para"), ("second para", "second para")],
        );
        // Paragraphs first, when asked.
        check(
            "aa\n\nbb\ncc",
            8,
            true,
            &[("aa", "aa"), ("bb\ncc", "bb\ncc")],
        );
        check(
            "aa\n\nbb\ncc",
            8,
            false,
            &[("aa\n\nbb", "aa\n\nbb"), ("cc", "cc")],
        );
        // A bold span cut at a line break is closed and opened again.
        check(
            "**one\ntwo**",
            5,
            true,
            &[("<b>one</b>", "one"), ("<b>two</b>", "two")],
        );
        // An entity is never cut: the text is escaped after the cut.
        check("a<b c&d", 4, true, &[("a&lt;b", "a<b"), ("c&amp;d", "c&d")]);
        // No break nor space: cut between characters.
        check(
            "abcdefgh",
            3,
            true,
            &[("abc", "abc"), ("def", "def"), ("gh", "gh")],
        );
        // A link's address counts, for the plain fallback.
        check(
            "[x](https://e.example) y",
            30,
            true,
            &[(
                "<a href=\"https://e.example\">x</a> y",
                "x (https://e.example) y",
            )],
        );
        check("", 10, true, &[("", "")]);
    }

    #[test]
    fn every_prefix_of_a_streamed_answer_is_cut() {
        let text = omniclaw_agent::double::six_paragraphs();
        for end in (0..=text.len()).filter(|&e| text.is_char_boundary(e)) {
            for paragraphs in [true, false] {
                let got = parts(&text[..end], 4000, paragraphs);
                assert_eq!(got.len(), 1, "{end}");
            }
        }
    }

    #[test]
    fn a_code_block_cut_in_two_is_closed_and_reopened() {
        let code: String = (0..200).map(|i| format!("line {i} < {i}\n")).collect();
        let md = format!("Intro\n\n```python\n{code}```\n\nOutro");
        let parts = parts(&md, 500, true);
        assert!(parts.len() > 2);
        for p in &parts {
            assert!(
                p.plain.chars().count() <= 500,
                "{}",
                p.plain.chars().count()
            );
            assert_eq!(
                p.html.matches("<pre").count(),
                p.html.matches("</pre>").count(),
                "balanced in {:?}",
                p.html
            );
            assert!(!p.html.ends_with('&'));
        }
        assert_eq!(parts[0].html, "Intro");
        assert!(parts[1]
            .html
            .starts_with("<pre><code class=\"language-python\">line 0 &lt; 0\n"));
        assert!(parts[2]
            .html
            .starts_with("<pre><code class=\"language-python\">line "));
        let all: String = parts
            .iter()
            .map(|p| p.plain.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        for i in [0, 100, 199] {
            assert!(all.contains(&format!("line {i} < {i}\n")), "line {i}");
        }
        assert!(all.ends_with("Outro"));
    }

    #[test]
    fn every_part_is_balanced_html_within_the_limit() {
        // A mix of everything, cut at many sizes.
        let md = "# Head & <tail>\n\nSome **bold text that runs on\nacross lines** and \
                  *italic [a link](https://example.org/?a=1&b=2) inside*.\n\n> a quote\n> \
                  with `code & more`\n\n- item one\n- item ~~two~~\n\n```sh\necho \"<x>\"\n\
                  ls -la\n```\n\nThe end.";
        for max in [1, 2, 5, 8, 13, 21, 34, 55, 89, 400] {
            for paragraphs in [true, false] {
                let parts = parts(md, max, paragraphs);
                for p in &parts {
                    assert!(p.plain.chars().count() <= max, "{max}: {:?}", p.plain);
                    // Tags balance, in order, and no entity is cut.
                    let mut stack = Vec::new();
                    let mut rest = p.html.as_str();
                    while let Some(at) = rest.find(['<', '&']) {
                        rest = &rest[at..];
                        if rest.starts_with('&') {
                            let ok = ["&amp;", "&lt;", "&gt;", "&quot;"]
                                .iter()
                                .any(|e| rest.starts_with(e));
                            assert!(ok, "{max}: cut entity in {:?}", p.html);
                            rest = &rest[1..];
                            continue;
                        }
                        let end = rest.find('>').expect("tag closes");
                        let tag = &rest[1..end];
                        let name = tag.split([' ', '/']).find(|s| !s.is_empty()).unwrap_or("");
                        if tag.starts_with('/') {
                            assert_eq!(stack.pop(), Some(name.to_string()), "{:?}", p.html);
                        } else {
                            stack.push(name.to_string());
                        }
                        rest = &rest[end + 1..];
                    }
                    assert!(stack.is_empty(), "{max}: unclosed in {:?}", p.html);
                }
                let shown: String = parts.iter().map(|p| shown(&p.html)).collect();
                assert_eq!(
                    shown,
                    self::shown(&to_html(md)),
                    "{max}/{paragraphs}: nothing lost"
                );
            }
        }
    }

    /// What Telegram shows of some HTML, without spaces and breaks (which
    /// cuts drop).
    fn shown(html: &str) -> String {
        let mut out = String::new();
        let mut rest = html;
        while let Some(at) = rest.find('<') {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            rest = &rest[rest.find('>').map_or(rest.len(), |e| e + 1)..];
        }
        out.push_str(rest);
        out.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace(['\n', ' '], "")
    }
}
