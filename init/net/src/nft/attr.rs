//! Netlink attributes (TLVs) as nf_tables wants them: a 4-byte header of
//! length and type in host order, the value, zero padding to 4 bytes.
//! Integers are big-endian (`NLA_BE32`), strings NUL-terminated, and
//! nested attributes carry `NLA_F_NESTED` as libnftnl sets it.

const HEADER_LEN: usize = 4;
pub(crate) const NLA_F_NESTED: u16 = 0x8000;

/// A run of attributes being written.
#[derive(Debug, Default)]
pub(crate) struct Attrs {
    bytes: Vec<u8>,
}

impl Attrs {
    pub fn new() -> Attrs {
        Attrs::default()
    }

    pub fn be32(&mut self, kind: u16, value: u32) -> &mut Attrs {
        self.bytes_attr(kind, &value.to_be_bytes())
    }

    pub fn string(&mut self, kind: u16, value: &str) -> &mut Attrs {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.bytes_attr(kind, &bytes)
    }

    pub fn bytes_attr(&mut self, kind: u16, value: &[u8]) -> &mut Attrs {
        self.put(kind, value);
        self
    }

    /// A nested attribute whose contents `fill` writes.
    pub fn nested(&mut self, kind: u16, fill: impl FnOnce(&mut Attrs)) -> &mut Attrs {
        let mut inner = Attrs::new();
        fill(&mut inner);
        self.put(kind | NLA_F_NESTED, &inner.bytes);
        self
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn put(&mut self, kind: u16, value: &[u8]) {
        // Attribute values here are names, addresses and expression lists
        // of a few hundred bytes, far below the 64 KiB a length can say.
        let len = u16::try_from(HEADER_LEN + value.len()).unwrap_or(u16::MAX);
        self.bytes.extend_from_slice(&len.to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(value);
        self.bytes.resize(self.bytes.len().next_multiple_of(4), 0);
    }
}

/// Reads a run of attributes back: `(type without flags, nested?, value)`.
#[cfg(test)]
pub(crate) fn parse(mut bytes: &[u8]) -> Vec<(u16, bool, &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= HEADER_LEN {
        let len = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]);
        assert!(
            len >= HEADER_LEN && len <= bytes.len(),
            "attribute length {len}"
        );
        out.push((
            kind & 0x3fff,
            kind & NLA_F_NESTED != 0,
            &bytes[HEADER_LEN..len],
        ));
        bytes = &bytes[len.next_multiple_of(4).min(bytes.len())..];
    }
    assert!(bytes.is_empty(), "trailing bytes {bytes:?}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_padded_attributes_in_host_order_headers() {
        let mut attrs = Attrs::new();
        attrs
            .string(1, "berth")
            .be32(2, 0x0102_0304)
            .nested(4, |inner| {
                inner.bytes_attr(1, &[0x7f]);
            });
        let bytes = attrs.into_bytes();
        let mut want = Vec::new();
        want.extend_from_slice(&10u16.to_ne_bytes());
        want.extend_from_slice(&1u16.to_ne_bytes());
        want.extend_from_slice(b"berth\0\0\0");
        want.extend_from_slice(&8u16.to_ne_bytes());
        want.extend_from_slice(&2u16.to_ne_bytes());
        want.extend_from_slice(&[1, 2, 3, 4]);
        want.extend_from_slice(&12u16.to_ne_bytes());
        want.extend_from_slice(&(4 | NLA_F_NESTED).to_ne_bytes());
        want.extend_from_slice(&5u16.to_ne_bytes());
        want.extend_from_slice(&1u16.to_ne_bytes());
        want.extend_from_slice(&[0x7f, 0, 0, 0]);
        assert_eq!(bytes, want);
        let parsed = parse(&bytes);
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[2].0, 4);
        assert!(parsed[2].1);
    }
}
