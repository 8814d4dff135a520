//! Loading a suite file: read, substitute variables, parse with locations, validate.

pub mod check;
pub mod expect_seed;
pub mod nesting;
pub mod schema;
pub mod suggest;
pub mod values;
pub mod vars;

pub use schema::*;
pub use values::*;

use crate::fsread::ReadError;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// A suite that loaded and validated.
#[derive(Debug, Clone)]
pub struct Suite {
    pub file: SuiteFile,
    /// The file it was read from.
    pub path: PathBuf,
    /// Variables from `env_file`, for the Vault profile's fallbacks.
    pub env: BTreeMap<String, String>,
}

/// Why a suite did not load: file, line and key when known, and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct SuiteError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The key path, e.g. `checks[2].tls.addr`.
    pub key: Option<String>,
    pub message: String,
}

impl SuiteError {
    fn new(file: &Path, line: Option<usize>, key: Option<String>, message: String) -> Self {
        SuiteError {
            file: file.display().to_string(),
            line,
            column: None,
            key,
            message,
        }
    }

    fn render(&self) -> String {
        let mut s = self.file.clone();
        if let Some(l) = self.line {
            s.push_str(&format!(":{l}"));
            if let Some(c) = self.column {
                s.push_str(&format!(":{c}"));
            }
        }
        s.push_str(": ");
        if let Some(k) = &self.key {
            s.push_str(&format!("{k}: "));
        }
        s.push_str(&self.message);
        s
    }
}

/// Largest suite file accepted.
const MAX_SUITE_BYTES: u64 = crate::fsread::SUITE_CAP;

/// Reads and validates a suite file.
pub fn load(path: &Path) -> Result<Suite, SuiteError> {
    let text = read_suite(path)?;
    load_str(&text, path)
}

/// Names the key whose value holds the first `${` on a line (`tls: { addr: "${x}" }` → addr).
fn key_before_var(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    key_before(l, l.find("${")?)
}

/// The `key` of the `key: value` pair whose value starts at byte `at` of a line.
fn key_before(line: &str, at: usize) -> Option<String> {
    let before = line
        .get(..at)?
        .trim_end()
        .trim_end_matches(['"', '\''])
        .trim_end();
    let key = before.strip_suffix(':')?;
    let key = key.rsplit(['{', ',', ' ', '-']).next()?;
    (!key.is_empty()).then(|| key.to_string())
}

/// For bad values serde points at the enclosing mapping and names only the parent; find the
/// line holding the quoted bad value and add the key written before it.
fn refine_key(mut e: SuiteError, text: &str) -> SuiteError {
    let Some(line) = e.line else { return e };
    let Some(value) = e.message.split('"').nth(1).filter(|v| !v.is_empty()) else {
        return e;
    };
    let found = text
        .lines()
        .enumerate()
        .skip(line.saturating_sub(1))
        .take(64)
        .find_map(|(i, l)| {
            let at = l.find(value)?;
            Some((i + 1, key_before(l, at)?))
        });
    if let Some((l, key)) = found {
        e.line = Some(l);
        e.column = None;
        e.key = Some(match e.key.take() {
            Some(parent) if !parent.ends_with(&key) => format!("{parent}.{key}"),
            Some(parent) => parent,
            None => key,
        });
    }
    e
}

fn read_suite(path: &Path) -> Result<String, SuiteError> {
    let err = |m: String| SuiteError::new(path, None, None, m);
    let bytes = crate::fsread::read(path, MAX_SUITE_BYTES, "a suite file").map_err(|e| {
        let hint = match e {
            crate::fsread::ReadError::NotFound { .. } => "; pass an existing file with -c",
            _ => "",
        };
        err(format!("cannot read the suite file: {}{hint}", e.detail()))
    })?;
    String::from_utf8(bytes).map_err(|_| err("suite file is not UTF-8 text".into()))
}

/// Validates suite text as if read from `path` (relative files resolve against its folder).
pub fn load_str(text: &str, path: &Path) -> Result<Suite, SuiteError> {
    if text.trim().is_empty() {
        let msg = "the suite file is empty; expected at least `suite: NAME` and `checks:`";
        return Err(SuiteError::new(path, None, None, msg.into()));
    }
    too_deep(text, path)?;
    let scope = build_scope(text, path)?;
    let substituted = vars::substitute_text(text, &scope).map_err(|e| {
        let key = e.line.and_then(|l| key_before_var(text, l));
        SuiteError::new(path, e.line, key, e.message)
    })?;
    too_deep(&substituted, path)?;
    prefixed_mode(&substituted, path)?;
    let file: SuiteFile = serde_yaml_ng::from_str(&substituted)
        .map_err(|e| echo_mode(refine_key(yaml_error(path, &e), &substituted), &substituted))?;
    validate(&file, &substituted, path)?;
    Ok(Suite {
        file,
        path: path.to_path_buf(),
        env: scope.env_file,
    })
}

/// Refuses deep nesting before the YAML parser sees it (parsing it is quadratic).
fn too_deep(text: &str, path: &Path) -> Result<(), SuiteError> {
    nesting::check(text).map_err(|e| SuiteError::new(path, Some(e.line), None, e.message()))
}

/// Reads `vars` and `env_file` from the raw document before anything else is parsed.
fn build_scope(text: &str, path: &Path) -> Result<vars::Scope, SuiteError> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        vars: BTreeMap<String, serde_yaml_ng::Value>,
        #[serde(default)]
        env_file: Option<String>,
    }
    let head: Head = serde_yaml_ng::from_str(text).map_err(|e| syntax_error(path, text, &e))?;
    let mut scope = vars::Scope::default();
    for (k, v) in head.vars {
        scope.vars.insert(
            k.clone(),
            scalar_text(&v).ok_or_else(|| {
                let line = find_line(text, &format!("{k}:"));
                SuiteError::new(
                    path,
                    line,
                    Some(format!("vars.{k}")),
                    "a variable must be a string, number or boolean".into(),
                )
            })?,
        );
    }
    scope
        .resolve_vars()
        .map_err(|m| SuiteError::new(path, None, Some("vars".into()), m))?;
    if let Some(env_file) = head.env_file {
        read_env_file(&mut scope, &env_file, text, path)?;
    }
    Ok(scope)
}

fn read_env_file(
    scope: &mut vars::Scope,
    env_file: &str,
    text: &str,
    path: &Path,
) -> Result<(), SuiteError> {
    let line = find_line(text, "env_file:");
    let key = Some("env_file".to_string());
    let name = scope
        .substitute(env_file)
        .map_err(|m| SuiteError::new(path, line, key.clone(), m))?;
    let resolved = resolve_relative(path, &name);
    // A missing env file is not fatal: the process environment may carry the same values.
    // Any `${env:NAME}` that then cannot be resolved names the file and why it was not read.
    // A FIFO, a device or an oversized file is a mistake in the suite, not a missing file.
    let body = match crate::fsread::read_text(&resolved, crate::fsread::ENV_FILE_CAP, "an env file")
    {
        Ok(b) => b,
        Err(e @ (ReadError::NotRegular { .. } | ReadError::TooLarge { .. })) => {
            return Err(SuiteError::new(path, line, key, e.to_string()));
        }
        Err(e) => {
            scope.env_file_name = Some(format!("could not be read: {e}"));
            return Ok(());
        }
    };
    scope.env_file = vars::parse_env_file(&body).map_err(|e| {
        let at = e.line.map(|l| format!(" line {l}")).unwrap_or_default();
        SuiteError::new(
            path,
            line,
            key.clone(),
            format!("env file {}{at}: {}", resolved.display(), e.message),
        )
    })?;
    scope.env_file_name = Some(resolved.display().to_string());
    Ok(())
}

fn scalar_text(v: &serde_yaml_ng::Value) -> Option<String> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A document that does not parse: a tab in the indentation is named first (YAML's own
/// message for it is obscure), else the parser's error.
fn syntax_error(path: &Path, text: &str, e: &serde_yaml_ng::Error) -> SuiteError {
    let Some((line, column)) = first_indent_tab(text) else {
        return yaml_error(path, e);
    };
    SuiteError {
        file: path.display().to_string(),
        line: Some(line),
        column: Some(column),
        key: None,
        message: "tabs are not allowed in YAML indentation; indent with spaces".into(),
    }
}

/// 1-based line and column of the first tab in a line's leading whitespace.
fn first_indent_tab(text: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let indent = l.len() - l.trim_start_matches([' ', '\t']).len();
        l[..indent].find('\t').map(|c| (i + 1, c + 1))
    })
}

/// Replaces the message of an unquoted mode YAML read as a number with one that shows what
/// the user wrote: the first unquoted `mode:` value from the error's line on.
fn echo_mode(mut e: SuiteError, text: &str) -> SuiteError {
    let Some(number) = e.message.strip_prefix(UNQUOTED_MODE) else {
        return e;
    };
    let number = number.trim().to_string();
    let from = e.line.unwrap_or(1).saturating_sub(1);
    let found = text.lines().enumerate().skip(from).find_map(|(i, l)| {
        let at = l.find("mode:")? + "mode:".len();
        let v = l[at..].trim_start();
        let end = v.find([',', '}', ' ', '#']).unwrap_or(v.len());
        let v = &v[..end];
        (!v.is_empty() && !v.starts_with(['"', '\''])).then(|| (i + 1, v.to_string()))
    });
    let written = match found {
        Some((line, v)) => {
            e.line = Some(line);
            e.column = None;
            if let Some(k) = e.key.as_mut().filter(|k| !k.ends_with(".mode")) {
                k.push_str(".mode");
            }
            v
        }
        None => number.clone(),
    };
    e.message = unquoted_mode_help(&written, &number);
    e
}

/// Refuses an unquoted `mode: 0o17` / `0x1ff` before parsing: YAML reads it as a number, and
/// one whose decimal digits happen to be octal (`0o17` is 15) would pass as another mode.
fn prefixed_mode(text: &str, path: &Path) -> Result<(), SuiteError> {
    for (i, line) in text.lines().enumerate() {
        let Some(at) = line.find("mode:") else {
            continue;
        };
        let key_starts = line[..at]
            .chars()
            .last()
            .is_none_or(|c| !c.is_alphanumeric() && c != '_');
        let v = line[at + "mode:".len()..].trim_start();
        let end = v.find([',', '}', ' ', '#']).unwrap_or(v.len());
        let written = &v[..end];
        let (radix, digits) = match written.get(..2) {
            Some("0o" | "0O") => (8, &written[2..]),
            Some("0x" | "0X") => (16, &written[2..]),
            _ => continue,
        };
        let Ok(number) = u64::from_str_radix(digits, radix) else {
            continue;
        };
        // Other numbers fail as modes anyway, with the full key (`echo_mode`).
        let slips = number.to_string().chars().all(|c| c.is_digit(8));
        if key_starts && slips {
            let msg = unquoted_mode_help(written, &number.to_string());
            return Err(SuiteError::new(path, Some(i + 1), Some("mode".into()), msg));
        }
    }
    Ok(())
}

/// Turns a YAML/serde error into file:line: key: message.
fn yaml_error(path: &Path, e: &serde_yaml_ng::Error) -> SuiteError {
    let mut message = e.to_string();
    let loc = e.location();
    if let Some(l) = &loc {
        let suffix = format!(" at line {} column {}", l.line(), l.column());
        if let Some(i) = message.find(&suffix) {
            message.replace_range(i..i + suffix.len(), "");
        }
    }
    let (mut key, mut message) = split_key(message);
    // `expect:` written before the kind key is parsed last, and `expiry` is checked as a
    // whole: their errors name the field up front.
    for field in ["expect", "expiry"] {
        if let Some(rest) = message.strip_prefix(&format!("{field}: ")) {
            key = key.map(|k| format!("{k}.{field}"));
            message = rest.to_string();
        }
    }
    let message = suggest::add_hint(&message);
    SuiteError {
        file: path.display().to_string(),
        line: loc.as_ref().map(|l| l.line()),
        column: loc.as_ref().map(|l| l.column()),
        key,
        message,
    }
}

/// serde_yaml messages start with the key path (`checks[0].tls: unknown field ...`).
fn split_key(message: String) -> (Option<String>, String) {
    if let Some((k, rest)) = message.split_once(": ") {
        let looks_like_path = !k.contains(' ') && !k.is_empty();
        if looks_like_path {
            return (Some(k.to_string()), rest.to_string());
        }
    }
    (None, message)
}

/// 1-based line of the first line whose trimmed text starts with `needle` (after `- `).
fn find_line(text: &str, needle: &str) -> Option<usize> {
    let starts = |l: &str| {
        l.trim_start()
            .trim_start_matches("- ")
            .trim_start()
            .starts_with(needle)
    };
    text.lines().position(starts).map(|i| i + 1)
}

/// Line numbers of `name:` entries by value, built in one pass (suites hold thousands of
/// checks; searching the text once per check would be quadratic).
struct NameLines {
    /// `- name: X` lines: list items, i.e. checks.
    items: HashMap<String, Vec<usize>>,
    /// Any other `name: X` line (e.g. a Vault role name), used only as a fallback.
    other: HashMap<String, Vec<usize>>,
}

impl NameLines {
    fn index(text: &str) -> Self {
        let mut n = NameLines {
            items: HashMap::new(),
            other: HashMap::new(),
        };
        for (i, l) in text.lines().enumerate() {
            let t = l.trim_start();
            let (item, t) = match t.strip_prefix("- ") {
                Some(rest) => (true, rest.trim_start()),
                None => (false, t),
            };
            let Some(value) = t.strip_prefix("name:").map(scalar_value) else {
                continue;
            };
            let map = if item { &mut n.items } else { &mut n.other };
            map.entry(value.to_string()).or_default().push(i + 1);
        }
        n
    }

    /// Every `- name:` line, in order: where checks start.
    fn item_lines(&self) -> Vec<usize> {
        let mut all: Vec<usize> = self.items.values().flatten().copied().collect();
        all.sort_unstable();
        all
    }

    fn of(&self, name: &str) -> &[usize] {
        self.items
            .get(name)
            .or_else(|| self.other.get(name))
            .map_or(&[], Vec::as_slice)
    }
}

/// A plain or quoted scalar written after a key, without a trailing comment.
fn scalar_value(raw: &str) -> &str {
    let v = raw.split(" #").next().unwrap_or_default().trim();
    v.trim_matches(|c| c == '"' || c == '\'')
}

/// Resolves a path from the suite against the suite file's folder when relative.
pub fn resolve_relative(suite_path: &Path, p: &str) -> PathBuf {
    let pb = PathBuf::from(p);
    if pb.is_absolute() {
        return pb;
    }
    suite_path.parent().map(|d| d.join(&pb)).unwrap_or(pb)
}

impl Suite {
    /// A path named in the suite, resolved against the suite file's folder.
    pub fn path_of(&self, p: &str) -> PathBuf {
        resolve_relative(&self.path, p)
    }

    /// Check names in file order.
    pub fn check_names(&self) -> Vec<&str> {
        self.file.checks.iter().map(|c| c.name.as_str()).collect()
    }
}

fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Checks what serde cannot: names, stages, tags, and each kind's own rules.
fn validate(file: &SuiteFile, text: &str, path: &Path) -> Result<(), SuiteError> {
    if file.suite.trim().is_empty() || file.suite.contains(char::is_whitespace) {
        let line = find_line(text, "suite:");
        return Err(SuiteError::new(
            path,
            line,
            Some("suite".into()),
            "the suite needs a name without spaces, e.g. `suite: prod`".into(),
        ));
    }
    let mut seen = HashSet::new();
    let name_lines = NameLines::index(text);
    let starts = name_lines.item_lines();
    for (i, check) in file.checks.iter().enumerate() {
        let lines = name_lines.of(&check.name);
        let line = lines.first().copied();
        let span = line.map(|l| Span {
            from: l,
            until: starts.iter().copied().find(|&s| s > l),
        });
        let key = |k: &str| Some(format!("checks[{i}]{k}"));
        if !valid_token(&check.name) {
            return Err(SuiteError::new(
                path,
                line,
                key(".name"),
                format!(
                    "bad check name {:?}; use lowercase letters, digits, _ and - ([a-z0-9_-]+)",
                    check.name
                ),
            ));
        }
        if !seen.insert(check.name.as_str()) {
            let line = lines.get(1).copied().or(line);
            return Err(SuiteError::new(
                path,
                line,
                key(".name"),
                format!(
                    "duplicate check name {:?}; every check needs its own name",
                    check.name
                ),
            ));
        }
        validate_check(check, path, line, &key)?;
        check.kind.validate().map_err(|inv| {
            let at = span.and_then(|s| s.line_of(text, &inv.key)).or(line);
            SuiteError::new(path, at, key(&inv.key), inv.message)
        })?;
    }
    Ok(())
}

/// The lines of one check: from its `- name:` line to the next check's, if any.
#[derive(Debug, Clone, Copy)]
struct Span {
    from: usize,
    until: Option<usize>,
}

impl Span {
    /// The line within the check where the last key of `key_path` (`.tls.addr` → `addr`,
    /// `.files[1]` → `files`) is written.
    fn line_of(self, text: &str, key_path: &str) -> Option<usize> {
        let last = key_path.rsplit('.').next()?;
        let last = last.split('[').next().filter(|k| !k.is_empty())?;
        let until = self.until.unwrap_or(usize::MAX);
        text.lines()
            .enumerate()
            .skip(self.from - 1)
            .take_while(|(i, _)| i + 1 < until)
            .find(|(_, l)| writes_key(l, last))
            .map(|(i, _)| i + 1)
    }
}

/// Whether a line writes `key:` as a block key or inside a flow mapping.
fn writes_key(line: &str, key: &str) -> bool {
    line.match_indices(key).any(|(at, _)| {
        let before = line[..at].trim_end();
        let after = &line[at + key.len()..];
        after.starts_with(':') && (before.is_empty() || before.ends_with(['{', ',', '-']))
    })
}

fn validate_check(
    check: &CheckSpec,
    path: &Path,
    line: Option<usize>,
    key: &dyn Fn(&str) -> Option<String>,
) -> Result<(), SuiteError> {
    let err = |k: &str, m: String| Err(SuiteError::new(path, line, key(k), m));
    for (what, v) in [("stage", check.stage.as_deref())] {
        if let Some(v) = v.filter(|v| !valid_token(v)) {
            return err(
                &format!(".{what}"),
                format!("bad {what} {v:?}; use [a-z0-9_-]+"),
            );
        }
    }
    if let Some(t) = check.tags.iter().find(|t| !valid_token(t)) {
        return err(".tags", format!("bad tag {t:?}; use [a-z0-9_-]+"));
    }
    Ok(())
}

/// Splits `host:port` / `[v6]:port`; None when malformed.
pub fn split_host_port(addr: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h.to_string(), p)
    } else {
        let (h, p) = addr.rsplit_once(':')?;
        if h.contains(':') {
            return None;
        }
        (h.to_string(), p)
    };
    let port: u16 = port.parse().ok()?;
    (!host.is_empty() && port != 0).then_some((host, port))
}
