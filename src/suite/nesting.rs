//! A cheap pre-scan of YAML nesting depth, run before the parser: deeply nested flow
//! collections (`[[[[…`) or block levels make YAML parsing quadratic, so they are refused first.

/// Deepest nesting accepted in a suite or a web config (a real suite uses fewer than 10).
pub const MAX_DEPTH: usize = 64;

/// Where the text first nests deeper than allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep {
    /// 1-based line.
    pub line: usize,
}

impl TooDeep {
    /// What to tell the user.
    pub fn message(&self) -> String {
        format!(
            "nesting deeper than {MAX_DEPTH} levels (of `[`, `{{`, `- ` or indentation); expected \
             a file nested a few levels deep (is it generated wrongly?)"
        )
    }
}

/// Scanner state carried across lines (flow collections and quoted scalars span lines).
#[derive(Default)]
struct Scan {
    flow: usize,
    indents: Vec<usize>,
    quote: Option<char>,
}

/// Refuses text that nests deeper than `MAX_DEPTH`. An estimate that never undercounts real
/// flow nesting: brackets inside quoted scalars are skipped, any other may count.
pub fn check(text: &str) -> Result<(), TooDeep> {
    let mut s = Scan::default();
    for (i, line) in text.lines().enumerate() {
        let block = s.block_depth(line);
        if !s.flow_fits(line, block) {
            return Err(TooDeep { line: i + 1 });
        }
    }
    Ok(())
}

impl Scan {
    /// Block levels at this line: the indentation stack plus `- ` entries opened on it.
    fn block_depth(&mut self, line: &str) -> usize {
        if self.flow > 0 || self.quote.is_some() {
            return self.indents.len();
        }
        let body = line.trim_start_matches(' ');
        if body.trim().is_empty() || body.starts_with('#') {
            return self.indents.len();
        }
        let indent = line.len() - body.len();
        while self.indents.last().is_some_and(|&top| top > indent) {
            self.indents.pop();
        }
        if self.indents.last().is_none_or(|&top| top < indent) {
            self.indents.push(indent);
        }
        self.indents.len() + dashes(body)
    }

    /// Follows flow brackets and quotes through one line; false when too deep.
    fn flow_fits(&mut self, line: &str, block: usize) -> bool {
        if block > MAX_DEPTH {
            return false;
        }
        let mut chars = line.chars().peekable();
        let (mut prev, mut last_solid) = (' ', None::<char>);
        while let Some(c) = chars.next() {
            if let Some(q) = self.quote {
                self.in_quote(q, c, &mut chars);
            } else {
                let at_start = starts_scalar(prev, last_solid);
                match c {
                    '#' if prev == ' ' || prev == '\t' => break,
                    '"' | '\'' if at_start => self.quote = Some(c),
                    '[' | '{' if self.flow > 0 || at_start => {
                        self.flow += 1;
                        if block + self.flow > MAX_DEPTH {
                            return false;
                        }
                    }
                    ']' | '}' => self.flow = self.flow.saturating_sub(1),
                    _ => {}
                }
            }
            prev = c;
            if !c.is_whitespace() {
                last_solid = Some(c);
            }
        }
        true
    }

    /// Inside a quoted scalar: `\"` escapes in double quotes, `''` in single quotes.
    fn in_quote(&mut self, q: char, c: char, rest: &mut std::iter::Peekable<std::str::Chars>) {
        match (q, c) {
            ('"', '\\') => {
                rest.next();
            }
            ('\'', '\'') if rest.peek() == Some(&'\'') => {
                rest.next();
            }
            _ if c == q => self.quote = None,
            _ => {}
        }
    }
}

/// `- - x` opens two block sequences on one line.
fn dashes(body: &str) -> usize {
    let mut n = 0;
    let mut rest = body;
    while let Some(r) = rest.strip_prefix('-') {
        if !(r.is_empty() || r.starts_with(' ')) {
            break;
        }
        n += 1;
        rest = r.trim_start_matches(' ');
    }
    n
}

/// A scalar or collection may start here: at line start, after a blank that follows an
/// indicator (`:`, `-`, `?`, `,`) or right after a flow opener or separator.
fn starts_scalar(prev: char, last_solid: Option<char>) -> bool {
    match last_solid {
        None => true,
        Some('[' | '{' | ',') => true,
        Some(':' | '-' | '?') => prev == ' ' || prev == '\t',
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_suites_pass() {
        let text = "suite: t\nvars: {a: \"[[[[\"}\nchecks:\n  - name: a\n    tls: { addr: \"x:1\", alpn: [h2] }\n    expect:\n      stdout_matches: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n    command: |\n      if [ -f x ]; then\n        echo [\n      fi\n";
        check(text).unwrap();
        check(include_str!("../../checks/prod.yaml")).unwrap();
        check(include_str!("../../checks/lab.yaml")).unwrap();
    }

    #[test]
    fn deep_flow_block_and_dash_nesting_is_refused() {
        assert_eq!(check(&"[".repeat(200_000)), Err(TooDeep { line: 1 }));
        let flow = format!("suite: t\nchecks: {}", "{a: ".repeat(100));
        assert_eq!(check(&flow), Err(TooDeep { line: 2 }));
        let dash = format!("suite: t\nchecks:\n  {}x\n", "- ".repeat(100));
        assert_eq!(check(&dash), Err(TooDeep { line: 3 }));
        let block: String = (0..100)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert_eq!(check(&block), Err(TooDeep { line: 65 }));
    }

    #[test]
    fn quotes_do_not_hide_real_brackets() {
        // `x:"` is a plain scalar, not the start of a quoted one.
        let text = format!("a: x:\"\nb: {}", "[".repeat(100));
        assert!(check(&text).is_err());
        let text = format!("a: 'it''s'\nb: {}", "[".repeat(100));
        assert!(check(&text).is_err());
    }
}
