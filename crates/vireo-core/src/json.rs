//! Reading API bodies strictly: serde reads a struct from a JSON object, but also from an array
//! of its fields in order (`[null, 5]`), a form the API never documents. `Object` and the two
//! field helpers accept objects only.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// `T` read from a JSON object only.
#[derive(Debug)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(Fields(PhantomData))
            .map(Object)
    }
}

/// For `#[serde(deserialize_with)]` on a struct-typed field.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    Object::deserialize(deserializer).map(|Object(value)| value)
}

/// For `#[serde(deserialize_with)]` on an optional struct-typed field (`null` is `None`).
pub fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::<Object<T>>::deserialize(deserializer).map(|value| value.map(|Object(value)| value))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        a: Option<u32>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        #[serde(default, deserialize_with = "optional_object")]
        inner: Option<Inner>,
    }

    #[test]
    fn objects_are_read_and_arrays_refused_at_every_level() {
        let read = |text: &str| serde_json::from_str::<Object<Outer>>(text).map(|o| o.0);
        assert_eq!(
            read(r#"{"inner":{"a":1}}"#).unwrap(),
            Outer {
                inner: Some(Inner { a: Some(1) })
            }
        );
        assert_eq!(read(r#"{"inner":null}"#).unwrap(), Outer { inner: None });
        assert_eq!(read("{}").unwrap(), Outer { inner: None });
        // Plain serde takes both arrays; these do not.
        assert!(serde_json::from_str::<Outer>(r#"[{"a":1}]"#).is_ok());
        assert!(read(r#"[{"a":1}]"#).is_err());
        assert!(read(r#"{"inner":[1]}"#).is_err());
    }
}
