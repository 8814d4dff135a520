//! ACL policies: a parser for the HCL (and JSON) subset real policies use —
//! `path "<glob>" { capabilities = [...] }` — and the path check behind 403s.

use serde_json::Value;

/// Capabilities a policy may name.
const CAPABILITIES: &[&str] = &[
    "create",
    "read",
    "update",
    "delete",
    "list",
    "sudo",
    "deny",
    "patch",
    "subscribe",
    "recover",
];

/// Built-in `default` policy: what every login token may do to itself.
pub(crate) const DEFAULT_POLICY: &str = r#"# Tokens may look up, renew and revoke themselves.
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
path "sys/capabilities-self" { capabilities = ["update"] }
path "sys/internal/ui/resultant-acl" { capabilities = ["read"] }
path "cubbyhole/*" { capabilities = ["create", "read", "update", "delete", "list"] }
"#;

/// One `path` stanza.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    pub pattern: String,
    pub capabilities: Vec<String>,
}

/// Parses a policy text (HCL subset or JSON). Errors read like Vault's.
pub(crate) fn parse(text: &str) -> Result<Vec<Rule>, String> {
    if text.trim_start().starts_with('{') {
        return parse_json(text);
    }
    let tokens = tokenize(text)?;
    let mut p = Parser {
        toks: &tokens,
        pos: 0,
    };
    p.policy()
}

fn parse_json(text: &str) -> Result<Vec<Rule>, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("failed to parse policy: {e}"))?;
    let paths = v
        .get("path")
        .and_then(Value::as_object)
        .ok_or("failed to parse policy: no paths")?;
    let mut rules = Vec::new();
    for (pattern, body) in paths {
        let caps = body
            .get("capabilities")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let caps: Vec<String> = caps
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        rules.push(rule(pattern, caps)?);
    }
    Ok(rules)
}

fn rule(pattern: &str, capabilities: Vec<String>) -> Result<Rule, String> {
    if let Some(bad) = capabilities
        .iter()
        .find(|c| !CAPABILITIES.contains(&c.as_str()))
    {
        return Err(format!(
            "failed to parse policy: path {pattern:?}: invalid capability {bad:?}"
        ));
    }
    let pattern = pattern.trim_start_matches('/').to_string();
    Ok(Rule {
        pattern,
        capabilities,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '#' => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'*') => skip_block(&mut chars)?,
            '"' => out.push(Tok::Str(string(&mut chars)?)),
            '{' | '}' | '[' | ']' | '=' | ',' => out.push(Tok::Punct(c)),
            c if c.is_alphanumeric() || c == '_' => out.push(Tok::Ident(ident(c, &mut chars))),
            other => return Err(format!("failed to parse policy: unexpected {other:?}")),
        }
    }
    Ok(out)
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_line(chars: &mut Chars<'_>) {
    for c in chars.by_ref() {
        if c == '\n' {
            break;
        }
    }
}

fn skip_block(chars: &mut Chars<'_>) -> Result<(), String> {
    chars.next();
    let mut prev = ' ';
    for c in chars.by_ref() {
        if prev == '*' && c == '/' {
            return Ok(());
        }
        prev = c;
    }
    Err("failed to parse policy: unterminated comment".into())
}

fn string(chars: &mut Chars<'_>) -> Result<String, String> {
    let mut s = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(s),
            '\\' => s.push(chars.next().unwrap_or('\\')),
            c => s.push(c),
        }
    }
    Err("failed to parse policy: unterminated string".into())
}

fn ident(first: char, chars: &mut Chars<'_>) -> String {
    let mut s = first.to_string();
    while let Some(&c) = chars.peek() {
        if !(c.is_alphanumeric() || c == '_' || c == '-') {
            break;
        }
        s.push(c);
        chars.next();
    }
    s
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<&Tok> {
        let t = self.toks.get(self.pos);
        self.pos += 1;
        t
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.next() {
            Some(Tok::Punct(p)) if *p == c => Ok(()),
            other => Err(format!(
                "failed to parse policy: expected {c:?}, found {other:?}"
            )),
        }
    }

    fn policy(&mut self) -> Result<Vec<Rule>, String> {
        let mut rules = Vec::new();
        while let Some(tok) = self.next().cloned() {
            match tok {
                Tok::Ident(k) if k == "path" => rules.push(self.path_block()?),
                Tok::Ident(k) if k == "name" => {
                    self.expect('=')?;
                    self.value()?;
                }
                other => return Err(format!("failed to parse policy: invalid key {other:?}")),
            }
        }
        Ok(rules)
    }

    fn path_block(&mut self) -> Result<Rule, String> {
        let pattern = match self.next() {
            Some(Tok::Str(s)) => s.clone(),
            other => {
                return Err(format!(
                    "failed to parse policy: expected a path, found {other:?}"
                ))
            }
        };
        self.expect('{')?;
        let mut caps = Vec::new();
        loop {
            match self.next().cloned() {
                Some(Tok::Punct('}')) => break,
                Some(Tok::Ident(k)) => {
                    self.expect('=')?;
                    let v = self.value()?;
                    caps.extend(capabilities_of(&k, v));
                }
                other => return Err(format!("failed to parse policy: unexpected {other:?}")),
            }
        }
        rule(&pattern, caps)
    }

    /// A value: string, list of strings, or a `{...}` block (skipped).
    fn value(&mut self) -> Result<Vec<String>, String> {
        match self.next().cloned() {
            Some(Tok::Str(s)) | Some(Tok::Ident(s)) => Ok(vec![s]),
            Some(Tok::Punct('[')) => self.list(),
            Some(Tok::Punct('{')) => self.skip_braces().map(|_| Vec::new()),
            other => Err(format!("failed to parse policy: unexpected {other:?}")),
        }
    }

    fn list(&mut self) -> Result<Vec<String>, String> {
        let mut items = Vec::new();
        loop {
            match self.next().cloned() {
                Some(Tok::Punct(']')) => return Ok(items),
                Some(Tok::Punct(',')) => {}
                Some(Tok::Str(s)) => items.push(s),
                Some(Tok::Punct('{')) => self.skip_braces()?,
                other => return Err(format!("failed to parse policy: unexpected {other:?}")),
            }
        }
    }

    fn skip_braces(&mut self) -> Result<(), String> {
        let mut depth = 1;
        while depth > 0 {
            match self.next() {
                Some(Tok::Punct('{')) => depth += 1,
                Some(Tok::Punct('}')) => depth -= 1,
                Some(_) => {}
                None => return Err("failed to parse policy: unbalanced braces".into()),
            }
        }
        Ok(())
    }
}

/// `capabilities = [...]`, or the legacy `policy = "write"` form.
fn capabilities_of(key: &str, values: Vec<String>) -> Vec<String> {
    let caps: &[&str] = match (key, values.first().map(String::as_str)) {
        ("capabilities", _) => return values,
        ("policy", Some("deny")) => &["deny"],
        ("policy", Some("read")) => &["read", "list"],
        ("policy", Some("write")) => &["create", "read", "update", "delete", "list"],
        ("policy", Some("sudo")) => &["create", "read", "update", "delete", "list", "sudo"],
        _ => &[],
    };
    caps.iter().map(|c| c.to_string()).collect()
}

/// How specific a pattern's match of `path` is; `None` when it does not match.
fn match_rank(pattern: &str, path: &str) -> Option<(u8, usize, usize)> {
    let glob = pattern.ends_with('*');
    let base = pattern.strip_suffix('*').unwrap_or(pattern);
    let base_segs: Vec<&str> = base.split('/').collect();
    let path_segs: Vec<&str> = path.split('/').collect();
    let plus = base_segs.iter().filter(|s| **s == "+").count();
    if !glob && base_segs.len() != path_segs.len() {
        return None;
    }
    if base_segs.len() > path_segs.len() {
        return None;
    }
    for (i, seg) in base_segs.iter().enumerate() {
        let last = i == base_segs.len() - 1;
        let ok = match (*seg, last && glob) {
            ("+", _) => true,
            (s, true) => path_segs[i].starts_with(s),
            (s, false) => path_segs[i] == s,
        };
        if !ok {
            return None;
        }
    }
    let exact = u8::from(!glob && plus == 0);
    Some((exact, base.len(), usize::MAX - plus))
}

/// Whether `rules` (all of a token's policies) allow `cap` on `path`, with `sudo` if asked.
pub(crate) fn allows(rules: &[Rule], path: &str, cap: &str, need_sudo: bool) -> bool {
    let ranked: Vec<(_, &Rule)> = rules
        .iter()
        .filter_map(|r| match_rank(&r.pattern, path).map(|k| (k, r)))
        .collect();
    let Some(best) = ranked.iter().map(|(k, _)| *k).max() else {
        return false;
    };
    let caps: Vec<&str> = ranked
        .iter()
        .filter(|(k, _)| *k == best)
        .flat_map(|(_, r)| r.capabilities.iter().map(String::as_str))
        .collect();
    let has = |c: &str| caps.contains(&c);
    let cap_ok = has(cap) || (cap == "update" && has("create"));
    !has("deny") && cap_ok && (!need_sudo || has("sudo"))
}

/// Whether `rules` grant anything under the mount `mount` (ending in `/`): a capability on
/// the mount path itself or on a path below it, as Vault's `hasMountAccess`.
pub(crate) fn has_mount_access(rules: &[Rule], mount: &str) -> bool {
    let on_mount = |r: &Rule| match_rank(&r.pattern, mount).is_some();
    let below = |r: &Rule| r.pattern.starts_with(mount);
    rules
        .iter()
        .filter(|r| on_mount(r) || below(r))
        .any(|r| r.capabilities.iter().any(|c| c != "deny"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hcl_and_checks_paths() {
        let rules = parse(
            r#"
            # app policy
            path "pki-prod/issue/app-a" { capabilities = ["create", "update"] }
            path "secret/data/app-a/*" {
              capabilities = ["read"]
              allowed_parameters = { "x" = [] }
            }
            path "secret/+/shared" { capabilities = ["read"] }
            path "secret/data/app-a/blocked" { capabilities = ["deny"] }
            "#,
        )
        .unwrap();
        assert!(allows(&rules, "pki-prod/issue/app-a", "update", false));
        assert!(!allows(&rules, "pki-prod/issue/app-b", "update", false));
        assert!(allows(&rules, "secret/data/app-a/config", "read", false));
        assert!(!allows(&rules, "secret/data/app-a/config", "update", false));
        assert!(allows(&rules, "secret/data/shared", "read", false));
        assert!(!allows(&rules, "secret/data/app-a/blocked", "read", false));
        assert!(parse("path \"x\" { capabilities = [\"fly\"] }").is_err());
        assert!(parse("bogus").is_err());
    }

    #[test]
    fn mount_access_counts_any_capability_at_or_below_the_mount() {
        let rules = parse(
            r#"
            path "secret/metadata/*" { capabilities = ["list"] }
            path "kv1/*" { capabilities = ["deny"] }
            path "pki-*" { capabilities = ["read"] }
            "#,
        )
        .unwrap();
        assert!(has_mount_access(&rules, "secret/"));
        assert!(!has_mount_access(&rules, "kv1/"));
        assert!(has_mount_access(&rules, "pki-prod/"));
        assert!(!has_mount_access(&rules, "cubbyhole/"));
    }

    #[test]
    fn default_policy_parses() {
        let rules = parse(DEFAULT_POLICY).unwrap();
        assert!(allows(&rules, "auth/token/lookup-self", "read", false));
        assert!(!allows(&rules, "sys/mounts", "read", false));
    }
}
