//! Word wrapping for the text renderer. Hand-written rather than the `textwrap` crate: we
//! only need greedy wrapping of plain ASCII-ish lines with a hanging indent, and the client
//! binary must stay small for every platform it builds on.

/// Wrap `text` so that `first_prefix + line` and `indent + line` fit `width` columns. Words
/// longer than a line are kept whole (a long command must stay copy-pasteable).
pub fn wrap(text: &str, first_width: usize, rest_width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut width = first_width.max(10);
    for word in text.split(' ') {
        let cur_len = current.chars().count();
        let word_len = word.chars().count();
        if cur_len > 0 && cur_len + 1 + word_len > width {
            lines.push(std::mem::take(&mut current));
            width = rest_width.max(10);
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    lines.push(current);
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_at_width_with_different_first_line() {
        let lines = wrap("aaaa bbbb cccc dddd eeee", 10, 14);
        assert_eq!(lines, vec!["aaaa bbbb", "cccc dddd eeee"]);
    }

    #[test]
    fn keeps_long_words_whole() {
        let long = "x".repeat(30);
        let lines = wrap(&format!("a {long} b"), 12, 12);
        assert_eq!(lines, vec!["a".to_string(), long, "b".to_string()]);
    }

    #[test]
    fn short_text_is_one_line() {
        assert_eq!(wrap("ok", 80, 80), vec!["ok"]);
    }
}
