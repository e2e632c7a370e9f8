//! Writes the protobuf wire form: the messages, envelopes and watch frames that tests and
//! benches feed to the reader. Not used on the watch path (stallwatch only reads protobuf).

/// A message being written, field by field in the order called.
#[derive(Debug, Clone, Default)]
pub struct Message(Vec<u8>);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Message {
    /// An empty message.
    pub fn new() -> Message {
        Message::default()
    }

    /// A varint field (int32 and int64 alike; negative values take ten bytes, as in Go).
    pub fn int(mut self, field: u32, v: i64) -> Message {
        put_varint(&mut self.0, u64::from(field) << 3);
        put_varint(&mut self.0, v as u64);
        self
    }

    /// A bool field (a varint of 0 or 1).
    pub fn bool(self, field: u32, v: bool) -> Message {
        self.int(field, i64::from(v))
    }

    /// A length-delimited field.
    pub fn bytes(mut self, field: u32, b: &[u8]) -> Message {
        put_varint(&mut self.0, (u64::from(field) << 3) | 2);
        put_varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    /// A string field.
    pub fn str(self, field: u32, s: &str) -> Message {
        self.bytes(field, s.as_bytes())
    }

    /// An embedded message.
    pub fn msg(self, field: u32, m: Message) -> Message {
        self.bytes(field, &m.0)
    }

    /// One entry of a `map<string, string>`.
    pub fn entry(self, field: u32, k: &str, v: &str) -> Message {
        self.msg(field, Message::new().str(1, k).str(2, v))
    }

    /// A `metav1.Time` of `secs` Unix seconds.
    pub fn time(self, field: u32, secs: i64) -> Message {
        self.msg(field, Message::new().int(1, secs))
    }

    /// The message's bytes (no envelope).
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// An object in the envelope a response body or a watch event's object carries.
pub fn envelope(api_version: &str, kind: &str, object: Message) -> Vec<u8> {
    let unknown = Message::new()
        .msg(1, Message::new().str(1, api_version).str(2, kind))
        .msg(2, object)
        .str(3, "")
        .str(4, "");
    let mut out = b"k8s\0".to_vec();
    out.extend_from_slice(&unknown.0);
    out
}

/// One watch-stream frame: the length prefix and a `WatchEvent` of type `ty` whose object is
/// `enveloped` (see [`envelope`]).
pub fn watch_frame(ty: &str, enveloped: &[u8]) -> Vec<u8> {
    let event = Message::new().str(1, ty).msg(2, Message::new().bytes(1, enveloped)).into_bytes();
    let mut out = u32::try_from(event.len()).expect("a small frame").to_be_bytes().to_vec();
    out.extend_from_slice(&event);
    out
}
