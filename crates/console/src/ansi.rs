//! ANSI colour escapes in a build log, rendered as HTML: SGR sequences (`ESC [ … m`) become
//! `<span class="…">` runs (bold, the 16 foreground and background colours; 256-colour and
//! RGB codes fall back to no colour), every other escape sequence is dropped, and all text is
//! HTML-escaped. Pure: one line in, one HTML fragment out.

use std::fmt::Write;

/// The style in force at a point of the line.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Style {
    bold: bool,
    fg: Option<u8>,
    bg: Option<u8>,
}

impl Style {
    fn classes(self) -> String {
        let mut c = vec![];
        if self.bold {
            c.push("ab".to_owned());
        }
        if let Some(f) = self.fg {
            c.push(format!("af{f}"));
        }
        if let Some(b) = self.bg {
            c.push(format!("ag{b}"));
        }
        c.join(" ")
    }

    fn apply(&mut self, params: &str) {
        let codes: Vec<u32> = if params.is_empty() {
            vec![0]
        } else {
            params.split(';').map(|p| p.parse().unwrap_or(0)).collect()
        };
        let mut i = 0;
        while i < codes.len() {
            match codes[i] {
                0 => *self = Style::default(),
                1 => self.bold = true,
                22 => self.bold = false,
                c @ 30..=37 => self.fg = Some((c - 30) as u8),
                c @ 90..=97 => self.fg = Some((c - 90 + 8) as u8),
                39 => self.fg = None,
                c @ 40..=47 => self.bg = Some((c - 40) as u8),
                c @ 100..=107 => self.bg = Some((c - 100 + 8) as u8),
                49 => self.bg = None,
                // 38;5;n / 38;2;r;g;b (and 48;…): skip the arguments.
                38 | 48 => {
                    i += match codes.get(i + 1) {
                        Some(5) => 2,
                        Some(2) => 4,
                        _ => 0,
                    };
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// Escape text for HTML content and attributes.
pub fn escape(text: &str, out: &mut String) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
}

/// One log line (without its newline) as HTML.
pub fn to_html(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut style = Style::default();
    let mut open = false;
    let mut text = String::new();
    let flush = |text: &mut String, out: &mut String, style: Style, open: &mut bool| {
        if text.is_empty() {
            return;
        }
        if !*open && style != Style::default() {
            let _ = write!(out, "<span class=\"{}\">", style.classes());
            *open = true;
        }
        escape(text, out);
        text.clear();
    };
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            text.push(c);
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                let mut params = String::new();
                let mut fin = None;
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        fin = Some(c);
                        break;
                    }
                    params.push(c);
                }
                if fin == Some('m') {
                    flush(&mut text, &mut out, style, &mut open);
                    let before = style;
                    style.apply(&params);
                    if style != before && open {
                        out.push_str("</span>");
                        open = false;
                    }
                }
            }
            // Two-character escapes (ESC c, ESC =, …): drop both.
            Some(_) => {
                chars.next();
            }
            None => {}
        }
    }
    flush(&mut text, &mut out, style, &mut open);
    if open {
        out.push_str("</span>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn plain_text_is_escaped() {
        assert_eq!(to_html("a <b> & \"c\""), "a &lt;b&gt; &amp; &quot;c&quot;");
    }

    #[test]
    fn colours_become_spans_and_reset_closes_them() {
        assert_eq!(
            to_html("\x1b[31mred\x1b[0m plain"),
            "<span class=\"af1\">red</span> plain"
        );
        assert_eq!(
            to_html("\x1b[1;92mok\x1b[m"),
            "<span class=\"ab af10\">ok</span>"
        );
        assert_eq!(
            to_html("\x1b[31mno reset"),
            "<span class=\"af1\">no reset</span>"
        );
    }

    #[test]
    fn other_escapes_are_dropped() {
        assert_eq!(to_html("\x1b[2Kclear\x1b[1Gline"), "clearline");
        assert_eq!(to_html("\x1b[38;5;208mx\x1b[0m"), "x");
        assert_eq!(to_html("trailing \x1b"), "trailing ");
    }
}
