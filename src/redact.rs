//! One redaction for every path that reaches a user, a log or an HTTP answer: Vault/OpenBao
//! tokens, PEM private key blocks (encrypted and truncated ones too), `X-Vault-Token` and
//! `Authorization` header values, and the tokens this process holds. Applied last, on the
//! finished text; [`truncate`] scrubs before it cuts, so a cut never leaves part of a secret.

use regex::{Captures, Regex};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// What stands in for a removed secret. No character of it can extend a token shape, and it
/// is safe inside JSON strings, YAML, XML text and Prometheus label values.
pub const MARK: &str = "[redacted]";

/// What stands in for a removed PEM private key block.
pub const KEY_MARK: &str = "[redacted private key]";

/// Known secrets shorter than this are not searched for (a dev-mode token such as `root`
/// would otherwise blank out every `root` in a report).
pub const MIN_KNOWN: usize = 8;

/// Removes every secret shape and every token this process holds from `text`.
pub fn redact(text: &str) -> String {
    redact_with(text, &[])
}

/// [`redact`], also removing the given secret values (each at least [`MIN_KNOWN`] long).
pub fn redact_with(text: &str, secrets: &[&str]) -> String {
    let mut out = remove_known(text, secrets);
    out = remove_known(&out, &held_refs(&held()));
    out = remove_pem_keys(&out);
    if may_name_a_secret(&out) {
        out = headers().replace_all(&out, header_mark).into_owned();
    }
    token_shapes().replace_all(&out, token_mark).into_owned()
}

/// Redacts `text`, then cuts it to at most `max` characters (plus `…`), never inside a
/// redaction marker: a cut that would split one ends before the marker instead.
pub fn truncate(text: &str, max: usize) -> String {
    let clean = redact(text);
    let Some((cut, _)) = clean.char_indices().nth(max) else {
        return clean;
    };
    let cut = outside_marks(&clean, cut);
    format!("{}…", &clean[..cut])
}

/// Most configured secrets kept for the life of the process (a reloaded suite may bring new
/// ones; the oldest are dropped beyond this).
const MAX_PINNED: usize = 64;

/// Remembers a secret this process holds (a Vault token) for as long as it is alive.
pub fn remember(secret: &Arc<str>) {
    if secret.len() < MIN_KNOWN {
        return;
    }
    let mut held = registry();
    held.retain(|w| w.strong_count() > 0);
    held.push(Arc::downgrade(secret));
}

/// Remembers a configured secret (the profile's token, `VAULT_TOKEN`) for the life of the
/// process: it may be echoed after the value that carried it is gone.
pub fn remember_always(secret: &Arc<str>) {
    if secret.len() < MIN_KNOWN {
        return;
    }
    let mut pinned = pinned();
    if pinned.iter().any(|p| p == secret) {
        return;
    }
    if pinned.len() >= MAX_PINNED {
        pinned.remove(0);
    }
    pinned.push(secret.clone());
}

fn registry() -> std::sync::MutexGuard<'static, Vec<Weak<str>>> {
    static HELD: OnceLock<Mutex<Vec<Weak<str>>>> = OnceLock::new();
    HELD.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn pinned() -> std::sync::MutexGuard<'static, Vec<Arc<str>>> {
    static PINNED: OnceLock<Mutex<Vec<Arc<str>>>> = OnceLock::new();
    PINNED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The secrets still held, longest first (so a secret holding another is removed whole).
fn held() -> Vec<Arc<str>> {
    let mut live: Vec<Arc<str>> = registry().iter().filter_map(Weak::upgrade).collect();
    live.extend(pinned().iter().cloned());
    live.sort_by_key(|s| std::cmp::Reverse(s.len()));
    live.dedup();
    live
}

fn held_refs(held: &[Arc<str>]) -> Vec<&str> {
    held.iter().map(|s| &**s).collect()
}

/// Each secret as written, and in its JSON- and Debug-escaped forms (a report quotes text).
fn remove_known(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= MIN_KNOWN) {
        for form in escaped_forms(s) {
            if out.contains(&form) {
                out = out.replace(&form, MARK);
            }
        }
    }
    out
}

/// The longest first, so an escaped form is replaced whole before the raw one could match
/// part of it (and leave half an escape sequence behind).
fn escaped_forms(s: &str) -> Vec<String> {
    let json = serde_json::to_string(s).unwrap_or_default();
    let debug = format!("{s:?}");
    let mut forms = vec![s.to_string()];
    for quoted in [json, debug] {
        let inner = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or(&quoted)
            .to_string();
        if !forms.contains(&inner) {
            forms.push(inner);
        }
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms
}

/// Vault and OpenBao tokens: `hvs.`/`hvb.`/`hvr.` (from 8 characters on: nothing else looks
/// like that); the legacy and OpenBao service and recovery tokens `s.`/`r.` with 24 or more
/// letters and digits (a namespace suffix `.nsid` is left, it is no secret); batch tokens
/// `b.` with 40 or more base64url characters; JWTs (a compact JWS: `eyJ` header, payload and
/// signature in base64url), which are bearer credentials too.
fn token_shapes() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"(hv[sbr])\.[A-Za-z0-9_-]{8,}",
            r"|\b([sr])\.[A-Za-z0-9]{24,}",
            r"|\b(b)\.[A-Za-z0-9_-]{40,}",
            r"|\b(eyJ)[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
        ))
        .expect("static regex")
    })
}

fn token_mark(c: &Captures<'_>) -> String {
    let prefix = (1..=4).find_map(|i| c.get(i)).map_or("", |m| m.as_str());
    format!("{prefix}.{MARK}")
}

/// `X-Vault-Token: v`, `VAULT_TOKEN=v`, `"client_token": "v"` (quoted or JSON-escaped) and
/// `Authorization: Bearer v` (any common scheme): the name stays, the value goes.
fn headers() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r#"(?i)(x-vault-token|vault_token|bao_token|client_token|secret_id"#,
            r#"|(?:proxy-)?authorization)(\\?"?\s*[:=]\s*\\?"?)"#,
            r#"((?:basic|bearer|token|negotiate|digest)\s+)?([^\s"',;\\\[\]]+)"#
        ))
        .expect("static regex")
    })
}

/// A fast pre-check for [`headers`]: every name it knows contains one of these words. A
/// case-insensitive regex scan costs ~4 ns a byte (10 ms for the /metrics of 1000 checks);
/// this, a tenth of that.
fn may_name_a_secret(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["token", "secret_id", "authorization"]
        .iter()
        .any(|w| lower.contains(w))
}

/// The value goes; an `Authorization` header without a scheme is not one (ordinary prose).
fn header_mark(c: &Captures<'_>) -> String {
    let name = &c[1];
    let scheme = c.get(3).map_or("", |m| m.as_str());
    if name.to_ascii_lowercase().ends_with("authorization") && scheme.is_empty() {
        return c[0].to_string();
    }
    format!("{name}{}{scheme}{MARK}", &c[2])
}

const BEGIN: &str = "-----BEGIN ";
const DASHES: &str = "-----";

/// Every `-----BEGIN … PRIVATE KEY…-----` block, through its END line or, when there is none
/// (a truncated block), through the last character that can belong to a PEM body.
fn remove_pem_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_key_begin(rest) {
        out.push_str(&rest[..start]);
        out.push_str(KEY_MARK);
        rest = &rest[start + key_block_len(&rest[start..])..];
    }
    out.push_str(rest);
    out
}

/// The byte offset of the next BEGIN line whose label names a private key.
fn find_key_begin(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(BEGIN) {
        let at = from + i;
        if label_of(&text[at + BEGIN.len()..]).is_some_and(|l| l.contains("PRIVATE KEY")) {
            return Some(at);
        }
        from = at + BEGIN.len();
    }
    None
}

/// `RSA PRIVATE KEY` of `RSA PRIVATE KEY-----…`: upper-case words closed by five dashes.
fn label_of(after_begin: &str) -> Option<&str> {
    let end = after_begin.find(DASHES)?;
    let label = &after_begin[..end];
    let ok = label
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ');
    (ok && !label.is_empty() && end <= 64).then_some(label)
}

/// Length of the block starting at a BEGIN line: to the end of its END line when that follows
/// within the body, else to the end of the body.
fn key_block_len(block: &str) -> usize {
    let head = BEGIN.len() + label_of(&block[BEGIN.len()..]).map_or(0, str::len) + DASHES.len();
    let body = block[head..]
        .char_indices()
        .find(|(_, c)| !is_body_char(*c))
        .map_or(block.len() - head, |(i, _)| i);
    let body_text = &block[head..head + body];
    match end_line(body_text) {
        Some(end) => head + end,
        None => head + body - odd_backslash(body_text),
    }
}

/// 1 when the body ends in an odd run of backslashes: the last one starts the escape of the
/// character after the body (`\"` in JSON) and must stay, or the quoting would break.
fn odd_backslash(body: &str) -> usize {
    let run = body.len() - body.trim_end_matches('\\').len();
    run % 2
}

/// The offset just past `-----END …-----` in a body, if there is one.
fn end_line(body: &str) -> Option<usize> {
    let at = body.find("-----END ")?;
    let after = &body[at + "-----END ".len()..];
    let close = after.find(DASHES)?;
    Some(at + "-----END ".len() + close + DASHES.len())
}

/// Base64, PEM header text (`Proc-Type: 4,ENCRYPTED`, `DEK-Info: AES-256-CBC,…`), line
/// breaks raw or escaped (`\n` in JSON or quoted text) and U+FFFD (the human report's
/// stand-in for control characters).
fn is_body_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '+' | '/' | '=' | ':' | ',' | '-' | ' ' | '\t' | '\r' | '\n' | '\\' | '\u{fffd}'
        )
}

/// Moves a cut at byte `cut` back to the start of a marker it would split (with the token
/// prefix or header name written before it).
fn outside_marks(text: &str, cut: usize) -> usize {
    for mark in [KEY_MARK, MARK] {
        let mut from = 0;
        while let Some(i) = text[from..].find(mark) {
            let (start, end) = (from + i, from + i + mark.len());
            if start < cut && cut < end {
                return start_of_prefix(text, start);
            }
            from = end;
        }
    }
    cut
}

/// A marker's start, moved back over the token prefix written directly before it.
fn start_of_prefix(text: &str, mark: usize) -> usize {
    let before = &text[..mark];
    ["hvs.", "hvb.", "hvr.", "s.", "b.", "r."]
        .iter()
        .find(|p| before.ends_with(*p))
        .map_or(mark, |p| mark - p.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HVS: &str = "hvs.CAESIJ2xExampleExampleExampleExampleExample_-x";
    /// A made-up key block (the label is split so the source holds no key header).
    const KEY: &str = concat!(
        "-----BEGIN PRIVATE",
        " KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\nAbCdEfGh+/==\n-----END PRIVATE",
        " KEY-----"
    );

    #[test]
    fn vault_and_openbao_token_shapes_go() {
        for t in [
            HVS,
            "hvb.AAAAAQJfRm9vYmFyYmF6cXV4",
            "hvr.AbCdEfGh12345678",
            "s.Hd8kFJ2nL0pQ7rT9vX1zB3mC",
            "b.AAAAAQL2lVgN0k5jWmC8vYxV1bW2qA3xYz9pQ7Uv_-",
            "r.Hd8kFJ2nL0pQ7rT9vX1zB3mC",
            "s.Hd8kFJ2nL0pQ7rT9vX1zB3mC.Ab1Cd",
        ] {
            let out = redact(&format!("token {t} failed"));
            assert!(!out.contains(&t[2..12]), "{t} survived: {out}");
            assert!(out.contains(MARK), "{out}");
        }
        assert_eq!(redact(&format!("[{HVS}]")), "[hvs.[redacted]]");
    }

    #[test]
    fn ordinary_text_stays() {
        for t in [
            "permission denied",
            "vault.prod.privsec.ch:8200",
            "/home/app-a/tls/server.crt",
            "position=\"root\" s.short",
            "hosts.example-with-a-long-name.org",
        ] {
            assert_eq!(redact(t), t);
        }
    }

    #[test]
    fn pem_private_keys_go_whole() {
        let out = redact(&format!("stdout: {KEY}\ndone"));
        assert_eq!(out, format!("stdout: {KEY_MARK}\ndone"));
        let enc = concat!(
            "-----BEGIN RSA PRIVATE",
            " KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,0A1B2C\n\nq83m+/Zx==\n-----END RSA PRIVATE",
            " KEY-----"
        );
        assert_eq!(redact(enc), KEY_MARK);
        let p8 = concat!(
            "-----BEGIN ENCRYPTED PRIVATE",
            " KEY-----\nMIIFHDBOBgkq\n-----END ENCRYPTED PRIVATE",
            " KEY-----"
        );
        assert_eq!(redact(p8), KEY_MARK);
        assert_eq!(
            redact(concat!(
                "-----BEGIN OPENSSH PRIVATE",
                " KEY-----\nb3BlbnNzaC1r"
            )),
            KEY_MARK
        );
    }

    #[test]
    fn truncated_and_escaped_blocks_go_to_the_end_of_their_body() {
        let json = serde_json::to_string(&format!("x {KEY}")).unwrap();
        assert_eq!(redact(&json), format!("\"x {KEY_MARK}\""));
        let cut = &KEY[..60];
        assert_eq!(
            redact(&format!("{{\"m\": \"{cut}\"}}")),
            format!("{{\"m\": \"{KEY_MARK}\"}}")
        );
        let human = KEY.replace('\n', "\u{fffd}");
        assert_eq!(redact(&human), KEY_MARK);
    }

    #[test]
    fn a_truncated_block_leaves_the_quoting_intact() {
        let quoted = format!("{:?}", format!("{}\" and more", &KEY[..70]));
        let json = serde_json::to_string(&format!("said {quoted}")).unwrap();
        let out = redact(&json);
        let back: String = serde_json::from_str(&out).unwrap();
        assert!(back.starts_with("said \"[redacted private key]"), "{back}");
        let secret = "abc\\def\"ghi";
        let doc = serde_json::to_string(&format!("x {secret} y")).unwrap();
        let out = redact_with(&doc, &[secret]);
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "x [redacted] y");
    }

    #[test]
    fn certificates_stay() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(redact(cert), cert);
    }

    #[test]
    fn header_values_go() {
        assert_eq!(
            redact("X-Vault-Token: abcdef123456"),
            "X-Vault-Token: [redacted]"
        );
        assert_eq!(
            redact("authorization: Bearer eyJhbGciOi.x.y"),
            "authorization: Bearer [redacted]"
        );
        assert_eq!(
            redact("{\"client_token\":\"custom-value\"}"),
            "{\"client_token\":\"[redacted]\"}"
        );
        assert_eq!(redact("VAULT_TOKEN=whatever"), "VAULT_TOKEN=[redacted]");
    }

    #[test]
    fn known_secrets_go_in_every_quoting() {
        let secret = "custom\"secret\\1234";
        let quoted = serde_json::to_string(secret).unwrap();
        let out = redact_with(&format!("a {secret} b {quoted}"), &[secret]);
        assert!(!out.contains("custom"), "{out}");
        assert_eq!(redact_with("root of trust", &["root"]), "root of trust");
    }

    #[test]
    fn held_tokens_go_while_alive() {
        let t: Arc<str> = Arc::from("opaque-site-token-42");
        remember(&t);
        assert_eq!(redact("said opaque-site-token-42"), "said [redacted]");
        drop(t);
        // Another test's redaction may hold an upgraded copy for a moment: the token must be
        // gone once no one holds it, not at this very instant.
        let gone = (0..200).any(|_| {
            let out = redact("said opaque-site-token-42");
            out == "said opaque-site-token-42" || {
                std::thread::sleep(std::time::Duration::from_millis(5));
                false
            }
        });
        assert!(gone, "a dropped token is still redacted");
    }

    #[test]
    fn configured_secrets_go_for_good() {
        let t: Arc<str> = Arc::from("configured-site-token-77");
        remember_always(&t);
        remember_always(&t);
        drop(t);
        assert_eq!(redact("x configured-site-token-77"), "x [redacted]");
        let pinned = pinned();
        let same = pinned
            .iter()
            .filter(|p| &***p == "configured-site-token-77");
        assert_eq!(same.count(), 1, "pinned once");
    }

    #[test]
    fn truncation_scrubs_first() {
        let text = format!("Vault said: {HVS} is bad");
        for max in 0..text.len() {
            let out = truncate(&text, max);
            assert!(!out.contains("CAESI"), "{max}: {out}");
            assert!(
                !out.contains("hvs.[r") || out.contains(MARK),
                "{max}: {out}"
            );
        }
        assert_eq!(truncate(&text, 18), "Vault said: …");
        assert_eq!(truncate("short", 10), "short");
        let glued = format!("{}{HVS}", "y".repeat(10));
        assert_eq!(truncate(&glued, 16), format!("{}…", "y".repeat(10)));
    }

    #[test]
    fn truncation_never_splits_a_marker() {
        let text = format!("key {KEY} end");
        assert_eq!(truncate(&text, 10), "key …");
        assert_eq!(
            truncate(&text, 4 + KEY_MARK.len()),
            format!("key {KEY_MARK}…")
        );
    }
}

#[cfg(test)]
mod perf {
    use super::*;

    /// `cargo test --release --lib redact::perf -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn stages() {
        let line = "rotcheck_cert_not_after_timestamp_seconds{suite=\"bench\",check=\"check-0042\",position=\"intermediate\",subject_cn=\"rotcheck lab pki-prod intermediate CA\",serial=\"743780bf9cd4e4f03f8d8b9640e63e6930e864a0\"} 1953064943\n";
        let text = line.repeat(2_600_000 / line.len());
        let time = |name: &str, f: &dyn Fn(&str) -> String| {
            let t = std::time::Instant::now();
            for _ in 0..10 {
                std::hint::black_box(f(&text));
            }
            let ms = t.elapsed().as_secs_f64() * 100.0;
            println!("{name}: {ms:.2} ms for {} bytes", text.len());
        };
        time("known", &|t| remove_known(t, &held_refs(&held())));
        time("pem", &remove_pem_keys);
        time("headers", &|t| {
            headers().replace_all(t, header_mark).into_owned()
        });
        time("tokens", &|t| {
            token_shapes().replace_all(t, token_mark).into_owned()
        });
        time("all", &redact);
    }

    #[test]
    fn jwts_are_redacted() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        assert_eq!(
            redact(&format!("token {jwt} end")),
            "token eyJ.[redacted] end"
        );
    }
}
