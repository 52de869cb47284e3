//! Reading netlink replies, for rtnetlink and nftables alike.
//!
//! A datagram from the kernel holds one or more netlink messages, each
//! starting at a 4-byte boundary. [`frames`] splits it and classifies each
//! message: data, end of a dump (`NLMSG_DONE`), acknowledgement
//! (`NLMSG_ERROR` with code 0) or kernel error (`NLMSG_ERROR` with a
//! negative errno). With `NETLINK_EXT_ACK` on, an error carries the kernel's
//! own text (`NLMSGERR_ATTR_MSG`, e.g. "Unknown device type") after the
//! echoed request; with `NETLINK_CAP_ACK` on, the echo is only the request's
//! header (netlink(7), include/uapi/linux/netlink.h).

use std::fmt;
use std::io;

/// Length of `struct nlmsghdr`.
pub(crate) const HEADER_LEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
/// `NLM_F_CAPPED`: the error echoes only the request's header.
const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS`: extended-ack attributes follow the echo.
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

/// An error the kernel answered a request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// The (positive) errno.
    pub errno: i32,
    /// The extended-ack text, when the kernel gave one.
    pub message: Option<String>,
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", io::Error::from_raw_os_error(self.errno))?;
        match &self.message {
            Some(message) => write!(f, ": {message}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for KernelError {}

/// One message of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub seq: u32,
    pub kind: Kind<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind<'a> {
    /// A protocol message; `message` is the whole message, header included.
    Data {
        message_type: u16,
        message: &'a [u8],
    },
    /// The end of a dump.
    Done,
    /// The request succeeded.
    Ack,
    /// The request failed.
    Error(KernelError),
    /// Padding the kernel may send; carries nothing.
    Noop,
}

/// Splits a datagram into its messages. Fails on a length field that does
/// not fit the datagram, which only a kernel bug or a truncated read
/// produces.
pub(crate) fn frames(datagram: &[u8]) -> Result<Vec<Frame<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while rest.len() >= HEADER_LEN {
        let len = ne_u32(rest, 0).unwrap_or(0) as usize;
        if len < HEADER_LEN || len > rest.len() {
            return Err(format!(
                "message length {len} does not fit the {} bytes left",
                rest.len()
            ));
        }
        let message = &rest[..len];
        let message_type = ne_u16(message, 4).unwrap_or(0);
        let flags = ne_u16(message, 6).unwrap_or(0);
        let seq = ne_u32(message, 8).unwrap_or(0);
        let payload = &message[HEADER_LEN..];
        let kind = match message_type {
            NLMSG_NOOP => Kind::Noop,
            NLMSG_DONE => match ne_i32(payload, 0) {
                Some(code) if code < 0 => Kind::Error(KernelError {
                    errno: -code,
                    message: None,
                }),
                _ => Kind::Done,
            },
            NLMSG_ERROR => error_kind(flags, payload)?,
            NLMSG_OVERRUN => return Err("the kernel reported a data overrun".to_string()),
            _ => Kind::Data {
                message_type,
                message,
            },
        };
        out.push(Frame { seq, kind });
        let advance = align4(len).min(rest.len());
        rest = &rest[advance..];
    }
    Ok(out)
}

/// Decodes an `NLMSG_ERROR` payload: `int error; struct nlmsghdr msg;`
/// then, unless capped, the rest of the request, then extended-ack TLVs.
fn error_kind(flags: u16, payload: &[u8]) -> Result<Kind<'static>, String> {
    let code = ne_i32(payload, 0).ok_or("error message without a code")?;
    if code == 0 {
        return Ok(Kind::Ack);
    }
    let mut message = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        let echoed = if flags & NLM_F_CAPPED != 0 {
            HEADER_LEN
        } else {
            ne_u32(payload, 4).map_or(HEADER_LEN, |len| len as usize)
        };
        let tlvs = payload.get(4 + align4(echoed)..).unwrap_or(&[]);
        message = attribute(tlvs, NLMSGERR_ATTR_MSG).map(|value| {
            let text = value.split(|b| *b == 0).next().unwrap_or(&[]);
            String::from_utf8_lossy(text).into_owned()
        });
    }
    Ok(Kind::Error(KernelError {
        errno: code.saturating_neg(),
        message,
    }))
}

/// The value of the first attribute of type `wanted` in a TLV run.
fn attribute(mut tlvs: &[u8], wanted: u16) -> Option<&[u8]> {
    while tlvs.len() >= 4 {
        let len = usize::from(ne_u16(tlvs, 0)?);
        let kind = ne_u16(tlvs, 2)? & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == wanted {
            return Some(&tlvs[4..len]);
        }
        tlvs = tlvs.get(align4(len)..).unwrap_or(&[]);
    }
    None
}

pub(crate) fn align4(len: usize) -> usize {
    (len + 3) & !3
}

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn ne_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: usize, message_type: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(len as u32).to_ne_bytes());
        b.extend_from_slice(&message_type.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b
    }

    /// An `NLMSG_ERROR` answering request `seq` (capped echo), with an
    /// optional extended-ack text.
    fn error(seq: u32, code: i32, text: Option<&str>) -> Vec<u8> {
        let mut payload = code.to_ne_bytes().to_vec();
        payload.extend(header(32, 16, 5, seq));
        let mut flags = NLM_F_CAPPED;
        if let Some(text) = text {
            flags |= NLM_F_ACK_TLVS;
            let value_len = text.len() + 1;
            payload.extend_from_slice(&((4 + value_len) as u16).to_ne_bytes());
            payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
            payload.extend_from_slice(text.as_bytes());
            payload.push(0);
            payload.resize(align4(payload.len()), 0);
        }
        let mut b = header(HEADER_LEN + payload.len(), NLMSG_ERROR, flags, seq);
        b.extend(payload);
        b
    }

    fn data(seq: u32, message_type: u16, body: &[u8]) -> Vec<u8> {
        let mut b = header(HEADER_LEN + body.len(), message_type, 2, seq);
        b.extend_from_slice(body);
        b
    }

    fn done(seq: u32, code: i32) -> Vec<u8> {
        let mut b = header(HEADER_LEN + 4, NLMSG_DONE, 2, seq);
        b.extend_from_slice(&code.to_ne_bytes());
        b
    }

    #[test]
    fn classifies_each_kind_of_message() {
        let table: Vec<(&str, Vec<u8>, Kind<'static>)> = vec![
            ("ack", error(7, 0, None), Kind::Ack),
            (
                "plain error",
                error(7, -17, None),
                Kind::Error(KernelError {
                    errno: 17,
                    message: None,
                }),
            ),
            (
                "error with extended ack",
                error(7, -95, Some("Unknown device type")),
                Kind::Error(KernelError {
                    errno: 95,
                    message: Some("Unknown device type".into()),
                }),
            ),
            ("end of dump", done(7, 0), Kind::Done),
            (
                "dump failed",
                done(7, -22),
                Kind::Error(KernelError {
                    errno: 22,
                    message: None,
                }),
            ),
        ];
        for (name, bytes, want) in table {
            let got = frames(&bytes).expect(name);
            assert_eq!(got, vec![Frame { seq: 7, kind: want }], "{name}");
        }
    }

    #[test]
    fn splits_a_multipart_datagram_at_aligned_boundaries() {
        let first = data(3, 16, &[1, 2, 3, 4, 5]);
        let mut datagram = first.clone();
        datagram.resize(align4(first.len()), 0);
        datagram.extend(done(3, 0));
        let got = frames(&datagram).expect("frames");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].kind,
            Kind::Data {
                message_type: 16,
                message: &first[..]
            }
        );
        assert_eq!(got[1].kind, Kind::Done);
    }

    #[test]
    fn rejects_a_length_past_the_datagram() {
        let mut bytes = data(1, 16, &[0; 8]);
        bytes.truncate(20);
        assert!(frames(&bytes).is_err());
    }

    #[test]
    fn kernel_error_reads_like_io_error_plus_text() {
        let plain = KernelError {
            errno: 17,
            message: None,
        };
        assert_eq!(plain.to_string(), "File exists (os error 17)");
        let with_text = KernelError {
            errno: 95,
            message: Some("Unknown device type".into()),
        };
        assert_eq!(
            with_text.to_string(),
            "Operation not supported (os error 95): Unknown device type"
        );
    }
}
