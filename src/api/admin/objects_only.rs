//! A deserializer that takes a struct only from a JSON object.
//!
//! serde's derived structs also accept a sequence of their fields in order,
//! so `{"spec": [null, null]}` would read as an empty `spec` and a `PATCH`
//! would answer `200` to a body its document forbids. [`ObjectsOnly`] wraps
//! a deserializer and refuses a sequence wherever a struct is asked for, at
//! any depth (through options, sequences and maps), and changes nothing
//! else: every other call goes to the wrapped deserializer as it came.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Unexpected, Visitor,
};

/// `inner`, refusing a sequence where a struct belongs.
pub(crate) struct ObjectsOnly<D>(pub D);

/// A visitor that passes every value on, wrapping what it hands down so
/// that nested structs are held to the same rule.
struct Checked<V> {
    inner: V,
    /// A struct is being read: a sequence is refused.
    refuse_sequence: bool,
}

impl<V> Checked<V> {
    fn any(inner: V) -> Self {
        Checked {
            inner,
            refuse_sequence: false,
        }
    }
}

/// Forwards `deserialize_*` methods, with a checked visitor.
macro_rules! forward {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Checked::any(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectsOnly<D> {
    type Error = D::Error;

    forward! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Checked::any(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_newtype_struct(name, Checked::any(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Checked::any(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_tuple_struct(name, len, Checked::any(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = Checked {
            inner: visitor,
            refuse_sequence: true,
        };
        self.0.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_enum(name, variants, Checked::any(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Forwards `visit_*` methods that carry a plain value.
macro_rules! pass {
    ($($method:ident($type:ty))*) => {$(
        fn $method<E: de::Error>(self, value: $type) -> Result<V::Value, E> {
            self.inner.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Checked<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(formatter)
    }

    pass! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char)
        visit_str(&str) visit_borrowed_str(&'de str) visit_string(String)
        visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(ObjectsOnly(deserializer))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(ObjectsOnly(deserializer))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        if self.refuse_sequence {
            return Err(de::Error::invalid_type(Unexpected::Seq, &self));
        }
        self.inner.visit_seq(CheckedSeq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(CheckedMap(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(data)
    }
}

/// Elements of a sequence, each read through [`ObjectsOnly`].
struct CheckedSeq<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for CheckedSeq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(CheckedSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// Values of a map (a struct's fields), each read through [`ObjectsOnly`].
struct CheckedMap<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for CheckedMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(CheckedSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct CheckedSeed<T>(T);

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for CheckedSeed<T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T::Value, D::Error> {
        self.0.deserialize(ObjectsOnly(deserializer))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Inner {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        count: Option<u32>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    struct Outer {
        #[serde(default)]
        spec: Inner,
        #[serde(default)]
        items: Vec<Inner>,
        #[serde(default)]
        maybe: Option<Inner>,
        #[serde(default)]
        pairs: std::collections::BTreeMap<String, Inner>,
        #[serde(default)]
        tags: Vec<String>,
    }

    fn read(text: &str) -> Result<Outer, String> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        Outer::deserialize(ObjectsOnly(&mut deserializer)).map_err(|e| e.to_string())
    }

    #[test]
    fn objects_read_as_before() {
        let outer = read(
            r#"{"spec":{"name":"a","count":2},"items":[{"name":"b"}],"maybe":{"count":1},
                "pairs":{"k":{"name":"c"}},"tags":["x","y"]}"#,
        )
        .unwrap();
        assert_eq!(outer.spec.name.as_deref(), Some("a"));
        assert_eq!(outer.spec.count, Some(2));
        assert_eq!(outer.items[0].name.as_deref(), Some("b"));
        assert_eq!(outer.maybe.unwrap().count, Some(1));
        assert_eq!(outer.pairs["k"].name.as_deref(), Some("c"));
        assert_eq!(outer.tags, ["x", "y"]);
        assert_eq!(read(r#"{"maybe":null}"#).unwrap(), Outer::default());
    }

    #[test]
    fn a_sequence_where_a_struct_belongs_is_refused_at_any_depth() {
        for text in [
            r#"[{"name":"a"}]"#,
            r#"{"spec":[null,null]}"#,
            r#"{"spec":[]}"#,
            r#"{"items":[["a",1]]}"#,
            r#"{"maybe":["a"]}"#,
            r#"{"pairs":{"k":["c"]}}"#,
        ] {
            let refused = read(text).unwrap_err();
            assert!(
                refused.contains("invalid type: sequence"),
                "{text}: {refused}"
            );
        }
        // The plain derive takes them, which is why this exists.
        assert!(serde_json::from_str::<Outer>(r#"{"spec":[null,null]}"#).is_ok());
    }
}
