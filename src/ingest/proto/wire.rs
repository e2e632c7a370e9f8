//! Fields of a protobuf message, one at a time: a tag's field number and its value, borrowed.
//! Groups (wire types 3 and 4, unused by Kubernetes) are errors.

use std::borrow::Cow;

use super::ProtoError;

/// A field's value as the wire carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Value<'a> {
    /// A length-delimited field: a string, bytes or an embedded message.
    pub(super) fn bytes(self, field: u32) -> Result<&'a [u8], ProtoError> {
        match self {
            Value::Bytes(b) => Ok(b),
            _ => Err(ProtoError::Type { field, expected: "length-delimited" }),
        }
    }

    /// A string field. Go strings may hold bytes that are not UTF-8; the API server's JSON
    /// writes those as U+FFFD, and so does this, so both forms give the same facts.
    pub(super) fn text(self, field: u32) -> Result<Cow<'a, str>, ProtoError> {
        Ok(String::from_utf8_lossy(self.bytes(field)?))
    }

    /// A varint field as a signed 64-bit integer (int64 and int32 both: negative int32 values
    /// are sign-extended to ten bytes on the wire).
    pub(super) fn int(self, field: u32) -> Result<i64, ProtoError> {
        match self {
            Value::Varint(v) => Ok(v as i64),
            _ => Err(ProtoError::Type { field, expected: "a varint" }),
        }
    }

    pub(super) fn bool(self, field: u32) -> Result<bool, ProtoError> {
        Ok(self.int(field)? != 0)
    }
}

/// The fields of one message, in wire order.
pub(super) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Fields<'a> {
        Fields { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let start = self.pos;
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else { return Err(ProtoError::Truncated(self.pos)) };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift.min(63);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(ProtoError::LongVarint(start))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(ProtoError::Truncated(self.pos))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn field(&mut self) -> Result<(u32, Value<'a>), ProtoError> {
        let tag = self.varint()?;
        let (field, wire) = (tag >> 3, tag & 7);
        let value = match wire {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            2 => {
                let n = self.varint()?;
                Value::Bytes(self.take(usize::try_from(n).map_err(|_| ProtoError::Truncated(self.pos))?)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))),
            _ => return Err(ProtoError::WireType { field, wire }),
        };
        let field = u32::try_from(field).map_err(|_| ProtoError::WireType { field, wire })?;
        Ok((field, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), ProtoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let f = self.field();
        if f.is_err() {
            self.pos = self.buf.len();
        }
        Some(f)
    }
}

/// Fields 1 and 2 of a message as text: a `map<string, string>` entry's key and value, or a
/// `PodCondition`'s type and status (empty when absent, as protobuf omits empty strings).
pub(super) fn text_pair(b: &[u8]) -> Result<(Cow<'_, str>, Cow<'_, str>), ProtoError> {
    let (mut k, mut v) = (Cow::Borrowed(""), Cow::Borrowed(""));
    for f in Fields::new(b) {
        match f? {
            (1, x) => k = x.text(1)?,
            (2, x) => v = x.text(2)?,
            _ => {}
        }
    }
    Ok((k, v))
}

/// A `metav1.Time` (seconds 1, nanos 2) in Unix seconds; `None` for the zero time, which the
/// API server writes as an empty message (and JSON as `null`). Kubernetes keeps only seconds.
pub(super) fn time(b: &[u8]) -> Result<Option<i64>, ProtoError> {
    let mut secs = None;
    for f in Fields::new(b) {
        if let (1, v) = f? {
            secs = Some(v.int(1)?);
        }
    }
    Ok(secs)
}
