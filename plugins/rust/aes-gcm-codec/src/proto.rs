//! The protobuf form of `temporal.api.common.v1.Payload` (field 1:
//! `map<string, bytes> metadata`, field 2: `bytes data`), which is what
//! the Python sample encrypts (`Payload.SerializeToString()`). Written
//! out here: two fields do not warrant a protobuf runtime in the guest.
//! Unknown fields (field 3, `external_payloads`) are skipped on reading.

use crate::caisson::codec::types::Payload;

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Serializes a payload (map entries in their order, empty data omitted
/// as proto3 does).
pub fn encode(p: &Payload) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.data.len() + 64);
    for (k, v) in &p.metadata {
        let mut entry = Vec::with_capacity(k.len() + v.len() + 4);
        if !k.is_empty() {
            bytes_field(&mut entry, 1, k.as_bytes());
        }
        if !v.is_empty() {
            bytes_field(&mut entry, 2, v);
        }
        bytes_field(&mut out, 1, &entry);
    }
    if !p.data.is_empty() {
        bytes_field(&mut out, 2, &p.data);
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.bytes.split_first().ok_or("truncated varint")?;
            self.bytes = rest;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err("varint too long".into())
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], String> {
        let len = usize::try_from(len).map_err(|_| "length too large")?;
        if len > self.bytes.len() {
            return Err("truncated field".into());
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    /// The next field: its number, and its bytes when length-delimited.
    fn field(&mut self) -> Result<(u64, Option<&'a [u8]>), String> {
        let tag = self.varint()?;
        let value = match tag & 7 {
            0 => {
                self.varint()?;
                None
            }
            1 => {
                self.take(8)?;
                None
            }
            2 => {
                let len = self.varint()?;
                Some(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                None
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        Ok((tag >> 3, value))
    }
}

/// Parses a serialized payload.
pub fn decode(bytes: &[u8]) -> Result<Payload, String> {
    let mut reader = Reader { bytes };
    let mut payload = Payload { metadata: Vec::new(), data: Vec::new() };
    while !reader.bytes.is_empty() {
        match reader.field()? {
            (1, Some(entry)) => {
                let mut entry = Reader { bytes: entry };
                let (mut key, mut value) = (String::new(), Vec::new());
                while !entry.bytes.is_empty() {
                    match entry.field()? {
                        (1, Some(k)) => key = String::from_utf8(k.to_vec()).map_err(|_| "metadata key is not UTF-8")?,
                        (2, Some(v)) => value = v.to_vec(),
                        _ => {}
                    }
                }
                payload.metadata.retain(|(k, _)| *k != key);
                payload.metadata.push((key, value));
            }
            (2, Some(data)) => payload.data = data.to_vec(),
            _ => {}
        }
    }
    Ok(payload)
}
