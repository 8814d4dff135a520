//! One check as written: the common keys, exactly one kind key, and `expect:` parsed with that
//! kind's own type. A small map visitor finds the kind key, so the YAML stays as users write
//! it while every kind keeps its own spec and expectation types.

use super::values::{de_interval, de_timeout, Dur};
use super::Severity;
use crate::kinds::{self, Kind};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::sync::OnceLock;

/// One check: common fields and its kind (spec and expectations).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    pub name: String,
    pub stage: Option<String>,
    pub tags: Vec<String>,
    pub severity: Severity,
    pub timeout: Option<Dur>,
    pub interval: Option<Dur>,
    pub description: Option<String>,
    pub kind: Kind,
}

impl CheckSpec {
    /// The check's kind key (`tls`, `vault_health`, ...).
    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
    }

    /// Stage name, `default` when unset.
    pub fn stage_name(&self) -> &str {
        self.stage.as_deref().unwrap_or("default")
    }
}

/// The common keys of a check, before the kind keys.
const COMMON: [&str; 7] = [
    "name",
    "stage",
    "tags",
    "severity",
    "timeout",
    "interval",
    "description",
];

/// Every key a check may hold: the common ones, one per kind, then `expect`.
pub fn check_keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut v = COMMON.to_vec();
        v.extend_from_slice(kinds::NAMES);
        v.push("expect");
        v
    })
}

impl<'de> Deserialize<'de> for CheckSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckVisitor)
    }
}

/// A check's keys as they arrive.
#[derive(Default)]
struct Parts {
    name: Option<String>,
    stage: Option<String>,
    tags: Vec<String>,
    severity: Severity,
    timeout: Option<Dur>,
    interval: Option<Dur>,
    description: Option<String>,
    kind: Option<Kind>,
    /// `expect:` written before the kind key, parsed once the kind is known.
    early_expect: Option<serde_yaml_ng::Value>,
    seen: Vec<&'static str>,
}

struct CheckVisitor;

impl<'de> Visitor<'de> for CheckVisitor {
    type Value = CheckSpec;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a check: a mapping with `name`, one kind (tls, files, ...) and `expect`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CheckSpec, A::Error> {
        let mut p = Parts::default();
        while let Some(key) = map.next_key_seed(KeySeed(&p))? {
            p.seen.push(key);
            p.read(key, &mut map)?;
        }
        p.finish()
    }
}

/// Reads one key of a check and refuses, at the key itself, an unknown key, a repeated key
/// or a second kind.
struct KeySeed<'a>(&'a Parts);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        // Refused inside the visitor, so the error carries the key's own line and column.
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a check key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<&'static str, E> {
        let Some(known) = check_keys().iter().copied().find(|k| *k == key) else {
            return Err(E::unknown_field(key, check_keys()));
        };
        if self.0.seen.contains(&known) {
            return Err(E::duplicate_field(known));
        }
        if let Some(first) = self
            .0
            .kind
            .as_ref()
            .filter(|_| kinds::NAMES.contains(&known))
        {
            let found = format!("{}, {known}", first.name());
            return Err(E::custom(self.0.kind_count(&found)));
        }
        Ok(known)
    }
}

/// A `deserialize_with` function as a seed (keeps the location of a bad value).
macro_rules! seed {
    ($name:ident, $f:path) => {
        struct $name;

        impl<'de> DeserializeSeed<'de> for $name {
            type Value = Dur;

            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Dur, D::Error> {
                $f(d)
            }
        }
    };
}

seed!(TimeoutSeed, de_timeout);
seed!(IntervalSeed, de_interval);

impl Parts {
    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "name" => self.name = Some(map.next_value()?),
            "stage" => self.stage = map.next_value()?,
            "tags" => self.tags = map.next_value()?,
            "severity" => self.severity = map.next_value()?,
            "timeout" => self.timeout = Some(map.next_value_seed(TimeoutSeed)?),
            "interval" => self.interval = Some(map.next_value_seed(IntervalSeed)?),
            "description" => self.description = map.next_value()?,
            "expect" => self.read_expect(map)?,
            kind => self.read_kind(kind, map)?,
        }
        Ok(())
    }

    fn read_expect<'de, A: MapAccess<'de>>(&mut self, map: &mut A) -> Result<(), A::Error> {
        match &mut self.kind {
            Some(kind) => kind.expect_from(map),
            None => {
                self.early_expect = Some(map.next_value()?);
                Ok(())
            }
        }
    }

    fn read_kind<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match Kind::spec_from(key, map)? {
            Some(kind) => self.kind = Some(kind),
            None => return Err(de::Error::unknown_field(key, check_keys())),
        }
        Ok(())
    }

    fn kind_count(&self, found: &str) -> String {
        let name = self.name.as_deref().unwrap_or("");
        format!(
            "check `{name}` needs exactly one kind; found {found}; kinds are {}",
            kinds::NAMES.join(", ")
        )
    }

    fn finish<E: de::Error>(self) -> Result<CheckSpec, E> {
        let Some(name) = self.name.clone() else {
            return Err(E::missing_field("name"));
        };
        let Some(mut kind) = self.kind else {
            return Err(E::custom(self.kind_count("none")));
        };
        if let Some(v) = self.early_expect {
            kind.expect_from_value(v)
                .map_err(|e| E::custom(format!("expect: {e}")))?;
        }
        Ok(CheckSpec {
            name,
            stage: self.stage,
            tags: self.tags,
            severity: self.severity,
            timeout: self.timeout,
            interval: self.interval,
            description: self.description,
            kind,
        })
    }
}
