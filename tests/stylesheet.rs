//! The page's one stylesheet stays plain CSS: every rule closes, and no rule sits inside another
//! (only inside `@media`). A lost `}` is no parse error: Chromium reads the rules after it as
//! nested in the unclosed one, and whole panels go unstyled without a sound — a merge did that.

use std::path::Path;

/// Where `style.css` opens a rule inside a rule that is not an at-rule, or leaves braces
/// unbalanced, as "line N: …" messages.
fn structure_problems(css: &str) -> Vec<String> {
    let mut problems = Vec::new();
    // The open blocks: (line, is an at-rule such as `@media`).
    let mut open: Vec<(usize, bool)> = Vec::new();
    let mut line = 1;
    let mut prelude = String::new();
    let mut chars = css.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                line += 1;
                prelude.push(' ');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                    }
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' | '\'' => {
                for inner in chars.by_ref() {
                    if inner == c {
                        break;
                    }
                }
            }
            '{' => {
                let at_rule = prelude.trim_start().starts_with('@');
                if let Some(&(opened, false)) = open.last() {
                    problems.push(format!(
                        "line {line}: `{}` opens inside the rule opened on line {opened} (a `}}` is missing)",
                        prelude.trim()
                    ));
                }
                open.push((line, at_rule));
                prelude.clear();
            }
            '}' => {
                if open.pop().is_none() {
                    problems.push(format!("line {line}: `}}` closes nothing"));
                }
                prelude.clear();
            }
            ';' => prelude.clear(),
            _ => prelude.push(c),
        }
    }
    problems.extend(
        open.iter()
            .map(|(opened, _)| format!("line {opened}: this block never closes")),
    );
    problems
}

#[test]
fn every_rule_of_the_stylesheet_closes_and_none_nests() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../style.css");
    let css = std::fs::read_to_string(&path).expect("style.css is readable");
    let problems = structure_problems(&css);
    assert!(problems.is_empty(), "style.css:\n{}", problems.join("\n"));
}

#[test]
fn a_lost_brace_is_found_where_it_was_lost() {
    let css = ".a {\n  color: red;\n\n/* next */\n.b {\n  color: blue;\n}\n";
    assert_eq!(
        structure_problems(css),
        [
            "line 5: `.b` opens inside the rule opened on line 1 (a `}` is missing)",
            "line 1: this block never closes",
        ]
    );
    let fine = "@media (max-width: 9px) {\n  .a { content: \"{\"; }\n}\n";
    assert!(structure_problems(fine).is_empty());
}
