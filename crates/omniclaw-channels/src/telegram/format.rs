//! Models write Markdown; Telegram shows its own subset of HTML. This turns
//! one into the other (bold, italic, strike, inline code, fenced code
//! blocks with their language, links, headings as bold, quotes), escaping
//! everything else, and cuts a long answer into messages without leaving a
//! code block open across a cut. What Telegram still refuses ("can't parse
//! entities") is sent again as the plain text the model wrote: the sender
//! keeps that fallback, not this module.

use omniclaw_core::rescue::split_answer;

/// Escapes text for Telegram's HTML.
pub fn escape(text: &str) -> String {
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

/// Telegram HTML for a Markdown text.
pub fn to_html(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() + 32);
    let mut lines = markdown.split('\n').peekable();
    let mut first = true;
    let mut newline = |out: &mut String| {
        if !std::mem::take(&mut first) {
            out.push('\n');
        }
    };
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let lang = info.trim();
            let mut code = Vec::new();
            for inner in lines.by_ref() {
                if inner.trim_start().starts_with("```") {
                    break;
                }
                code.push(inner);
            }
            newline(&mut out);
            let class = if lang.is_empty()
                || !lang
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-_#.".contains(c))
            {
                String::new()
            } else {
                format!(" class=\"language-{lang}\"")
            };
            out.push_str(&format!(
                "<pre><code{class}>{}</code></pre>",
                escape(&code.join("\n"))
            ));
            continue;
        }
        if trimmed.starts_with('>') {
            let mut quoted = vec![trimmed.trim_start_matches('>').trim_start()];
            while let Some(next) = lines.peek() {
                let t = next.trim_start();
                if !t.starts_with('>') {
                    break;
                }
                quoted.push(t.trim_start_matches('>').trim_start());
                lines.next();
            }
            newline(&mut out);
            let body: Vec<String> = quoted.iter().map(|l| inline(l)).collect();
            out.push_str(&format!("<blockquote>{}</blockquote>", body.join("\n")));
            continue;
        }
        newline(&mut out);
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
            out.push_str(&format!("<b>{}</b>", inline(trimmed[hashes..].trim())));
        } else if let Some(item) = trimmed
            .strip_prefix("- ")
            .or_else(|| trimmed.strip_prefix("* "))
            .or_else(|| trimmed.strip_prefix("+ "))
        {
            let indent = &line[..line.len() - trimmed.len()];
            out.push_str(indent);
            out.push_str("• ");
            out.push_str(&inline(item));
        } else {
            out.push_str(&inline(line));
        }
    }
    out
}

/// Inline Markdown of one line.
fn inline(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // `code`: nothing inside is formatting.
        if c == '`' {
            if let Some(end) = find(&chars, i + 1, &['`']) {
                let code: String = chars[i + 1..end].iter().collect();
                out.push_str(&format!("<code>{}</code>", escape(&code)));
                i = end + 1;
                continue;
            }
        }
        // [text](url)
        if c == '[' {
            if let Some(close) = find(&chars, i + 1, &[']']) {
                if chars.get(close + 1) == Some(&'(') {
                    if let Some(end) = find(&chars, close + 2, &[')']) {
                        let label: String = chars[i + 1..close].iter().collect();
                        let url: String = chars[close + 2..end].iter().collect();
                        if url.starts_with("http://") || url.starts_with("https://") {
                            out.push_str(&format!(
                                "<a href=\"{}\">{}</a>",
                                escape(&url),
                                inline(&label)
                            ));
                            i = end + 1;
                            continue;
                        }
                    }
                }
            }
        }
        if let Some((html, next)) = emphasis(&chars, i) {
            out.push_str(&html);
            i = next;
            continue;
        }
        out.push_str(&escape(&c.to_string()));
        i += 1;
    }
    out
}

/// Bold, italic or strike starting at `i`: the HTML and where it ends.
fn emphasis(chars: &[char], i: usize) -> Option<(String, usize)> {
    let rest = &chars[i..];
    for (marker, tag) in [
        (&['*', '*'][..], "b"),
        (&['_', '_'][..], "b"),
        (&['~', '~'][..], "s"),
        (&['*'][..], "i"),
        (&['_'][..], "i"),
    ] {
        if !rest.starts_with(marker) {
            continue;
        }
        // `_` inside a word (snake_case) is not emphasis.
        if marker[0] == '_' && i > 0 && chars[i - 1].is_alphanumeric() {
            continue;
        }
        let start = i + marker.len();
        let Some(end) = find(chars, start, marker) else {
            continue;
        };
        if end == start || chars[start].is_whitespace() || chars[end - 1].is_whitespace() {
            continue;
        }
        if marker[0] == '_'
            && chars
                .get(end + marker.len())
                .is_some_and(|c| c.is_alphanumeric())
        {
            continue;
        }
        let inner: String = chars[start..end].iter().collect();
        return Some((
            format!("<{tag}>{}</{tag}>", inline(&inner)),
            end + marker.len(),
        ));
    }
    None
}

/// The index where `marker` next starts at or after `from`.
fn find(chars: &[char], from: usize, marker: &[char]) -> Option<usize> {
    (from..chars.len()).find(|&at| chars[at..].starts_with(marker))
}

/// Cuts an answer into messages of at most `max` characters (on
/// paragraph breaks first when `paragraphs` is set); a code block cut in
/// two is closed at the end of one part and opened again, with its
/// language, at the start of the next.
pub fn parts(markdown: &str, max: usize, paragraphs: bool) -> Vec<String> {
    // Room for the fence lines added at a cut.
    let room = max.saturating_sub(24).max(1);
    let mut out = Vec::new();
    let mut open: Option<String> = None;
    for piece in split_answer(markdown, room, paragraphs) {
        let mut text = match &open {
            Some(lang) => format!("```{lang}\n{piece}"),
            None => piece,
        };
        // Follow the fences as sent (a reopened one included).
        open = None;
        for line in text.lines() {
            if let Some(info) = line.trim_start().strip_prefix("```") {
                open = match open {
                    Some(_) => None,
                    None => Some(info.trim().to_string()),
                };
            }
        }
        if open.is_some() {
            text.push_str("\n```");
        }
        out.push(text);
    }
    out
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
        check("a snake_case_name stays", "a snake_case_name stays");
        check("~~gone~~ `x < 1`", "<s>gone</s> <code>x &lt; 1</code>");
        check(
            "[docs](https://example.org/a?b=1&c=2)",
            "<a href=\"https://example.org/a?b=1&amp;c=2\">docs</a>",
        );
        check("[x](javascript:alert)", "[x](javascript:alert)");
        check(
            "# Title\n- one\n- **two**",
            "<b>Title</b>\n• one\n• <b>two</b>",
        );
        check(
            "```rust\nlet a = 1 < 2;\n```\nafter",
            "<pre><code class=\"language-rust\">let a = 1 &lt; 2;</code></pre>\nafter",
        );
        check("> quoted\n> more", "<blockquote>quoted\nmore</blockquote>");
        check("2 * 3 * 4", "2 * 3 * 4");
        check("unclosed **bold", "unclosed **bold");
    }

    #[test]
    fn a_code_block_cut_in_two_is_closed_and_reopened() {
        let code: String = (0..200).map(|i| format!("line {i}\n")).collect();
        let md = format!("Intro\n\n```python\n{code}```\n\nOutro");
        let parts = parts(&md, 500, true);
        assert!(parts.len() > 2);
        for p in &parts {
            assert!(p.chars().count() <= 500, "{}", p.chars().count());
            let fences = p.lines().filter(|l| l.starts_with("```")).count();
            assert_eq!(fences % 2, 0, "balanced fences in {p:?}");
        }
        assert!(parts[1].starts_with("```python\n"));
        let all = parts.join("\n");
        for i in [0, 100, 199] {
            assert!(all.contains(&format!("line {i}\n")), "line {i}");
        }
        assert!(all.ends_with("Outro"));
    }
}
