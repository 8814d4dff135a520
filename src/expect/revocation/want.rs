//! How `not_revoked` is written: `true`/`false`, or a map of the sources to consult in order
//! (`via`) and how each soft problem counts (`crl_stale`, `crl_unavailable`, `ocsp_stale`,
//! `ocsp_unavailable`, `ocsp_unknown`: `warn` or `fail`, all `fail` by default).

use crate::model::Status;
use serde::{Deserialize, Deserializer};

/// How a soft problem (stale, unavailable, unknown) counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Warn,
    #[default]
    Fail,
}

impl Level {
    pub fn status(self) -> Status {
        match self {
            Level::Warn => Status::Warn,
            Level::Fail => Status::Fail,
        }
    }
}

/// One revocation source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The OCSP response the server stapled in the handshake (the leaf of `tls`/`http`).
    Stapled,
    /// `crl_file`, else the certificate's CRL distribution points.
    Crl,
    /// The OCSP responder of the certificate's authority information access.
    Ocsp,
}

/// The sources in the order they are consulted (each at most once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    list: [Method; 3],
    len: usize,
}

impl Default for Order {
    /// A stapled response (fresh, signed, no fetch), then the CRL as before OCSP existed
    /// here, then the responder.
    fn default() -> Self {
        Order {
            list: [Method::Stapled, Method::Crl, Method::Ocsp],
            len: 3,
        }
    }
}

impl Order {
    pub fn iter(&self) -> impl Iterator<Item = Method> + '_ {
        self.list[..self.len].iter().copied()
    }

    fn from_list(v: &[Method]) -> Result<Order, String> {
        let mut o = Order {
            len: 0,
            ..Default::default()
        };
        for m in v {
            if o.iter().any(|x| x == *m) {
                return Err(format!("via lists {m:?} twice; name each source once"));
            }
            o.list[o.len] = *m;
            o.len += 1;
        }
        match o.len {
            0 => Err("via is empty; list at least one of stapled, crl, ocsp".into()),
            _ => Ok(o),
        }
    }
}

/// `not_revoked: true`, or `{via: [stapled, crl, ocsp], crl_stale: warn|fail, …}`. `false`
/// turns the check off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotRevoked {
    pub on: bool,
    pub via: Order,
    pub crl_stale: Level,
    pub crl_unavailable: Level,
    pub ocsp_stale: Level,
    pub ocsp_unavailable: Level,
    pub ocsp_unknown: Level,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Levels {
    via: Option<Vec<Method>>,
    #[serde(default)]
    crl_stale: Level,
    #[serde(default)]
    crl_unavailable: Level,
    #[serde(default)]
    ocsp_stale: Level,
    #[serde(default)]
    ocsp_unavailable: Level,
    #[serde(default)]
    ocsp_unknown: Level,
}

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "true, false or {via: [stapled, crl, ocsp], crl_stale|crl_unavailable|ocsp_stale|ocsp_unavailable|ocsp_unknown: warn|fail}"
)]
enum Written {
    Flag(bool),
    Levels(Levels),
}

impl<'de> Deserialize<'de> for NotRevoked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let l = match Written::deserialize(d)? {
            Written::Flag(on) => {
                return Ok(NotRevoked {
                    on,
                    ..Default::default()
                })
            }
            Written::Levels(l) => l,
        };
        let via = match &l.via {
            Some(v) => Order::from_list(v).map_err(serde::de::Error::custom)?,
            None => Order::default(),
        };
        Ok(NotRevoked {
            on: true,
            via,
            crl_stale: l.crl_stale,
            crl_unavailable: l.crl_unavailable,
            ocsp_stale: l.ocsp_stale,
            ocsp_unavailable: l.ocsp_unavailable,
            ocsp_unknown: l.ocsp_unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> NotRevoked {
        serde_yaml_ng::from_str(y).unwrap()
    }

    #[test]
    fn written_as_a_flag_or_levels() {
        assert_eq!(
            parse("true"),
            NotRevoked {
                on: true,
                ..Default::default()
            }
        );
        assert!(!parse("false").on);
        let l = parse("{crl_stale: warn}");
        assert_eq!(
            (l.on, l.crl_stale, l.crl_unavailable, l.via),
            (true, Level::Warn, Level::Fail, Order::default())
        );
        assert!(serde_yaml_ng::from_str::<NotRevoked>("{stale: warn}").is_err());
    }

    #[test]
    fn via_orders_the_sources_once_each() {
        let l = parse("{via: [ocsp, crl], ocsp_unknown: warn}");
        let order: Vec<Method> = l.via.iter().collect();
        assert_eq!(order, vec![Method::Ocsp, Method::Crl]);
        assert_eq!(l.ocsp_unknown, Level::Warn);
        for bad in ["{via: []}", "{via: [crl, crl]}", "{via: [dns]}"] {
            assert!(serde_yaml_ng::from_str::<NotRevoked>(bad).is_err(), "{bad}");
        }
    }
}
