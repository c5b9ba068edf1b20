//! The problem text of a YAML syntax error, always with a line and column when the text shows one:
//! serde_yaml gives no location for a second document and only a character position for some
//! scanner errors, and a user cannot find either in the file.

/// "is not valid YAML: ..." for `e`, raised while reading `text` as one document.
pub fn problem(e: &serde_yaml::Error, text: &str) -> String {
    let msg = e.to_string();
    if msg.contains("line ") && msg.contains("column ") {
        return format!("is not valid YAML: {msg}");
    }
    // Scanner errors give a character position (and a location of 1:1, which is not where they are).
    if let Some((line, column)) = position(&msg).and_then(|p| line_column(text, p)) {
        return format!("is not valid YAML: {msg} (line {line} column {column})");
    }
    if let Some(loc) = e.location() {
        return format!("is not valid YAML: {msg} (line {} column {})", loc.line(), loc.column());
    }
    if msg.contains("more than one document") {
        if let Some(line) = second_document_line(text) {
            return format!(
                "is not valid YAML: one document expected, a second starts at line {line} column 1"
            );
        }
    }
    format!("is not valid YAML: {msg}")
}

/// The line (1-based) where a second document starts: a `---` after the first document began
/// (with content or its own `---`), or the first content after a `...` end marker.
fn second_document_line(text: &str) -> Option<usize> {
    let (mut started, mut ended) = (false, false);
    for (i, l) in text.lines().enumerate() {
        let content = !l.trim().is_empty() && !l.trim_start().starts_with('#');
        if l.starts_with("---") {
            if started {
                return Some(i + 1);
            }
            started = true;
        } else if l.starts_with("...") {
            ended = started;
        } else if content {
            if ended {
                return Some(i + 1);
            }
            started = true;
        }
    }
    None
}

/// The character index in "... at position N".
fn position(msg: &str) -> Option<usize> {
    let rest = &msg[msg.find("at position ")? + "at position ".len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Line and column (1-based) of character index `pos` in `text`.
fn line_column(text: &str, pos: usize) -> Option<(usize, usize)> {
    let (mut line, mut column) = (1, 1);
    for (i, c) in text.chars().enumerate() {
        if i == pos {
            return Some((line, column));
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (pos == text.chars().count()).then_some((line, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        let e = serde_yaml::from_str::<serde_yaml::Value>(text).unwrap_err();
        problem(&e, text)
    }

    #[test]
    fn every_syntax_error_says_where() {
        assert!(err("a: [1,\nb: 2\n").contains("line "), "{}", err("a: [1,\nb: 2\n"));
        let two = err("# c\na: 1\n---\nb: 2\n");
        assert!(two.contains("a second starts at line 3 column 1"), "{two}");
        let empty_first = err("---\n---\na: 1\n");
        assert!(empty_first.contains("a second starts at line 2 column 1"), "{empty_first}");
        let after_end = err("a: 1\n...\nb: 2\n");
        assert!(after_end.contains("line 3"), "{after_end}");
        let ctl = err("a: 1\nb: \"x\u{7}y\"\n");
        assert!(ctl.contains("line 2 column 6"), "{ctl}");
    }

    #[test]
    fn positions_map_to_lines_and_columns() {
        assert_eq!(line_column("ab\ncd", 0), Some((1, 1)));
        assert_eq!(line_column("ab\ncd", 4), Some((2, 2)));
        assert_eq!(line_column("ab", 9), None);
        assert_eq!(position("bad at position 24 here"), Some(24));
    }
}
