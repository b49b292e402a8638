//! Raw bytes as records (Kafka's `format=bytes`): a message value is the
//! record, unchanged. A record type reads the bytes as `Vec<u8>` (or
//! `serde_bytes::ByteBuf`, or a `String` when they are UTF-8) and writes
//! them back from the same types.

use serde::de::{self, DeserializeOwned, Visitor};
use serde::ser::{self, Impossible, Serialize};

/// Reads `raw` as a `T`.
pub fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T, String> {
    T::deserialize(Raw(raw)).map_err(|e| e.0)
}

/// Appends the bytes `record` holds to `out`.
pub fn encode<T: Serialize>(record: &T, out: &mut Vec<u8>) -> Result<(), String> {
    record.serialize(Collect(out)).map_err(|e| e.0)
}

/// Why bytes could not become a record, or a record bytes.
#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<M: std::fmt::Display>(message: M) -> Self {
        Error(message.to_string())
    }
}

impl ser::Error for Error {
    fn custom<M: std::fmt::Display>(message: M) -> Self {
        Error(message.to_string())
    }
}

struct Raw<'a>(&'a [u8]);

impl<'de> de::Deserializer<'de> for Raw<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bytes(self.0)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let bytes: de::value::SeqDeserializer<_, Error> =
            de::value::SeqDeserializer::new(self.0.iter().copied());
        visitor.visit_seq(bytes)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let text = std::str::from_utf8(self.0).map_err(|e| Error(format!("invalid UTF-8: {e}")))?;
        visitor.visit_str(text)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        option unit unit_struct tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

struct Collect<'a>(&'a mut Vec<u8>);

fn not_bytes<T>(what: &str) -> Result<T, Error> {
    Err(Error(format!(
        "format=bytes takes bytes or text records, not {what}"
    )))
}

macro_rules! reject {
    ($($method:ident($($arg:ty),*) => $what:literal;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<(), Error> { not_bytes($what) })*
    };
}

impl<'a> ser::Serializer for Collect<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Bytes<'a>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.0.extend_from_slice(v);
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.serialize_bytes(v.as_bytes())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Bytes<'a>, Error> {
        Ok(Bytes(self.0))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    reject! {
        serialize_bool(bool) => "a bool";
        serialize_i8(i8) => "a number";
        serialize_i16(i16) => "a number";
        serialize_i32(i32) => "a number";
        serialize_i64(i64) => "a number";
        serialize_u8(u8) => "a number";
        serialize_u16(u16) => "a number";
        serialize_u32(u32) => "a number";
        serialize_u64(u64) => "a number";
        serialize_f32(f32) => "a number";
        serialize_f64(f64) => "a number";
        serialize_char(char) => "a char";
        serialize_none() => "an option";
        serialize_unit() => "a unit";
        serialize_unit_struct(&'static str) => "a unit struct";
        serialize_unit_variant(&'static str, u32, &'static str) => "an enum";
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        not_bytes("an option")
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        not_bytes("an enum")
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        not_bytes("a tuple")
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        not_bytes("a tuple struct")
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        not_bytes("an enum")
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        not_bytes("a map")
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        not_bytes("a struct")
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        not_bytes("an enum")
    }
}

/// A sequence of `u8`s (how `Vec<u8>` serializes).
pub struct Bytes<'a>(&'a mut Vec<u8>);

impl ser::SerializeSeq for Bytes<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let byte: u8 = serde_json::to_value(value)
            .ok()
            .and_then(|v| v.as_u64())
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| Error("format=bytes takes sequences of bytes only".into()))?;
        self.0.push(byte);
        Ok(())
    }

    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_text_round_trip() {
        let raw = b"\x00\xffline\nbreak".to_vec();
        let v: Vec<u8> = decode(&raw).unwrap();
        assert_eq!(v, raw);
        let mut out = Vec::new();
        encode(&v, &mut out).unwrap();
        assert_eq!(out, raw);
        let s: String = decode(b"text").unwrap();
        assert_eq!(s, "text");
        assert!(decode::<String>(b"\xff").unwrap_err().contains("UTF-8"));
        out.clear();
        encode(&"text", &mut out).unwrap();
        assert_eq!(out, b"text");
        assert!(encode(&(1u8, 2u8), &mut out)
            .unwrap_err()
            .contains("not a tuple"));
    }
}
