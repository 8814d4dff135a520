//! A linear pre-scan of YAML flow nesting, run before the parser. libyaml (under serde_yaml_ng)
//! spends time proportional to the flow depth on every token, so `[[[[…` nested 200,000 deep
//! takes minutes; block nesting costs it nothing (and serde's recursion limit catches it).
//!
//! The scan follows libyaml's own token rules where they decide what is a flow bracket: quoted
//! scalars, plain scalars (with libyaml's multi-line continuation by indentation), block
//! scalars (with its content indentation) and the block indentation stack. A bracket inside
//! a scalar is text; any other bracket counts. tests/data/nesting holds cases checked against
//! libyaml itself: the estimate is never below libyaml's depth (300,000 more random cases were
//! checked the same way while writing it).

/// Deepest flow nesting accepted in a suite or a web config (a real one uses 2 or 3).
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
            "flow collections (`[`, `{{`) nested deeper than {MAX_DEPTH} levels; expected a \
             file nested a few levels deep (is it generated wrongly?)"
        )
    }
}

/// Refuses text whose flow collections nest deeper than `MAX_DEPTH`.
pub fn check(text: &str) -> Result<(), TooDeep> {
    let mut s = Scan::new(text.as_bytes());
    s.run(MAX_DEPTH)
}

/// The deepest flow nesting of `text` as libyaml would see it (an upper bound).
pub fn flow_depth(text: &str) -> usize {
    let mut s = Scan::new(text.as_bytes());
    let _ = s.run(usize::MAX);
    s.max
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    line: usize,
    col: usize,
    flow: usize,
    max: usize,
    /// libyaml's block indentation: the current level and the levels below it.
    indent: i64,
    indents: Vec<i64>,
    /// Where a simple key (`key: value`) may start: line, byte offset and column. libyaml
    /// forgets it on the next line or 1024 bytes on.
    key: Option<(usize, usize, usize)>,
}

impl<'a> Scan<'a> {
    fn new(b: &'a [u8]) -> Self {
        Scan {
            b,
            i: 0,
            line: 1,
            col: 0,
            flow: 0,
            max: 0,
            indent: -1,
            indents: vec![],
            key: None,
        }
    }

    fn at(&self, k: usize) -> u8 {
        self.b.get(self.i + k).copied().unwrap_or(0)
    }

    fn eof(&self) -> bool {
        self.i >= self.b.len()
    }

    fn is_break(&self, k: usize) -> bool {
        matches!(self.at(k), b'\n' | b'\r')
    }

    fn is_blank(&self, k: usize) -> bool {
        matches!(self.at(k), b' ' | b'\t')
    }

    /// Blank, line break or end of text.
    fn blankz(&self, k: usize) -> bool {
        self.i + k >= self.b.len() || self.is_blank(k) || self.is_break(k)
    }

    /// Moves one character (a CRLF is one line break); columns count characters.
    fn advance(&mut self) {
        if self.is_break(0) {
            let crlf = self.at(0) == b'\r' && self.at(1) == b'\n';
            self.i += if crlf { 2 } else { 1 };
            self.line += 1;
            self.col = 0;
            return;
        }
        if self.at(0) & 0xC0 != 0x80 {
            self.col += 1;
        }
        self.i += 1;
        while !self.eof() && self.at(0) & 0xC0 == 0x80 {
            self.i += 1;
        }
    }

    fn skip_line(&mut self) {
        while !self.eof() && !self.is_break(0) {
            self.advance();
        }
    }

    fn run(&mut self, limit: usize) -> Result<(), TooDeep> {
        loop {
            self.skip_to_token();
            if self.eof() {
                return Ok(());
            }
            self.token();
            if self.flow > limit {
                return Err(TooDeep { line: self.line });
            }
        }
    }

    /// Skips blanks, comments and line breaks (libyaml's scan_skip_to_token).
    fn skip_to_token(&mut self) {
        loop {
            while self.is_blank(0) {
                self.advance();
            }
            if self.at(0) == b'#' {
                self.skip_line();
            }
            if !self.is_break(0) {
                return;
            }
            self.advance();
            if self.flow == 0 {
                self.key = None;
            }
        }
    }

    fn token(&mut self) {
        let col = self.col;
        if self.flow == 0 {
            self.unroll(col as i64);
        }
        let (c, next_blank) = (self.at(0), self.blankz(1));
        let indicator = next_blank || self.flow > 0;
        match c {
            b'%' if col == 0 => {
                self.unroll(-1);
                self.key = None;
                self.skip_line();
            }
            b'-' | b'.' if col == 0 && self.document_marker() => {
                self.unroll(-1);
                self.key = None;
                (0..3).for_each(|_| self.advance());
            }
            b'[' | b'{' => {
                self.save_key(col);
                self.flow += 1;
                self.max = self.max.max(self.flow);
                self.advance();
            }
            b']' | b'}' => {
                self.flow = self.flow.saturating_sub(1);
                self.advance();
            }
            b',' => {
                if self.flow == 0 {
                    self.key = None;
                }
                self.advance();
            }
            b'-' if next_blank => self.block_indicator(col),
            b'?' if indicator => self.block_indicator(col),
            b':' if indicator => self.value(),
            b'*' | b'&' => {
                self.save_key(col);
                self.advance();
                while self.at(0).is_ascii_alphanumeric() || matches!(self.at(0), b'-' | b'_') {
                    self.advance();
                }
            }
            b'!' => {
                self.save_key(col);
                while !(self.blankz(0) || self.flow > 0 && self.at(0) == b',') {
                    self.advance();
                }
            }
            b'|' | b'>' if self.flow == 0 => {
                self.key = None;
                self.block_scalar();
            }
            b'\'' | b'"' => {
                self.save_key(col);
                self.quoted(c);
            }
            _ => {
                self.save_key(col);
                self.plain();
            }
        }
    }

    fn document_marker(&self) -> bool {
        let m = self.at(0);
        self.at(1) == m && self.at(2) == m && self.blankz(3)
    }

    /// A token may start a simple key unless one started earlier on this line.
    fn save_key(&mut self, col: usize) {
        let current = self.key.is_some_and(|(line, _, _)| line == self.line);
        if self.flow == 0 && !current {
            self.key = Some((self.line, self.i, col));
        }
    }

    fn unroll(&mut self, col: i64) {
        while self.indent > col {
            self.indent = self.indents.pop().unwrap_or(-1);
        }
    }

    fn roll(&mut self, col: usize) {
        if self.indent < col as i64 {
            self.indents.push(self.indent);
            self.indent = col as i64;
        }
    }

    /// `- ` or `? `: a block collection may start at this column.
    fn block_indicator(&mut self, col: usize) {
        if self.flow == 0 {
            self.roll(col);
            self.key = None;
        }
        self.advance();
    }

    /// `: `: a block mapping starts at the column of the simple key before it, or at the
    /// colon itself when there is none.
    fn value(&mut self) {
        if self.flow == 0 {
            let fresh =
                |&(line, at, _): &(usize, usize, usize)| line == self.line && at + 1024 >= self.i;
            let col = self.key.take().filter(fresh).map_or(self.col, |k| k.2);
            self.roll(col);
        }
        self.advance();
    }

    /// A quoted scalar, across lines: `\` escapes in double quotes, `''` in single quotes.
    fn quoted(&mut self, q: u8) {
        self.advance();
        while !self.eof() {
            let c = self.at(0);
            let escape =
                (q == b'"' && c == b'\\') || (q == b'\'' && c == b'\'' && self.at(1) == b'\'');
            if escape {
                self.advance();
            } else if c == q {
                self.advance();
                return;
            }
            self.advance();
        }
    }

    /// A plain scalar, as libyaml scans it: in flow context it ends at `,[]{}` and at `:`
    /// before a blank or one of those; it continues on the next line when that line is
    /// indented more than the block level (block context) or always (flow context).
    fn plain(&mut self) {
        let min_col = self.indent + 1;
        loop {
            if self.col == 0 && matches!(self.at(0), b'-' | b'.') && self.document_marker() {
                return;
            }
            if self.at(0) == b'#' {
                return;
            }
            while !self.blankz(0) {
                if self.ends_plain() {
                    return;
                }
                self.advance();
            }
            if self.eof() {
                return;
            }
            while self.is_blank(0) || self.is_break(0) {
                self.advance();
            }
            if self.flow == 0 && (self.col as i64) < min_col {
                return;
            }
        }
    }

    fn ends_plain(&self) -> bool {
        let flow_indicator = |c: u8| matches!(c, b',' | b'[' | b']' | b'{' | b'}');
        match self.at(0) {
            b':' => self.blankz(1) || (self.flow > 0 && flow_indicator(self.at(1))),
            c => self.flow > 0 && flow_indicator(c),
        }
    }

    /// A `|` or `>` block scalar: its header, then every line indented at least as deep as
    /// its content (libyaml's rule: an explicit indentation, else the first non-empty line,
    /// at least one more than the block level).
    fn block_scalar(&mut self) {
        self.advance();
        let mut explicit = None;
        while matches!(self.at(0), b'+' | b'-' | b'1'..=b'9') {
            if self.at(0).is_ascii_digit() {
                explicit = Some(usize::from(self.at(0) - b'0'));
            }
            self.advance();
        }
        self.skip_line();
        if self.eof() {
            return;
        }
        self.advance();
        let content = explicit.map(|inc| (self.indent.max(0) as usize) + inc);
        self.block_lines(content);
    }

    fn block_lines(&mut self, mut content: Option<usize>) {
        let mut widest = 0;
        loop {
            while self.at(0) == b' ' && content.is_none_or(|c| self.col < c) {
                self.advance();
            }
            widest = widest.max(self.col);
            if self.eof() {
                return;
            }
            if self.is_break(0) {
                self.advance();
                continue;
            }
            let want = *content.get_or_insert_with(|| {
                let floor = (self.indent + 1).max(1) as usize;
                widest.max(floor)
            });
            if self.col < want {
                return;
            }
            self.skip_line();
            if self.eof() {
                return;
            }
            self.advance();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_suites_pass() {
        check(include_str!("../../checks/prod.yaml")).unwrap();
        check(include_str!("../../checks/lab.yaml")).unwrap();
        let text = "a: {b: [c, {d: \"[[[[\"}]}\nre: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\ncmd: |\n  [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n";
        assert_eq!(flow_depth(text), 3);
        check(text).unwrap();
    }

    #[test]
    fn deep_flow_is_refused() {
        assert_eq!(check(&"[".repeat(200_000)), Err(TooDeep { line: 1 }));
        let flow = format!("suite: t\nchecks: {}", "{a: ".repeat(100));
        assert_eq!(check(&flow), Err(TooDeep { line: 2 }));
    }

    #[test]
    fn brackets_libyaml_reads_as_text_do_not_hide_real_ones() {
        let deep = "[".repeat(100);
        for hide in [
            "a: foo\n  [ \"\n",
            "key:\n  |\n  [ \"\n",
            "  - |\n   [ '\n",
            "a: b, \"\n",
            "a: x:\"\n",
            "a: {\"k\":\"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\"}\n",
            "a: !t ",
            "a: &x ",
        ] {
            let text = format!("{hide}b: {deep}\n");
            assert!(check(&text).is_err(), "{text:?}");
        }
    }

    /// Cases generated with libyaml (PyYAML's CParser): `depth` is the deepest flow nesting
    /// libyaml's scanner reached. The estimate may be higher, never lower.
    #[test]
    fn never_below_libyaml() {
        let corpus = include_str!("../../tests/data/nesting/libyaml_depths.jsonl");
        let mut n = 0;
        for line in corpus.lines() {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = case["text"].as_str().unwrap();
            let depth = case["depth"].as_u64().unwrap() as usize;
            assert!(
                flow_depth(text) >= depth,
                "{text:?}: libyaml {depth}, estimate {}",
                flow_depth(text)
            );
            n += 1;
        }
        assert!(n >= 1000, "{n} cases");
    }
}
