//! Parsing `expect:` with the check kind's own type: keys of another kind or misspelt keys
//! are refused at the key itself (file, line and key kept) with the kind's own keys, the kind
//! the key belongs to, or a "did you mean" suggestion. Also [`fields`]: the keys a serde
//! struct accepts, read from its derive, so no list of keys is written twice.

use super::suggest::suggest;
use crate::kinds::{self, CheckKind};
use serde::de::{
    self, Deserialize, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer,
    MapAccess, Visitor,
};
use std::fmt;
use std::marker::PhantomData;

/// Deserializes kind `K`'s expectations, refusing keys `K` does not know.
pub struct ExpectSeed<K>(PhantomData<K>);

impl<K> ExpectSeed<K> {
    pub fn new() -> Self {
        ExpectSeed(PhantomData)
    }
}

impl<K> Default for ExpectSeed<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'de, K: CheckKind> DeserializeSeed<'de> for ExpectSeed<K> {
    type Value = K::Expect;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K::Expect, D::Error> {
        let guard = Guard {
            inner: d,
            kind: K::NAME,
            keys: fields::<K::Expect>(),
        };
        K::Expect::deserialize(guard)
    }
}

/// Why `key` is not an expectation of `kind`, with what is.
pub fn misplaced(key: &str, kind: &str, keys: &[&str]) -> String {
    let allowed = keys.join(", ");
    let owners: Vec<&str> = kinds::NAMES
        .iter()
        .copied()
        .filter(|k| *k != kind && kinds::expect_keys(k).contains(&key))
        .collect();
    if !owners.is_empty() {
        let whose = owners.join(" or ");
        return format!(
            "`{key}` does not apply to a {kind} check (it is a {whose} expectation); \
             allowed: {allowed}"
        );
    }
    let hint = suggest(key, keys)
        .map(|s| format!("did you mean `{s}`? "))
        .unwrap_or_default();
    format!("`{key}` is not an expectation of a {kind} check; {hint}allowed: {allowed}")
}

/// A deserializer that checks every key of the mapping it reads against `keys`.
struct Guard<D> {
    inner: D,
    kind: &'static str,
    keys: &'static [&'static str],
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guard<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(v)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let (kind, keys) = (self.kind, self.keys);
        self.inner.deserialize_map(GuardVisitor {
            visitor,
            kind,
            keys,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct enum identifier
        ignored_any
    }
}

struct GuardVisitor<V> {
    visitor: V,
    kind: &'static str,
    keys: &'static [&'static str],
}

impl<'de, V: Visitor<'de>> Visitor<'de> for GuardVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "the expectations of a {} check (a mapping)", self.kind)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(GuardMap {
            map,
            kind: self.kind,
            keys: self.keys,
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        let empty = std::iter::empty::<(String, String)>();
        self.visitor
            .visit_map(de::value::MapDeserializer::new(empty))
    }
}

struct GuardMap<A> {
    map: A,
    kind: &'static str,
    keys: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for GuardMap<A> {
    type Error = A::Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        let Some(key) = self.map.next_key::<String>()? else {
            return Ok(None);
        };
        if !self.keys.contains(&key.as_str()) {
            return Err(de::Error::custom(misplaced(&key, self.kind, self.keys)));
        }
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// The field names a derived `Deserialize` struct accepts (empty for anything else).
pub fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut found = None;
    let _ = T::deserialize(FieldsOf(&mut found));
    found.unwrap_or(&[])
}

/// A deserializer that only records the field list a struct asks for.
struct FieldsOf<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldsOf<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}
