//! What `serve`'s `/metrics` adds to the shared families — each check's schedule and, for
//! kinds that connect, its failure counters — and how a scrape is assembled. Each check's
//! series are rendered (and redacted) once per run into one compact text; a scrape only
//! concatenates those texts family by family, computes the lifetime ratios (the one value
//! that moves with the clock) from pre-rendered line prefixes, and adds the exporter's own
//! state. The body is made in pieces (`Pieces`): sent one by one, or each written into the
//! gzip encoder and its output sent when the scraper asks for compression (`Body`).

use super::stored::Stored;
use crate::metrics::text::{line_prefix, write_header, write_value, Exposition, Format};
use crate::metrics::{
    all, build_info, flag, static_series, CERT_RATIO, CHECK_INTERVAL, CONNECT_FAILURES, RELOAD_OK,
    RELOAD_TIME,
};
use crate::model::{CheckResult, FailureClass};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Connection-failure counters of one check, indexed like `FailureClass::ALL`.
pub type Failures = [u64; FailureClass::ALL.len()];

/// One check as serve knows it: its schedule, latest result in its compact form (none before
/// the first run), failure counters (none for kinds that never connect), and those rendered
/// as text.
#[derive(Debug)]
pub struct CheckEntry {
    pub name: Arc<str>,
    pub interval: Duration,
    pub result: Option<Stored>,
    pub failures: Option<Failures>,
    /// The series that only change when the check runs or the suite reloads.
    pub rendered: Rendered,
}

impl CheckEntry {
    /// An entry, rendered for `suite`.
    pub fn new(
        suite: &str,
        name: Arc<str>,
        interval: Duration,
        result: Option<&CheckResult>,
        failures: Option<Failures>,
    ) -> Self {
        let rendered = Rendered::new(suite, &name, interval, result, failures.as_ref());
        CheckEntry {
            name,
            interval,
            result: result.map(Stored::new),
            failures,
            rendered,
        }
    }
}

/// One lifetime-ratio series: its line up to the value, and the validity windows of the
/// certificates at its position (the lowest share left is written).
#[derive(Debug)]
struct RatioLine {
    prefix: Box<str>,
    windows: Box<[(i64, i64)]>,
}

impl RatioLine {
    fn value(&self, now: i64) -> f64 {
        let ratio = |&(nb, na): &(i64, i64)| {
            let total = (na - nb).max(1) as f64;
            ((na - now) as f64 / total).clamp(0.0, 1.0)
        };
        self.windows.iter().map(ratio).fold(f64::INFINITY, f64::min)
    }
}

/// Where one family's fragment of a check's text ends.
#[derive(Debug, Clone, Copy)]
struct Part {
    /// The family, an index of `all()`.
    family: u16,
    end: u32,
}

/// A check's series rendered once per run, already redacted: one exact-size text holding a
/// fragment per family of `all()` that has series here (each part's family and where its
/// fragment ends, in family order), and its lifetime-ratio lines.
#[derive(Debug, Default)]
pub struct Rendered {
    text: Box<str>,
    parts: Box<[Part]>,
    ratios: Box<[RatioLine]>,
}

impl Rendered {
    fn new(
        suite: &str,
        name: &str,
        interval: Duration,
        result: Option<&CheckResult>,
        failures: Option<&Failures>,
    ) -> Self {
        let mut e = Exposition::new(all());
        let base = [("suite", suite), ("check", name)];
        if let Some(r) = result {
            static_series(&mut e, suite, r);
        }
        e.sample(&CHECK_INTERVAL, &base, interval.as_secs_f64());
        if let Some(f) = failures {
            counter_series(&mut e, &base, f);
        }
        let bodies = e.into_bodies();
        let ratios = result.map(|r| ratio_lines(suite, r)).unwrap_or_default();
        let whole: String = bodies.concat();
        if crate::redact::redact(&whole) != whole {
            // The rare case where redaction changes something: each family's part alone.
            let redacted: Vec<String> = bodies.iter().map(|b| crate::redact::redact(b)).collect();
            return Self::joined(&redacted, ratios);
        }
        Self::joined(&bodies, ratios)
    }

    /// The non-empty `bodies` (one per family of `all()`) in one text.
    fn joined(bodies: &[String], ratios: Box<[RatioLine]>) -> Self {
        let mut text = String::with_capacity(bodies.iter().map(String::len).sum());
        let mut parts = Vec::new();
        for (family, b) in bodies.iter().enumerate() {
            if b.is_empty() {
                continue;
            }
            text.push_str(b);
            let (Ok(family), Ok(end)) = (u16::try_from(family), u32::try_from(text.len())) else {
                break;
            };
            parts.push(Part { family, end });
        }
        Rendered {
            text: text.into_boxed_str(),
            parts: parts.into_boxed_slice(),
            ratios,
        }
    }

    /// Part `k`'s fragment.
    fn fragment(&self, k: usize) -> &str {
        let start = k.checked_sub(1).map_or(0, |j| self.parts[j].end as usize);
        let end = self.parts.get(k).map_or(start, |p| p.end as usize);
        self.text.get(start..end).unwrap_or("")
    }

    fn len(&self) -> usize {
        self.text.len()
            + self
                .ratios
                .iter()
                .map(|r| r.prefix.len() + 24)
                .sum::<usize>()
    }
}

/// The lifetime-ratio lines of a result: one per position, redacted.
fn ratio_lines(suite: &str, r: &CheckResult) -> Box<[RatioLine]> {
    let mut by_position: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for c in &r.certs {
        let w = by_position.entry(c.position.as_str()).or_default();
        w.push((c.not_before_unix, c.not_after_unix));
    }
    by_position
        .into_iter()
        .map(|(position, windows)| {
            let labels = [
                ("suite", suite),
                ("check", r.name.as_str()),
                ("position", position),
            ];
            RatioLine {
                prefix: crate::redact::redact(&line_prefix(&CERT_RATIO, &labels)).into_boxed_str(),
                windows: windows.into_boxed_slice(),
            }
        })
        .collect()
}

/// Everything `/metrics` shows, shared out of the exporter's state (no copies of results).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub suite: String,
    pub checks: Vec<Arc<CheckEntry>>,
    pub reload_ok: bool,
    pub reload_success_unix: f64,
}

/// A scrape's text comes in pieces of about this size: an uncompressed answer is sent piece
/// by piece while the next is assembled, a compressed one is fed to the encoder so (64 KiB
/// pieces measured no faster: docs/metrics.md, "Benchmark").
pub const PIECE: usize = 256 * 1024;

/// A gzip encoder at the fastest level: the repetitive exposition still shrinks to a few
/// percent (bench/serve_scale.py measures it), at a fraction of the default level's time.
fn encoder(raw_size: usize) -> flate2::write::GzEncoder<Vec<u8>> {
    let out = Vec::with_capacity(raw_size / 16 + 1024);
    flate2::write::GzEncoder::new(out, flate2::Compression::fast())
}

/// `/metrics` assembled piece by piece: every check's latest results, counters, schedule,
/// and the exporter's own state, in `format`. The whole body is never held at once.
pub struct Pieces {
    s: Snapshot,
    now: i64,
    format: Format,
    own: Vec<String>,
    /// Which families of `all()` have a series at all (found in one pass over the checks).
    used: Vec<bool>,
    /// The family being written (an index of `all()`), and the next check in it.
    family: usize,
    check: usize,
    /// Each check's next part to write (its parts come in family order, as the families do).
    cursors: Vec<u16>,
    /// Whether the current family's header is written.
    started: bool,
    done: bool,
}

impl Pieces {
    /// The pieces of `s` at `now_unix`.
    pub fn new(s: Snapshot, now_unix: i64, format: Format) -> Self {
        let own = exporter_series(&s);
        let used = used_families(&s, &own);
        let cursors = vec![0; s.checks.len()];
        Pieces {
            s,
            now: now_unix,
            format,
            own,
            used,
            family: 0,
            check: 0,
            cursors,
            started: false,
            done: false,
        }
    }

    /// The body's size, roughly (the lifetime-ratio values are estimated).
    pub fn size_estimate(&self) -> usize {
        let checks: usize = self.s.checks.iter().map(|c| c.rendered.len()).sum();
        checks + self.own.iter().map(String::len).sum::<usize>()
    }

    /// Whether the last piece was handed out.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The next piece (about [`PIECE`] bytes; the last may be shorter), none after the last.
    pub fn next_piece(&mut self) -> Option<String> {
        let mut buf = String::with_capacity(PIECE + 4096);
        self.piece_into(&mut buf).then_some(buf)
    }

    /// Appends the next piece to `buf`; false (nothing written) after the last.
    fn piece_into(&mut self, buf: &mut String) -> bool {
        if self.done {
            return false;
        }
        let end = buf.len() + PIECE;
        while buf.len() < end {
            if self.family == all().len() {
                buf.push_str(self.format.trailer());
                self.done = true;
                break;
            }
            self.fill(buf, end);
        }
        true
    }

    /// Writes the current family into `buf` until it ends or `buf` reaches `end` bytes.
    fn fill(&mut self, buf: &mut String, end: usize) {
        let i = self.family;
        if !self.started && !self.write_header(buf) {
            return self.next_family();
        }
        self.started = true;
        let ratios = i == ratio_index();
        let checks = self.s.checks.iter().zip(self.cursors.iter_mut());
        for (c, k) in checks.skip(self.check) {
            if buf.len() >= end {
                break;
            }
            let r = &c.rendered;
            // Parts come in family order: skip those of families already written.
            while r
                .parts
                .get(*k as usize)
                .is_some_and(|p| (p.family as usize) < i)
            {
                *k += 1;
            }
            if ratios {
                ratio_lines_at(buf, r, self.now);
            } else if r
                .parts
                .get(*k as usize)
                .is_some_and(|p| p.family as usize == i)
            {
                buf.push_str(r.fragment(*k as usize));
                *k += 1;
            }
            self.check += 1;
        }
        if self.check == self.s.checks.len() {
            buf.push_str(self.own.get(i).map_or("", String::as_str));
            self.next_family();
        }
    }

    /// The family's header, unless the family has no series at all (then false).
    fn write_header(&self, buf: &mut String) -> bool {
        let any = self.used.get(self.family).copied().unwrap_or(false);
        if any {
            write_header(buf, self.format, all()[self.family]);
        }
        any
    }

    fn next_family(&mut self) {
        self.family += 1;
        self.check = 0;
        self.started = false;
    }
}

/// Which families of `all()` have a series: the checks' parts, their lifetime ratios and the
/// exporter's own series, each check visited once.
fn used_families(s: &Snapshot, own: &[String]) -> Vec<bool> {
    let mut used: Vec<bool> = (0..all().len())
        .map(|i| own.get(i).is_some_and(|o| !o.is_empty()))
        .collect();
    for c in &s.checks {
        for p in c.rendered.parts.iter() {
            if let Some(u) = used.get_mut(p.family as usize) {
                *u = true;
            }
        }
        if let Some(u) = used.get_mut(ratio_index()) {
            *u = *u || !c.rendered.ratios.is_empty();
        }
    }
    used
}

/// Compressed output is handed out once it holds at least this much (the last chunk may be
/// shorter): about four pieces of text each.
const GZIP_CHUNK: usize = 32 * 1024;

/// `/metrics` gzip-compressed as it is assembled: each piece of text goes through the encoder
/// on the connection's own thread (about a millisecond of work per piece at the fastest
/// level), so neither the text nor the compressed body is ever held whole and no blocking
/// thread (each with its own malloc arena) is needed.
pub struct Gzipped {
    pieces: Pieces,
    z: Option<flate2::write::GzEncoder<Vec<u8>>>,
    /// The text of the piece being compressed, reused from piece to piece.
    text: String,
}

impl Gzipped {
    fn new(pieces: Pieces) -> Self {
        Gzipped {
            pieces,
            z: Some(encoder(GZIP_CHUNK * 2)),
            text: String::with_capacity(PIECE + 4096),
        }
    }

    /// The next chunk of the gzip stream, none after the last.
    fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let z = self.z.as_mut()?;
        loop {
            self.text.clear();
            if !self.pieces.piece_into(&mut self.text) {
                return self.z.take().map(|z| z.finish().unwrap_or_default());
            }
            // Writing to a Vec cannot fail.
            let _ = z.write_all(self.text.as_bytes());
            if z.get_ref().len() >= GZIP_CHUNK {
                let fresh = Vec::with_capacity(GZIP_CHUNK * 2);
                return Some(std::mem::replace(z.get_mut(), fresh));
            }
        }
    }
}

/// A `/metrics` body as it is sent: chunk by chunk, plain or gzip-compressed.
pub enum Body {
    Plain(Pieces),
    Gzip(Box<Gzipped>),
}

impl Body {
    /// The body of `s` at `now_unix` in `format`, compressed when `gzip`.
    pub fn new(s: Snapshot, now_unix: i64, format: Format, gzip: bool) -> Self {
        let pieces = Pieces::new(s, now_unix, format);
        match gzip {
            true => Body::Gzip(Box::new(Gzipped::new(pieces))),
            false => Body::Plain(pieces),
        }
    }

    /// The next chunk, none after the last.
    pub fn next_chunk(&mut self) -> Option<Vec<u8>> {
        match self {
            Body::Plain(p) => p.next_piece().map(String::into_bytes),
            Body::Gzip(g) => g.next_chunk(),
        }
    }

    /// Whether the last chunk was handed out.
    pub fn is_done(&self) -> bool {
        match self {
            Body::Plain(p) => p.is_done(),
            Body::Gzip(g) => g.z.is_none(),
        }
    }
}

/// `/metrics` in one buffer, gzip-compressed when `gzip` (tests; serve sends [`Body`]'s
/// chunks as they come).
pub fn render_serve_body(s: &Snapshot, now_unix: i64, format: Format, gzip: bool) -> Vec<u8> {
    let mut body = Body::new(s.clone(), now_unix, format, gzip);
    let mut out = Vec::new();
    while let Some(chunk) = body.next_chunk() {
        out.extend_from_slice(&chunk);
    }
    out
}

/// [`render_serve_body`] as text, uncompressed (tests).
pub fn render_serve(s: &Snapshot, now_unix: i64) -> String {
    String::from_utf8(render_serve_body(s, now_unix, Format::Text, false)).unwrap_or_default()
}

fn ratio_index() -> usize {
    static AT: OnceLock<usize> = OnceLock::new();
    *AT.get_or_init(|| {
        all()
            .iter()
            .position(|d| d.name == CERT_RATIO.name)
            .unwrap_or(usize::MAX)
    })
}

/// A check's lifetime ratios at `now`, from its pre-rendered lines.
fn ratio_lines_at(buf: &mut String, r: &Rendered, now: i64) {
    for l in r.ratios.iter() {
        buf.push_str(&l.prefix);
        write_value(buf, l.value(now));
        buf.push('\n');
    }
}

/// `body` gzip-compressed (a `/probe` answer).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut z = encoder(body.len());
    let _ = z.write_all(body);
    z.finish().unwrap_or_default()
}

/// The exporter's own series, by family of `all()`.
fn exporter_series(s: &Snapshot) -> Vec<String> {
    let mut own = Exposition::new(all());
    own.sample(&RELOAD_OK, &[], flag(s.reload_ok));
    own.sample(&RELOAD_TIME, &[], s.reload_success_unix);
    build_info(&mut own);
    own.into_bodies()
}

fn counter_series(e: &mut Exposition, base: &[(&str, &str); 2], failures: &[u64]) {
    for (class, n) in FailureClass::ALL.iter().zip(failures) {
        let labels = [base[0], base[1], ("class", class.as_str())];
        e.sample(&CONNECT_FAILURES, &labels, *n as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{cert, result};
    use crate::model::*;

    #[test]
    fn serve_adds_schedule_counters_and_exporter_state() {
        let mut failures = [0; FailureClass::ALL.len()];
        failures[1] = 4;
        let s = Snapshot {
            suite: "prod".into(),
            checks: vec![Arc::new(CheckEntry::new(
                "prod",
                "a".into(),
                Duration::from_secs(60),
                None,
                Some(failures),
            ))],
            reload_ok: false,
            reload_success_unix: 1_700_000_000.0,
        };
        let text = render_serve(&s, 0);
        assert!(text.contains("# TYPE rotcheck_connect_failures_total counter\n"));
        assert!(text.contains(
            "rotcheck_connect_failures_total{suite=\"prod\",check=\"a\",class=\"reset\"} 4\n"
        ));
        assert_eq!(text.matches("rotcheck_connect_failures_total{").count(), 9);
        assert!(text.contains("rotcheck_check_interval_seconds{suite=\"prod\",check=\"a\"} 60\n"));
        assert!(text.contains("rotcheck_config_last_reload_successful 0\n"));
        assert!(text.contains("rotcheck_config_last_reload_success_timestamp_seconds 1700000000\n"));
        assert!(text.contains("rotcheck_build_info{version=\""));
        assert!(!text.contains("rotcheck_check_success{"));
    }

    #[test]
    fn serve_groups_cached_and_live_series_by_family() {
        let entry = |name: &str| {
            let mut r = result(name, Status::Pass);
            r.certs = vec![cert("leaf", "l", "01", 0, 100)];
            Arc::new(CheckEntry::new(
                "prod",
                name.into(),
                Duration::from_secs(60),
                Some(&r),
                Some([0; 9]),
            ))
        };
        let s = Snapshot {
            suite: "prod".into(),
            checks: vec![entry("a"), entry("b")],
            reload_ok: true,
            reload_success_unix: 0.0,
        };
        let early = render_serve(&s, 25);
        let late = render_serve(&s, 75);
        for text in [&early, &late] {
            let mut families: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .collect();
            let n = families.len();
            families.dedup();
            assert_eq!(families.len(), n, "a family is split:\n{text}");
            let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
            let names: Vec<&str> = samples
                .iter()
                .map(|l| l.split(['{', ' ']).next().unwrap())
                .collect();
            let mut grouped = names.clone();
            grouped.dedup();
            assert_eq!(grouped.len(), n, "samples of a family are not together");
        }
        assert!(early.contains("check=\"b\",position=\"leaf\"} 0.75\n"));
        assert!(late.contains("check=\"b\",position=\"leaf\"} 0.25\n"));
        let strip = |t: &str| {
            t.lines()
                .filter(|l| !l.contains("ratio"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(&early), strip(&late));
    }
}

#[cfg(test)]
mod formats {
    use super::*;
    use crate::metrics::tests::{cert, result};
    use crate::model::*;
    use std::io::Read;

    fn entry(name: &str, kind: &str) -> Arc<CheckEntry> {
        let mut r = result(name, Status::Fail);
        r.kind = kind.into();
        r.certs = vec![cert("leaf", "l", "01", 0, 100)];
        r.error = Some(ProbeError::connect(FailureClass::Refused, "refused"));
        let failures = crate::kinds::connects(kind).then_some([0; 9]);
        Arc::new(CheckEntry::new(
            "p",
            name.into(),
            Duration::from_secs(60),
            Some(&r),
            failures,
        ))
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            suite: "p".into(),
            checks: vec![entry("t", "tls"), entry("f", "files")],
            reload_ok: true,
            reload_success_unix: 0.0,
        }
    }

    #[test]
    fn only_kinds_that_connect_get_connection_series() {
        let text = render_serve(&snapshot(), 50);
        assert_eq!(
            text.matches("rotcheck_connect_failures_total{suite=\"p\",check=\"t\"")
                .count(),
            9
        );
        assert!(text
            .contains("rotcheck_connect_failure{suite=\"p\",check=\"t\",class=\"refused\"} 1\n"));
        assert!(
            !text.contains("rotcheck_connect_failures_total{suite=\"p\",check=\"f\""),
            "{text}"
        );
        assert!(
            !text.contains("rotcheck_connect_failure{suite=\"p\",check=\"f\""),
            "{text}"
        );
    }

    #[test]
    fn openmetrics_and_gzip_carry_the_same_samples() {
        let s = snapshot();
        let text = render_serve(&s, 50);
        let om = String::from_utf8(render_serve_body(&s, 50, Format::OpenMetrics, false)).unwrap();
        assert!(om.ends_with("# EOF\n"));
        assert!(om.contains("# TYPE rotcheck_connect_failures counter\n"));
        let samples = |t: &str| {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(samples(&text), samples(&om));
        let zipped = render_serve_body(&s, 50, Format::Text, true);
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&zipped[..])
            .read_to_string(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, text);
    }

    #[test]
    fn a_large_body_is_compressed_in_pieces_and_comes_back_whole() {
        let checks: Vec<_> = (0..3000)
            .map(|i| entry(&format!("c{i:04}"), "tls"))
            .collect();
        let s = Snapshot {
            checks,
            ..snapshot()
        };
        let text = render_serve(&s, 50);
        assert!(text.len() > 4 * PIECE, "{}", text.len());
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let mut unique = types.clone();
        unique.dedup();
        assert_eq!(types, unique, "a family's header is written twice");
        let ratios = text
            .lines()
            .filter(|l| l.starts_with("rotcheck_cert_lifetime_remaining_ratio{"));
        assert_eq!(ratios.count(), 3000);
        let mut pieces = Pieces::new(s.clone(), 50, Format::Text);
        let mut sizes = vec![];
        while let Some(p) = pieces.next_piece() {
            sizes.push(p.len());
        }
        assert_eq!(sizes.iter().sum::<usize>(), text.len());
        let (last, whole) = sizes.split_last().unwrap();
        assert!(
            whole.iter().all(|&n| (PIECE..PIECE + 8192).contains(&n)),
            "{sizes:?}"
        );
        assert!(*last <= PIECE + 8192);
        let zipped = render_serve_body(&s, 50, Format::Text, true);
        assert!(
            zipped.len() * 10 < text.len(),
            "{} of {}",
            zipped.len(),
            text.len()
        );
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&zipped[..])
            .read_to_string(&mut unzipped)
            .unwrap();
        assert!(unzipped == text, "the gzip body differs from the text");
    }

    #[test]
    fn secrets_are_redacted_when_rendered() {
        let mut r = result("a", Status::Fail);
        r.certs = vec![cert(
            "hvs.CAESIJ0123456789abcdefghijklmnop.pem",
            "l",
            "01",
            0,
            100,
        )];
        r.assertions = vec![Assertion::fail(
            "mode:hvs.CAESIJ0123456789abcdefghijklmnop",
            "mode",
            "x",
        )];
        let e = CheckEntry::new("p", "a".into(), Duration::from_secs(1), Some(&r), None);
        let s = Snapshot {
            checks: vec![Arc::new(e)],
            ..snapshot()
        };
        let text = render_serve(&s, 50);
        assert!(!text.contains("CAESIJ0123456789"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}

#[cfg(test)]
mod perf {
    use super::*;
    use crate::metrics::tests::{cert, result};
    use crate::model::*;

    /// `cargo test --release --lib render_1000 -- --ignored --nocapture`
    /// (`ROTCHECK_RENDER_CHECKS=10000` for another count of checks).
    #[test]
    #[ignore]
    fn render_1000() {
        let n: usize = std::env::var("ROTCHECK_RENDER_CHECKS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        let checks: Vec<Arc<CheckEntry>> = (0..n)
            .map(|i| {
                let mut r = result(&format!("tls-{i:04}"), Status::Pass);
                r.certs = vec![
                    cert(
                        "leaf",
                        "vault.lab.rotcheck.test",
                        "3d01fb1d9baab5b85342d0608002827aeb1a7f2e",
                        1795384883,
                        1797976943,
                    ),
                    cert(
                        "intermediate",
                        "rotcheck lab pki-prod intermediate CA",
                        "743780bf9cd4e4f03f8d8b9640e63e6930e864a0",
                        1795384883,
                        1953064943,
                    ),
                ];
                r.assertions = vec![
                    Assertion::pass("handshake", ""),
                    Assertion::pass("chain", ""),
                    Assertion::pass("expiry", ""),
                ];
                r.facts.tls = Some(TlsFacts {
                    version: Some("1.3".into()),
                    ..Default::default()
                });
                Arc::new(CheckEntry::new(
                    "bench",
                    r.name.as_str().into(),
                    Duration::from_secs(30),
                    Some(&r),
                    Some([0; 9]),
                ))
            })
            .collect();
        let s = Snapshot {
            suite: "bench".into(),
            checks,
            reload_ok: true,
            reload_success_unix: 1.0,
        };
        let t = std::time::Instant::now();
        let mut len = 0;
        for _ in 0..20 {
            len = render_serve(&s, 1795384900).len();
        }
        println!(
            "render: {:.2} ms for {len} bytes",
            t.elapsed().as_secs_f64() * 1000.0 / 20.0
        );
        let t = std::time::Instant::now();
        for _ in 0..20 {
            len = render_serve_body(&s, 1795384900, Format::Text, true).len();
        }
        println!(
            "render gzip: {:.2} ms for {len} bytes",
            t.elapsed().as_secs_f64() * 1000.0 / 20.0
        );
        let body = render_serve(&s, 1795384900);
        let t = std::time::Instant::now();
        for _ in 0..20 {
            len = crate::redact::redact(&body).len();
        }
        println!(
            "redact: {:.2} ms for {len} bytes",
            t.elapsed().as_secs_f64() * 1000.0 / 20.0
        );
    }
}
