//! `expect.status` of the `http` kind: which codes pass (default any 2xx), and a failing
//! status explained the way an operator would read it: nginx asking for a client
//! certificate, a proxy answering for a backend it could not reach or trust, a redirect.

use super::exchange::{Body, Head};
use crate::model::Assertion;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// One accepted status: a code (`200`) or a class (`"2xx"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Exact(u16),
    Class(u16),
}

impl Code {
    fn parse(v: &serde_yaml_ng::Value) -> Option<Code> {
        if let Some(n) = v.as_u64() {
            let n = u16::try_from(n).ok().filter(|n| (100..=599).contains(n))?;
            return Some(Code::Exact(n));
        }
        let s = v.as_str()?.trim().to_ascii_lowercase();
        if let Ok(n) = s.parse::<u16>() {
            return (100..=599).contains(&n).then_some(Code::Exact(n));
        }
        let d = s.strip_suffix("xx")?.parse::<u16>().ok()?;
        (1..=5).contains(&d).then_some(Code::Class(d))
    }

    fn accepts(self, status: u16) -> bool {
        match self {
            Code::Exact(n) => n == status,
            Code::Class(d) => status / 100 == d,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Exact(n) => write!(f, "{n}"),
            Code::Class(d) => write!(f, "{d}xx"),
        }
    }
}

/// `status: 200`, `status: [200, 204]`, `status: 2xx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusExpect(pub Vec<Code>);

impl Default for StatusExpect {
    /// Any 2xx.
    fn default() -> Self {
        StatusExpect(vec![Code::Class(2)])
    }
}

impl StatusExpect {
    /// True when `status` is one of the accepted codes.
    pub fn accepts(&self, status: u16) -> bool {
        self.0.iter().any(|c| c.accepts(status))
    }
}

impl fmt::Display for StatusExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self.0.iter().map(Code::to_string).collect();
        f.write_str(&all.join(" or "))
    }
}

impl<'de> Deserialize<'de> for StatusExpect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_yaml_ng::Value::deserialize(d)?;
        let items = match &v {
            serde_yaml_ng::Value::Sequence(s) if !s.is_empty() => s.clone(),
            serde_yaml_ng::Value::Sequence(_) => vec![],
            other => vec![other.clone()],
        };
        let codes: Option<Vec<Code>> = items.iter().map(Code::parse).collect();
        match codes {
            Some(c) if !c.is_empty() => Ok(StatusExpect(c)),
            _ => Err(D::Error::custom(
                "bad status; write a code (200), a class (2xx) or a list ([200, 204]); codes are 100..599",
            )),
        }
    }
}

/// Judges the status; a failure says what the answer means and what to do.
pub fn assert_status(want: &StatusExpect, head: &Head, body: Option<&Body>) -> Assertion {
    let got = head.status_text();
    if want.accepts(head.status) {
        return Assertion::pass("status", format!("HTTP {got} (expected {want})"));
    }
    let text = body.map(Body::text).unwrap_or_default();
    let why = meaning(head, &text);
    let said = quoted(&text);
    let msg = format!("expected status {want}; got {got}{why}{said}");
    Assertion::fail("status", "status", msg)
}

/// `; page title: "..."` for an HTML page, `; body: "..."` otherwise, or nothing.
fn quoted(text: &str) -> String {
    let quote = crate::kinds::command::quote;
    if let Some(title) = title(text) {
        return format!("; page title: {}", quote(title));
    }
    match text.trim().is_empty() {
        true => String::new(),
        false => format!("; body: {}", quote(text)),
    }
}

/// The text of an HTML page's `<title>`.
fn title(text: &str) -> Option<&str> {
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let len = lower[start..].find("</title>")?;
    Some(text[start..start + len].trim()).filter(|t| !t.is_empty())
}

/// What an unexpected answer usually means, as `: ...; do this`.
fn meaning(head: &Head, body: &str) -> String {
    if let Some(hint) = tls_hint(head.status, body) {
        return format!(": {hint}");
    }
    let hint = match head.status {
        300..=399 => {
            let to = head.location.as_deref().unwrap_or("(no Location header)");
            format!("a redirect to {to}; rotcheck does not follow redirects: point url at the final location, or expect status {}", head.status)
        }
        401 | 403 => "the server refused the request: check the credentials and headers the check sends".into(),
        404 => "no such path on this server (or on this virtual host): check the url's path and the Host header".into(),
        421 => "the server says this connection is not for that host: server_name (SNI) and the Host header must name one of its sites".into(),
        502..=504 => "the proxy answered for its backend: it could not reach it, or did not trust the backend's certificate (haproxy `verify required`, nginx `proxy_ssl_verify`); see the proxy's log".into(),
        500..=599 => "the server failed: see its log".into(),
        _ => return String::new(),
    };
    format!(": {hint}")
}

/// nginx's answers about client certificates and schemes (400, or 495/496 when exposed).
fn tls_hint(status: u16, body: &str) -> Option<&'static str> {
    if status == 496 || body.contains("No required SSL certificate was sent") {
        return Some("the server requires a client certificate and none was sent (nginx with `ssl_verify_client on` answers 400 \"No required SSL certificate was sent\"; the TLS handshake itself succeeds); set client_cert and client_key on the check");
    }
    if status == 495 || body.contains("The SSL certificate error") {
        return Some("the server rejected the client certificate we sent (nginx: \"The SSL certificate error\"): check that its client CA (ssl_client_certificate) trusts client_cert and that client_cert is valid now");
    }
    if body.contains("plain HTTP request was sent to HTTPS port") {
        return Some("this is a TLS port and the request was plain HTTP: write https:// in url");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<StatusExpect, String> {
        serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())
    }

    fn head(status: u16) -> Head {
        Head {
            status,
            location: None,
        }
    }

    #[test]
    fn codes_classes_and_lists() {
        assert_eq!(parse("200").unwrap(), StatusExpect(vec![Code::Exact(200)]));
        let many = parse("[204, 3xx]").unwrap();
        assert!(many.accepts(204) && many.accepts(302) && !many.accepts(200));
        assert_eq!(many.to_string(), "204 or 3xx");
        assert!(StatusExpect::default().accepts(299));
        for bad in ["99", "600", "[]", "6xx", "ok", "{a: 1}"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nginx_without_a_client_certificate_is_said_plainly() {
        let body = Body {
            kept: b"<html><head><title>400 No required SSL certificate was sent</title>".to_vec(),
            total: 70,
            cut: false,
        };
        let a = assert_status(&StatusExpect::default(), &head(400), Some(&body));
        assert_eq!(a.reason.as_deref(), Some("status"));
        assert!(a.message.starts_with("expected status 2xx; got 400 Bad Request: the server requires a client certificate and none was sent"), "{}", a.message);
        assert!(a.message.contains("set client_cert and client_key"));
        let title = "page title: \"400 No required SSL certificate was sent\"";
        assert!(a.message.ends_with(title), "{}", a.message);
    }

    #[test]
    fn redirects_name_their_location_and_bad_gateways_blame_the_backend() {
        let h = Head {
            status: 302,
            location: Some("https://app.test/login".into()),
        };
        let a = assert_status(&StatusExpect::default(), &h, None);
        assert!(
            a.message.contains("redirect to https://app.test/login"),
            "{}",
            a.message
        );
        let a = assert_status(&StatusExpect::default(), &head(502), None);
        assert!(
            a.message
                .contains("did not trust the backend's certificate"),
            "{}",
            a.message
        );
    }
}
