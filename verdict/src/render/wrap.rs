//! Word wrapping for the text renderer. Hand-written rather than the `textwrap` crate: we
//! only need greedy wrapping of plain ASCII-ish lines with a hanging indent, and the client
//! binary must stay small for every platform it builds on.

/// Wrap `text` so that `first_prefix + line` and `indent + line` fit `width` columns. Words
/// longer than a line are kept whole (a long command must stay copy-pasteable).
pub fn wrap(text: &str, first_width: usize, rest_width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut width = first_width.max(10);
    for word in glue_units(text) {
        let word = word.as_str();
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

/// Words, with a unit kept on the number before it (`1.5 s`, `38 ms` never split).
fn glue_units(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for w in text.split(' ') {
        let is_unit = matches!(w, "s" | "s," | "s;" | "s)" | "ms" | "ms," | "ms;" | "ms)");
        match words.last_mut() {
            Some(prev) if is_unit && prev.ends_with(|c: char| c.is_ascii_digit()) => {
                prev.push(' ');
                prev.push_str(w);
            }
            _ => words.push(w.to_string()),
        }
    }
    words
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
    fn numbers_keep_their_unit() {
        let lines = wrap("timed out after 1.5 s", 19, 19);
        assert_eq!(lines, vec!["timed out after", "1.5 s"]);
    }

    #[test]
    fn short_text_is_one_line() {
        assert_eq!(wrap("ok", 80, 80), vec!["ok"]);
    }
}
