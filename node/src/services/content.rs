//! Note text: local plain text becomes HTML (links, mentions, hashtags); remote HTML is
//! sanitised to the small set of tags Mastodon itself keeps.

use std::collections::HashSet;
use std::sync::LazyLock;

/// A mention found in local text: `@user` (local) or `@user@host`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MentionToken {
    /// Username part.
    pub username: String,
    /// Host part; `None` for a local mention.
    pub domain: Option<String>,
}

impl MentionToken {
    /// The text as written, without `@` prefix.
    pub fn acct(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{}@{domain}", self.username),
            None => self.username.clone(),
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':')
}

/// Mentions and hashtags in local plain text, in order of first appearance.
pub fn scan(text: &str) -> (Vec<MentionToken>, Vec<String>) {
    let mut mentions = Vec::new();
    let mut tags = Vec::new();
    let mut seen_m = HashSet::new();
    let mut seen_t = HashSet::new();
    for token in tokens(text) {
        match token {
            Token::Mention(m) if seen_m.insert(m.clone()) => mentions.push(m),
            Token::Tag(t) if seen_t.insert(t.to_lowercase()) => tags.push(t.to_lowercase()),
            _ => {}
        }
    }
    (mentions, tags)
}

enum Token<'a> {
    Text(&'a str),
    Link(&'a str),
    Mention(MentionToken),
    Tag(String),
    Newline,
}

fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut plain_start = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    let boundary = |i: usize| i == 0 || !is_name_char(text[..i].chars().next_back().unwrap_or(' '));
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().unwrap_or(' ');
        let mut matched: Option<(Token<'_>, usize)> = None;
        if c == '\n' {
            matched = Some((Token::Newline, 1));
        } else if (rest.starts_with("https://") || rest.starts_with("http://")) && boundary(i) {
            let len = rest
                .find(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
                .unwrap_or(rest.len());
            let link = rest[..len].trim_end_matches(['.', ',', ')', '!', '?', ';', ':']);
            if link.len() > "https://".len() {
                matched = Some((Token::Link(link), link.len()));
            }
        } else if c == '@' && boundary(i) {
            let name_len = rest[1..].find(|c: char| !is_name_char(c)).unwrap_or(rest.len() - 1);
            if name_len > 0 {
                let username = rest[1..1 + name_len].to_owned();
                let after = &rest[1 + name_len..];
                let mut consumed = 1 + name_len;
                let mut domain = None;
                if let Some(host_rest) = after.strip_prefix('@') {
                    let host_len =
                        host_rest.find(|c: char| !is_host_char(c)).unwrap_or(host_rest.len());
                    let host = host_rest[..host_len].trim_end_matches(['.', ':', '-']);
                    if host.contains('.') || host.contains(':') || host == "localhost" {
                        domain = Some(host.to_ascii_lowercase());
                        consumed += 1 + host.len();
                    }
                }
                matched = Some((Token::Mention(MentionToken { username, domain }), consumed));
            }
        } else if c == '#' && boundary(i) {
            let len = rest[1..].find(|c: char| !is_name_char(c)).unwrap_or(rest.len() - 1);
            if len > 0 && !rest[1..1 + len].chars().all(|c| c.is_ascii_digit()) {
                matched = Some((Token::Tag(rest[1..1 + len].to_owned()), 1 + len));
            }
        }
        match matched {
            Some((token, len)) => {
                if plain_start < i {
                    out.push(Token::Text(&text[plain_start..i]));
                }
                out.push(token);
                i += len;
                plain_start = i;
            }
            None => i += c.len_utf8(),
        }
    }
    let _ = bytes;
    if plain_start < text.len() {
        out.push(Token::Text(&text[plain_start..]));
    }
    out
}

/// HTML-escapes text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders local plain text as HTML. `mention_url` maps a mention to the profile URL of the
/// actor it resolved to (unresolved mentions stay text); `tag_url` gives a hashtag's page.
pub fn render(
    text: &str,
    mention_url: &dyn Fn(&MentionToken) -> Option<String>,
    tag_url: &dyn Fn(&str) -> String,
) -> String {
    let mut paragraphs = Vec::new();
    for para in text.trim().split("\n\n").filter(|p| !p.trim().is_empty()) {
        let mut html = String::new();
        for token in tokens(para.trim_matches('\n')) {
            match token {
                Token::Text(t) => html.push_str(&escape(t)),
                Token::Newline => html.push_str("<br>"),
                Token::Link(url) => {
                    let url = escape(url);
                    html.push_str(&format!(
                        "<a href=\"{url}\" rel=\"nofollow noopener noreferrer\" target=\"_blank\">{url}</a>"
                    ));
                }
                Token::Mention(m) => match mention_url(&m) {
                    Some(href) => html.push_str(&format!(
                        "<span class=\"h-card\"><a href=\"{}\" class=\"u-url mention\">@<span>{}</span></a></span>",
                        escape(&href),
                        escape(&m.username)
                    )),
                    None => html.push_str(&escape(&format!("@{}", m.acct()))),
                },
                Token::Tag(name) => html.push_str(&format!(
                    "<a href=\"{}\" class=\"mention hashtag\" rel=\"tag\">#<span>{}</span></a>",
                    escape(&tag_url(&name.to_lowercase())),
                    escape(&name)
                )),
            }
        }
        paragraphs.push(format!("<p>{html}</p>"));
    }
    paragraphs.concat()
}

/// The sanitiser for notes from other servers, built once: building one costs more than
/// cleaning a typical note with it.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&str> = [
        "p",
        "br",
        "a",
        "span",
        "strong",
        "em",
        "b",
        "i",
        "u",
        "s",
        "del",
        "code",
        "pre",
        "blockquote",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
    ]
    .into_iter()
    .collect();
    let classes: HashSet<&str> =
        ["h-card", "u-url", "mention", "hashtag", "invisible", "ellipsis", "quote-inline"]
            .into_iter()
            .collect();
    let mut builder = ammonia::Builder::default();
    builder
        .tags(tags)
        .add_tag_attributes("a", ["href"])
        .allowed_classes([("a", classes.clone()), ("span", classes)].into_iter().collect())
        .link_rel(Some("nofollow noopener noreferrer"))
        .url_schemes(["http", "https"].into_iter().collect());
    builder
});

/// Strips every tag (for `to_text`).
static STRIP_ALL: LazyLock<ammonia::Builder<'static>> = LazyLock::new(ammonia::Builder::empty);

/// Sanitises HTML from another server: keeps text formatting, links and Mastodon's mention
/// and hashtag markup; drops scripts, styles, images, event handlers and unknown classes.
pub fn sanitize(html: &str) -> String {
    // Plain paragraphs, the most common remote note, come out of the sanitiser unchanged;
    // parsing them into a tree and writing them back was about 5 % of an inbox worker's CPU.
    if is_plain_paragraphs(html) {
        return html.to_owned();
    }
    SANITIZER.clean(html).to_string()
}

/// Whether `html` is text in well-formed, unnested `<p>` paragraphs, with `<br>` and the
/// `&amp;`, `&lt;` and `&gt;` entities, and nothing the sanitiser would rewrite: no other
/// markup, no bare `&`, `<` or `>`, no no-break space (written back as `&nbsp;`), no carriage
/// return or other control character, C1 controls included (the HTML parser normalises or
/// reports them), and no byte order mark (the parser drops a leading one). For such input the
/// sanitiser's output is the input itself (`plain_paragraphs_are_what_the_sanitiser_writes`).
fn is_plain_paragraphs(html: &str) -> bool {
    let bytes = html.as_bytes();
    let mut open = false;
    let mut i = 0;
    while i < bytes.len() {
        // Most bytes are ordinary text: skip runs of them before looking closer.
        match bytes[i..].iter().position(|&b| !ORDINARY[usize::from(b)]) {
            Some(run) => i += run,
            None => break,
        }
        let rest = &bytes[i..];
        match bytes[i] {
            b'<' if rest.starts_with(b"<p>") && !open => (open, i) = (true, i + 3),
            b'<' if rest.starts_with(b"</p>") && open => (open, i) = (false, i + 4),
            b'<' if rest.starts_with(b"<br>") => i += 4,
            b'&' if rest.starts_with(b"&amp;") => i += 5,
            b'&' if rest.starts_with(b"&lt;") || rest.starts_with(b"&gt;") => i += 4,
            b'<' | b'>' | b'&' => return false,
            b'\n' | b'\t' => i += 1,
            0..0x20 | 0x7f => return false,
            // U+0080-U+00A0 (C1 controls and the no-break space) are 0xC2 0x80-0xA0 in UTF-8,
            // U+FEFF is 0xEF 0xBB 0xBF; continuation bytes never start a character.
            0xc2 if rest.get(1).is_some_and(|b| (0x80..=0xa0).contains(b)) => return false,
            0xef if rest.starts_with(b"\xef\xbb\xbf") => return false,
            _ => i += 1,
        }
    }
    !open
}

/// Bytes `is_plain_paragraphs` passes over without a closer look: printable ASCII other than
/// `<`, `>` and `&`, and the bytes of multi-byte characters except 0xC2 and 0xEF, which start
/// the characters it refuses.
static ORDINARY: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0x20;
    while b < 256 {
        table[b] = !matches!(b as u8, b'<' | b'>' | b'&' | 0x7f | 0xc2 | 0xef);
        b += 1;
    }
    table
};

/// Plain text of a note's HTML (for search results, notifications and the like).
pub fn to_text(html: &str) -> String {
    // Text without markup or entities is its own plain text; most content warnings are empty,
    // and parsing an empty document is not free (about 1 % of the inbox's CPU).
    if !html.contains(['<', '&', '\r', '\0']) {
        return html.to_owned();
    }
    parse_to_text(html)
}

/// `to_text` by parsing the HTML.
fn parse_to_text(html: &str) -> String {
    let with_breaks = html.replace("<br>", "\n").replace("</p><p>", "\n\n");
    let cleaned = STRIP_ALL.clean(&with_breaks).to_string();
    cleaned
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_markup_is_its_own_plain_text() {
        for text in ["", "plain words", "a > b \"quoted\" it's", "émoji 🎉 and\nnewline"] {
            assert_eq!(to_text(text), parse_to_text(text), "{text:?}");
        }
        assert_eq!(to_text("<p>a</p><p>b &amp; c</p>"), "a\n\nb & c");
    }

    #[test]
    fn scan_finds_mentions_and_tags() {
        let (mentions, tags) =
            scan("hi @bob and @carol@b.example:8081, see #Travel #travel #123 mail@x.y");
        assert_eq!(mentions.len(), 2);
        assert_eq!(mentions[0], MentionToken { username: "bob".into(), domain: None });
        assert_eq!(mentions[1].domain.as_deref(), Some("b.example:8081"));
        assert_eq!(tags, vec!["travel"]);
    }

    #[test]
    fn render_escapes_and_links() {
        let html = render(
            "<b>hi</b> @bob #Tea\nhttps://x.example/a.\n\nbye",
            &|m| (m.username == "bob").then(|| "https://a.example/@bob".to_owned()),
            &|t| format!("https://a.example/tags/{t}"),
        );
        assert!(html.starts_with("<p>&lt;b&gt;hi&lt;/b&gt; <span class=\"h-card\">"), "{html}");
        assert!(html.contains("href=\"https://a.example/tags/tea\""), "{html}");
        assert!(html.contains("<br><a href=\"https://x.example/a\""), "{html}");
        assert!(html.ends_with("</a>.</p><p>bye</p>"), "{html}");
    }

    /// The fast path of `sanitize` must never change what a note looks like: every input it
    /// takes must be exactly what the sanitiser writes. Compared over all short sequences of
    /// fragments chosen to hit the parser's rewrites (implicit `</p>`, entities, quotes, the
    /// no-break space, carriage returns, C1 controls, a byte order mark, stray brackets).
    #[test]
    fn plain_paragraphs_are_what_the_sanitiser_writes() {
        const FRAGMENTS: [&str; 27] = [
            "<p>", "</p>", "<br>", "a", " ", "\n", "\t", "&amp;", "&lt;", "&gt;", "\"", "'", "é",
            "🎉", ">", "<", "&", "<b>", "\u{a0}", "\r", "&quot;", "<br/>", "&nbsp;", "\u{1}",
            "\u{85}", "\u{feff}", "\u{a1}",
        ];
        let mut taken = 0;
        // Every sequence of up to five fragments: 27^5 is too many, so the first two positions
        // run over all fragments and the rest over the structural ones and a letter.
        let tail = [0, 1, 2, 3, 7, 14];
        for a in 0..FRAGMENTS.len() {
            for b in 0..FRAGMENTS.len() {
                for c in tail {
                    for d in tail {
                        for e in tail {
                            let html: String = [a, b, c, d, e].map(|i| FRAGMENTS[i]).concat();
                            if is_plain_paragraphs(&html) {
                                taken += 1;
                                let sanitised = SANITIZER.clean(&html).to_string();
                                assert_eq!(sanitised, html, "fast path took {html:?}");
                            }
                        }
                    }
                }
            }
        }
        assert!(taken > 1_000, "the fast path took only {taken} inputs");
        for plain in [
            "",
            "<p>Hello, world!</p>",
            "<p>one</p><p>two<br>three &amp; four &lt;3</p>",
            "<p>\"quoted\" it's 🎉</p>\n<p>next</p>",
        ] {
            assert!(is_plain_paragraphs(plain), "{plain:?}");
            assert_eq!(SANITIZER.clean(plain).to_string(), plain);
        }
        for other in ["<p>a<p>b</p>", "<p>open", "</p>", "<p>a &quot;b&quot;</p>", "<p>a\r\nb</p>"]
        {
            assert!(!is_plain_paragraphs(other), "{other:?}");
        }
    }

    #[test]
    fn sanitize_strips_dangerous_markup() {
        let dirty = r#"<p onclick="x()">hi <script>alert(1)</script><a href="javascript:x" class="evil mention">l</a><img src=x onerror=y><span class="h-card">ok</span></p>"#;
        let clean = sanitize(dirty);
        assert!(
            !clean.contains("script") && !clean.contains("onclick") && !clean.contains("img"),
            "{clean}"
        );
        assert!(!clean.contains("javascript"), "{clean}");
        assert!(clean.contains("class=\"mention\""), "{clean}");
        assert!(clean.contains("<span class=\"h-card\">ok</span>"), "{clean}");
        assert_eq!(to_text("<p>a &amp; b</p><p>c<br>d</p>"), "a & b\n\nc\nd");
    }
}
