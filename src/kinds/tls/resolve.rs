//! `tls.resolve`: which addresses of `addr` a `tls` check probes. `first` (the default) is the
//! first address that accepts a connection; `all` is every address the host name resolves to
//! (DNS round-robin); a list (`[10.0.0.1, "10.0.0.2:8443"]`) names the backends behind the name
//! outright, as curl's `--resolve` does: SNI and the verified name stay those of `addr`.
//!
//! With `all` or a list, every address is probed at once within the check's timeout and each
//! gets every assertion of the check, its message starting with the address; then
//! `same_leaf` (reason `leaf_mismatch`) asks whether they all serve the same leaf, comparing
//! SHA-256 fingerprints, and lists which address serves which. Assertion names do not carry
//! the address: `rotcheck_assertion_success{assertion="chain"}` is 0 when any address fails
//! it, so the series stay bounded however DNS answers change.

use crate::kinds::classify::{self, Failure, Peer, Phase};
use crate::kinds::tls::client::{Failed, Target};
use crate::kinds::tls::{judge, not_probed, probe_at, TlsExpect, TlsSpec};
use crate::kinds::Ctx;
use crate::model::{Assertion, CertFacts, Outcome};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// At most this many addresses are probed for one check (listed or resolved).
pub const MAX_ADDRS: usize = 64;

/// Which addresses of `addr` to probe.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Resolve {
    /// The first address that accepts a connection.
    #[default]
    First,
    /// Every address the host resolves to.
    All,
    /// These addresses (an IP, or IP and port), in place of resolving the host.
    List(Vec<String>),
}

impl Resolve {
    /// True when several addresses may be probed.
    pub fn is_each(&self) -> bool {
        !matches!(self, Resolve::First)
    }
}

impl<'de> Deserialize<'de> for Resolve {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ResolveVisitor)
    }
}

struct ResolveVisitor;

impl<'de> Visitor<'de> for ResolveVisitor {
    type Value = Resolve;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`first`, `all` or a list of IP addresses")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Resolve, E> {
        match s {
            "first" => Ok(Resolve::First),
            "all" => Ok(Resolve::All),
            _ => Err(E::custom(format!(
                "bad resolve {s:?}; write first (the default), all (every address of the host) or a list of IP addresses, e.g. [10.0.0.1, 10.0.0.2]"
            ))),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Resolve, A::Error> {
        let mut list = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            list.push(s);
        }
        Ok(Resolve::List(list))
    }
}

/// The listed addresses with `port` where an entry names none; the error says which entry
/// is wrong and what to write.
pub fn listed(list: &[String], port: u16) -> Result<Vec<SocketAddr>, String> {
    if list.is_empty() {
        return Err("resolve lists no address; list at least one IP address, or write all".into());
    }
    if list.len() > MAX_ADDRS {
        return Err(format!(
            "resolve lists {} addresses; at most {MAX_ADDRS} are probed per check: split the check",
            list.len()
        ));
    }
    list.iter().map(|e| entry(e, port)).collect()
}

fn entry(e: &str, port: u16) -> Result<SocketAddr, String> {
    let bare = e.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    e.parse::<SocketAddr>().map_err(|_| {
        format!("bad resolve entry {e:?}; write an IP address (10.0.0.1, ::1) or an IP and port (10.0.0.1:8443, [::1]:8443); host names are resolved with resolve: all")
    })
}

/// The addresses to probe: the list, or every address the host resolves to (at most
/// [`MAX_ADDRS`], in the resolver's order, without repeats).
pub async fn addresses(
    resolve: &Resolve,
    target: &Target,
    deadline: Instant,
    budget: Duration,
) -> Result<Vec<SocketAddr>, Failure> {
    if let Resolve::List(list) = resolve {
        let dns = |m: String| classify::dns(&target.host, &m);
        return listed(list, target.port).map_err(dns);
    }
    let peer = Peer {
        addr: target.addr(),
        ..Default::default()
    };
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let found = match timeout_at(deadline, lookup).await {
        Err(_) => return Err(classify::timeout(Phase::Resolve, &peer, budget)),
        Ok(Err(e)) => return Err(classify::dns(&target.host, &e.to_string())),
        Ok(Ok(a)) => a,
    };
    let mut out: Vec<SocketAddr> = Vec::new();
    for a in found {
        if !out.contains(&a) && out.len() < MAX_ADDRS {
            out.push(a);
        }
    }
    match out.is_empty() {
        true => Err(classify::dns(&target.host, "no addresses")),
        false => Ok(out),
    }
}

/// Probes every address of `target` at once, each within the one deadline, and merges the
/// outcomes ([`merge`]).
pub async fn probe_each(
    spec: &TlsSpec,
    expect: &TlsExpect,
    ctx: &Ctx,
    target: Target,
    template: Arc<rustls::ClientConfig>,
    deadline: Instant,
) -> Outcome {
    let addrs = match addresses(&spec.resolve, &target, deadline, ctx.timeout).await {
        Ok(a) => a,
        Err(failure) => {
            let failed = Failed {
                failure,
                chain: vec![],
                stapled: vec![],
            };
            return judge(spec, expect, ctx, &target, Err(failed));
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (i, addr) in addrs.iter().enumerate() {
        let (spec, expect, ctx) = (spec.clone(), expect.clone(), ctx.clone());
        let (one, template) = (at(&target, *addr), template.clone());
        tasks.spawn(async move {
            let out = probe_at(&spec, &expect, &ctx, &one, &template, deadline).await;
            (i, out)
        });
    }
    let mut per: Vec<Option<Outcome>> = vec![None; addrs.len()];
    while let Some(done) = tasks.join_next().await {
        if let Ok((i, out)) = done {
            per[i] = Some(out);
        }
    }
    let per = addrs
        .into_iter()
        .zip(per)
        .map(|(a, o)| (a, o.unwrap_or_else(|| lost_probe(&a))))
        .collect();
    merge(per)
}

/// The outcome of a probe task that ended without one (it panicked).
fn lost_probe(addr: &SocketAddr) -> Outcome {
    let msg =
        format!("the probe of {addr} ended without a result; run the check again and report this");
    not_probed("internal", msg)
}

/// The target for one address: connect there, send and verify the configured name.
pub fn at(target: &Target, addr: SocketAddr) -> Target {
    Target {
        host: addr.ip().to_string(),
        port: addr.port(),
        name: target.name.clone(),
        server_name: target.server_name.clone(),
    }
}

/// One outcome from each address's: every assertion with its address, the `same_leaf`
/// verdict, the certificates seen (each once), the first error and TLS facts.
pub fn merge(per: Vec<(SocketAddr, Outcome)>) -> Outcome {
    let mut out = Outcome::default();
    if let Some(a) = assert_same_leaf(&per) {
        out.assertions.push(a);
    }
    for (addr, o) in per {
        for mut a in o.assertions {
            a.message = format!("{addr}: {}", a.message);
            out.assertions.push(a);
        }
        if out.error.is_none() {
            out.error = o.error.map(|mut e| {
                e.message = format!("{addr}: {}", e.message);
                e
            });
        }
        for c in o.certs {
            if !out.certs.iter().any(|x| same_cert(x, &c)) {
                out.certs.push(c);
            }
        }
        out.facts.tls = out.facts.tls.or(o.facts.tls);
    }
    out
}

fn same_cert(a: &CertFacts, b: &CertFacts) -> bool {
    a.sha256 == b.sha256 && a.position == b.position
}

/// Every address that presented a leaf presented the same one (`None` when none did: the
/// `handshake` assertions say why).
fn assert_same_leaf(per: &[(SocketAddr, Outcome)]) -> Option<Assertion> {
    let mut groups: Vec<(&CertFacts, Vec<SocketAddr>)> = Vec::new();
    let mut without = Vec::new();
    for (addr, o) in per {
        let Some(leaf) = o.certs.first() else {
            without.push(addr.to_string());
            continue;
        };
        match groups.iter_mut().find(|(l, _)| l.sha256 == leaf.sha256) {
            Some((_, addrs)) => addrs.push(*addr),
            None => groups.push((leaf, vec![*addr])),
        }
    }
    if groups.is_empty() {
        return None;
    }
    let none = match without.is_empty() {
        true => String::new(),
        false => format!(
            "; no certificate from {} (see its handshake)",
            without.join(", ")
        ),
    };
    if groups.len() == 1 {
        let (leaf, addrs) = &groups[0];
        let msg = format!(
            "{} address(es) serve the same leaf, {}: {}{none}",
            addrs.len(),
            describe(leaf),
            list(addrs)
        );
        return Some(Assertion::pass("same_leaf", msg));
    }
    Some(Assertion::fail(
        "same_leaf",
        "leaf_mismatch",
        mismatch(&groups, &none),
    ))
}

fn mismatch(groups: &[(&CertFacts, Vec<SocketAddr>)], none: &str) -> String {
    let parts: Vec<String> = groups
        .iter()
        .map(|(leaf, addrs)| format!("{} at {}", describe(leaf), list(addrs)))
        .collect();
    let newest = groups
        .iter()
        .map(|(l, _)| l)
        .max_by_key(|l| l.not_before_unix);
    let behind: Vec<SocketAddr> = groups
        .iter()
        .filter(|(l, _)| Some(l) != newest)
        .flat_map(|(_, a)| a.iter().copied())
        .collect();
    let newest = newest.map(|l| l.serial.as_str()).unwrap_or_default();
    format!(
        "expected every address to serve the same leaf; found {} different leaves: {}{none}; {} serve(s) a leaf older than serial {newest}: install the new certificate there and reload it",
        groups.len(),
        parts.join("; "),
        list(&behind)
    )
}

/// `serial 1f… (sha256 ab12cd34ef56ab12, not after T)`.
fn describe(leaf: &CertFacts) -> String {
    let short = &leaf.sha256[..16.min(leaf.sha256.len())];
    format!(
        "serial {} (sha256 {short}…, not after {})",
        leaf.serial, leaf.not_after
    )
}

fn list(addrs: &[SocketAddr]) -> String {
    let s: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    s.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<Resolve, String> {
        serde_yaml_ng::from_str::<Resolve>(y).map_err(|e| e.to_string())
    }

    #[test]
    fn first_all_or_a_list() {
        assert_eq!(parse("first"), Ok(Resolve::First));
        assert_eq!(parse("all"), Ok(Resolve::All));
        assert_eq!(
            parse("[127.0.0.2, '127.0.0.3:9']"),
            Ok(Resolve::List(vec![
                "127.0.0.2".into(),
                "127.0.0.3:9".into()
            ]))
        );
        assert!(parse("every").unwrap_err().contains("write first"));
    }

    #[test]
    fn list_entries_take_the_port_of_addr_unless_they_name_one() {
        let l = |v: &[&str]| listed(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), 443);
        let got = l(&["127.0.0.2", "127.0.0.3:8443", "::1", "[::1]:9"]).unwrap();
        let want: Vec<SocketAddr> = ["127.0.0.2:443", "127.0.0.3:8443", "[::1]:443", "[::1]:9"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
        assert!(l(&["backend.example"])
            .unwrap_err()
            .contains("resolve: all"));
        assert!(l(&[]).unwrap_err().contains("at least one"));
        let many: Vec<String> = (0..65).map(|i| format!("10.0.0.{i}")).collect();
        assert!(listed(&many, 1).unwrap_err().contains("at most 64"));
    }

    fn served(serial: &str, not_before_unix: i64) -> Outcome {
        let mut leaf = crate::certs::facts(&[], "leaf");
        leaf.position = "leaf".into();
        leaf.serial = serial.into();
        leaf.sha256 = format!("{serial}{serial}");
        leaf.not_before_unix = not_before_unix;
        leaf.not_after = "later".into();
        Outcome {
            assertions: vec![Assertion::pass("handshake", "ok")],
            certs: vec![leaf],
            ..Default::default()
        }
    }

    #[test]
    fn merge_names_each_address_and_who_lags() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let per = vec![
            (a("10.0.0.1:443"), served("02", 200)),
            (a("10.0.0.2:443"), served("01", 100)),
            (a("10.0.0.3:443"), served("02", 200)),
        ];
        let out = merge(per);
        assert_eq!(out.certs.len(), 2, "each leaf once");
        let same = &out.assertions[0];
        assert_eq!(same.reason.as_deref(), Some("leaf_mismatch"));
        assert!(
            same.message.contains(
                "serial 02 (sha256 0202…, not after later) at 10.0.0.1:443, 10.0.0.3:443"
            ),
            "{}",
            same.message
        );
        assert!(
            same.message
                .contains("; 10.0.0.2:443 serve(s) a leaf older than serial 02"),
            "{}",
            same.message
        );
        let shakes: Vec<&str> = out.assertions[1..]
            .iter()
            .map(|x| x.message.as_str())
            .collect();
        assert_eq!(
            shakes,
            ["10.0.0.1:443: ok", "10.0.0.2:443: ok", "10.0.0.3:443: ok"]
        );
    }
}
