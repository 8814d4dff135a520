//! `${name}` and `${env:NAME}` substitution, and the KEY=VALUE env file the Vault wrappers use.

use std::collections::BTreeMap;

/// Where substitution failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    /// 1-based line in the suite text, when known.
    pub line: Option<usize>,
    pub message: String,
}

/// Values for `${name}` and `${env:NAME}`.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub vars: BTreeMap<String, String>,
    /// From `env_file`; consulted before the process environment.
    pub env_file: BTreeMap<String, String>,
    pub env_file_name: Option<String>,
}

impl Scope {
    fn lookup(&self, name: &str) -> Result<String, String> {
        if let Some(env) = name.strip_prefix("env:") {
            return self.lookup_env(env);
        }
        self.vars.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.vars.keys().map(String::as_str).collect();
            format!(
                "undefined variable ${{{name}}}; define it under `vars:` (defined: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )
        })
    }

    fn lookup_env(&self, name: &str) -> Result<String, String> {
        if let Some(v) = self.env_file.get(name) {
            return Ok(v.clone());
        }
        std::env::var(name).map_err(|_| {
            let file = self.env_file_name.as_deref().unwrap_or("no env_file");
            format!("${{env:{name}}} is not set in the environment nor in the env file ({file}); export it or add {name}=... to the env file")
        })
    }

    /// Replaces every `${...}` in `s`.
    pub fn substitute(&self, s: &str) -> Result<String, String> {
        self.substitute_within(s, MAX_EXPANDED_BYTES, "the substituted text")
    }

    /// Replaces every `${...}` in `s`; the result may be at most `cap` bytes (`what` names it).
    fn substitute_within(&self, s: &str, cap: usize, what: &str) -> Result<String, String> {
        let mut out = String::with_capacity(s.len().min(cap));
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in {s:?}"))?;
            let name = after[..end].trim();
            let value = self.lookup(name)?;
            if value.contains('\n') {
                return Err(format!("variable ${{{name}}} holds a newline"));
            }
            if out.len() + value.len() > cap {
                return Err(too_long(name, what));
            }
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Resolves vars that refer to other vars or the environment, in a few rounds. Each value
    /// stays under `MAX_VALUE_BYTES` and all of them under `MAX_EXPANDED_BYTES`, so variables
    /// that repeat each other cannot grow exponentially.
    pub fn resolve_vars(&mut self) -> Result<(), String> {
        for _ in 0..8 {
            let mut changed = false;
            let snapshot = self.clone();
            let mut total: usize = self.vars.values().map(String::len).sum();
            for (k, v) in self.vars.iter_mut() {
                if v.contains("${") {
                    let new = snapshot
                        .substitute_within(v, MAX_VALUE_BYTES, "one variable (64 KiB)")
                        .map_err(|e| format!("{k}: {e}"))?;
                    total = total - v.len() + new.len();
                    if total > MAX_EXPANDED_BYTES {
                        return Err(format!("{k}: {}", too_long_all()));
                    }
                    *v = new;
                    changed = true;
                }
            }
            if !changed {
                return Ok(());
            }
        }
        Err("variables refer to each other in a loop".into())
    }
}

/// Largest value one variable may expand to.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Largest suite text after substitution, and largest total of all variables.
pub const MAX_EXPANDED_BYTES: usize = 8 * 1024 * 1024;

fn too_long(name: &str, what: &str) -> String {
    format!(
        "${{{name}}} makes {what} too long; variables that repeat other variables grow \
         exponentially; expected each variable under 64 KiB and the substituted suite under 8 MiB"
    )
}

fn too_long_all() -> String {
    "all variables together expand past 8 MiB; expected fewer or shorter variables".into()
}

/// Substitutes in the suite text line by line, leaving comments alone, so that parse errors
/// keep their line numbers.
pub fn substitute_text(text: &str, scope: &Scope) -> Result<String, VarError> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let cut = comment_start(line);
        let (code, comment) = line.split_at(cut);
        let room = MAX_EXPANDED_BYTES.saturating_sub(out.len() + comment.len());
        let what = "the substituted suite (8 MiB)";
        let code = scope
            .substitute_within(code, room, what)
            .map_err(|message| VarError {
                line: Some(i + 1),
                message,
            })?;
        out.push_str(&code);
        out.push_str(comment);
    }
    Ok(out)
}

/// Byte offset of a YAML comment (`#` at line start or after a blank, outside quotes).
fn comment_start(line: &str) -> usize {
    let (mut single, mut double, mut prev_blank) = (false, false, true);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_blank => return i,
            _ => {}
        }
        prev_blank = c == ' ' || c == '\t';
    }
    line.len()
}

/// Parses a KEY=VALUE env file: `export` prefixes, single or double quotes, comments.
pub fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>, VarError> {
    let mut map = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        // The line's text is never quoted: it may hold a secret (a token without its NAME=).
        let (key, value) = line.split_once('=').ok_or_else(|| VarError {
            line: Some(i + 1),
            message: "expected NAME=VALUE, found a line without `=` (not shown: it may hold a secret); fix that line or comment it out with #".into(),
        })?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(VarError {
                line: Some(i + 1),
                message: "expected NAME=VALUE with a NAME of letters, digits and _, found other characters before the `=` (not shown: they may hold a secret); fix the name on that line".into(),
            });
        }
        map.insert(key.to_string(), unquote(value.trim()));
    }
    Ok(map)
}

fn unquote(v: &str) -> String {
    let quoted = v.len() >= 2
        && ((v.starts_with('\'') && v.ends_with('\'')) || (v.starts_with('"') && v.ends_with('"')));
    if quoted {
        return v[1..v.len() - 1].to_string();
    }
    match v.find(" #") {
        Some(i) => v[..i].trim_end().to_string(),
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_forms() {
        let m = parse_env_file("# c\nexport A='x y'\nB=\"q\"\nC=plain # note\n\nexport  D=1\n")
            .unwrap();
        assert_eq!(m["A"], "x y");
        assert_eq!(m["B"], "q");
        assert_eq!(m["C"], "plain");
        assert_eq!(m["D"], "1");
        assert_eq!(parse_env_file("oops").unwrap_err().line, Some(1));
    }

    #[test]
    fn env_file_errors_never_quote_the_line() {
        let token = "hvs.CAESIsecretsecretsecret";
        for text in [
            format!("A=1\n\n{token}\n"),
            format!("A=1\n\nBearer {token}=x\n"),
        ] {
            let e = parse_env_file(&text).unwrap_err();
            assert_eq!(e.line, Some(3));
            assert!(
                e.message.starts_with("expected NAME=VALUE"),
                "{}",
                e.message
            );
            assert!(!e.message.contains("secret") || e.message.contains("may hold a secret"));
            assert!(!e.message.contains("CAESI") && !e.message.contains("Bearer"));
        }
    }

    #[test]
    fn substitution_skips_comments_and_reports_lines() {
        let mut s = Scope::default();
        s.vars.insert("a".into(), "1.2.3.4".into());
        let t = substitute_text("x: ${a} # ${nope}\ny: '#${a}'\n", &s).unwrap();
        assert_eq!(t, "x: 1.2.3.4 # ${nope}\ny: '#1.2.3.4'\n");
        let e = substitute_text("x: 1\ny: ${nope}\n", &s).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(
            e.message.contains("undefined variable ${nope}"),
            "{}",
            e.message
        );
    }

    #[test]
    fn doubling_variables_stop_at_the_cap_naming_the_variable() {
        let mut s = Scope::default();
        s.vars.insert("a0".into(), "x".repeat(1000));
        for i in 1..8 {
            let prev = format!("${{a{}}}", i - 1);
            s.vars.insert(format!("a{i}"), prev.repeat(16));
        }
        let e = s.resolve_vars().unwrap_err();
        assert!(
            e.starts_with("a2: ${a0} makes one variable (64 KiB) too long"),
            "{e}"
        );
    }

    #[test]
    fn the_substituted_suite_is_capped() {
        let mut s = Scope::default();
        s.vars.insert("big".into(), "x".repeat(MAX_VALUE_BYTES));
        let line = format!("k: {}\n", "${big}".repeat(200));
        let e = substitute_text(&line, &s).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e
            .message
            .contains("${big} makes the substituted suite (8 MiB) too long"));
    }

    #[test]
    fn vars_resolve_each_other() {
        let mut s = Scope::default();
        s.vars.insert("base".into(), "/srv".into());
        s.vars.insert("tls".into(), "${base}/tls".into());
        s.resolve_vars().unwrap();
        assert_eq!(s.vars["tls"], "/srv/tls");
    }
}
