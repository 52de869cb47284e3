//! The codec: what our requests look like on the wire, server replies
//! decoded field by field, and malformed input refused without a panic.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder};

use super::super::codec::{decode, encode, DecodeError};
use super::super::machine::Action;
use super::super::message::{Identity, Reply, ReplyKind, Request};
use super::fixtures::*;

fn request_of(action: Action) -> Request {
    match action {
        Action::Send { request, .. } => request,
        other => panic!("not a send: {other:?}"),
    }
}

fn encoded(action: Action) -> (Vec<u8>, Message) {
    let bytes = encode(&config().identity, &request_of(action)).expect("encode");
    let msg = Message::decode(&mut Decoder::new(&bytes)).expect("decode our own message");
    (bytes, msg)
}

fn option(msg: &Message, code: OptionCode) -> Option<DhcpOption> {
    msg.opts().get(code).cloned()
}

#[test]
fn discover_on_the_wire() {
    let (bytes, msg) = encoded(discover(0xdead_beef, 3, 1));
    assert!(bytes.len() >= 300, "padded to the BOOTP minimum");
    assert_eq!(msg.opcode(), Opcode::BootRequest);
    assert_eq!(u8::from(msg.htype()), 1);
    assert_eq!(msg.chaddr(), &MAC);
    assert_eq!(msg.xid(), 0xdead_beef);
    assert_eq!(msg.secs(), 3);
    assert!(msg.flags().broadcast());
    assert_eq!(msg.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(msg.opts().msg_type(), Some(MessageType::Discover));
    assert_eq!(
        option(&msg, OptionCode::ClientIdentifier),
        Some(DhcpOption::ClientIdentifier(vec![
            1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56
        ]))
    );
    assert_eq!(
        option(&msg, OptionCode::Hostname),
        Some(DhcpOption::Hostname("node1".to_string()))
    );
    assert_eq!(
        option(&msg, OptionCode::ParameterRequestList),
        Some(DhcpOption::ParameterRequestList(vec![
            OptionCode::SubnetMask,
            OptionCode::Router,
            OptionCode::DomainNameServer,
            OptionCode::Hostname,
            OptionCode::DomainName,
            OptionCode::InterfaceMtu,
            OptionCode::AddressLeaseTime,
            OptionCode::Renewal,
            OptionCode::Rebinding,
        ]))
    );
    assert_eq!(option(&msg, OptionCode::RequestedIpAddress), None);
    assert_eq!(option(&msg, OptionCode::ServerIdentifier), None);
}

#[test]
fn requests_on_the_wire() {
    // (action, broadcast flag, ciaddr, option 50, option 54)
    let table = [
        (
            select(7, 0, 1),
            true,
            Ipv4Addr::UNSPECIFIED,
            Some(ADDRESS),
            Some(SERVER),
        ),
        (renew(7, 0, 1, SERVER), false, ADDRESS, None, None),
        (rebind(7, 0, 1), false, ADDRESS, None, None),
    ];
    for (action, broadcast, ciaddr, requested, server) in table {
        let name = format!("{action:?}");
        let (_, msg) = encoded(action);
        assert_eq!(msg.opts().msg_type(), Some(MessageType::Request), "{name}");
        assert_eq!(msg.flags().broadcast(), broadcast, "{name}");
        assert_eq!(msg.ciaddr(), ciaddr, "{name}");
        assert_eq!(
            option(&msg, OptionCode::RequestedIpAddress),
            requested.map(DhcpOption::RequestedIpAddress),
            "{name}"
        );
        assert_eq!(
            option(&msg, OptionCode::ServerIdentifier),
            server.map(DhcpOption::ServerIdentifier),
            "{name}"
        );
    }
}

#[test]
fn identity_options_are_optional() {
    let identity = Identity {
        mac: MAC,
        hostname: None,
        client_id: None,
    };
    let bytes = encode(&identity, &request_of(discover(1, 0, 1))).expect("encode");
    let msg = Message::decode(&mut Decoder::new(&bytes)).expect("decode");
    assert_eq!(option(&msg, OptionCode::Hostname), None);
    assert_eq!(option(&msg, OptionCode::ClientIdentifier), None);
}

#[test]
fn replies_round_trip() {
    let mut full = ack(0x1234_5678, 86400);
    full.routers = vec![ROUTER, SERVER];
    full.dns = vec![DNS, SERVER];
    full.hostname = Some("node1".to_string());
    full.mtu = Some(1400);
    full.renewal_time = Some(100);
    full.rebinding_time = Some(200);
    let table = [offer(1), ack(2, 60), nak(3), full];
    for reply in table {
        assert_eq!(decode(&server_bytes(&reply)).expect("decode"), reply);
    }
}

#[test]
fn text_options_lose_trailing_nuls() {
    let mut reply = ack(1, 60);
    reply.domain = Some("example.test\0".to_string());
    reply.hostname = Some("\0".to_string());
    let decoded = decode(&server_bytes(&reply)).expect("decode");
    assert_eq!(decoded.domain.as_deref(), Some("example.test"));
    assert_eq!(decoded.hostname, None);
}

/// A valid ACK with `edit` applied to its bytes.
fn edited(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = server_bytes(&ack(1, 60));
    edit(&mut bytes);
    bytes
}

/// Whether a decode error is the one a case expects.
type Expect = fn(&DecodeError) -> bool;

#[test]
fn malformed_packets_are_errors() {
    let no_type = {
        let mut reply = Message::default();
        reply.set_opcode(Opcode::BootReply).set_chaddr(&MAC);
        reply
            .opts_mut()
            .insert(DhcpOption::ServerIdentifier(SERVER));
        let mut bytes = Vec::new();
        dhcproto::Encodable::encode(&reply, &mut dhcproto::Encoder::new(&mut bytes))
            .expect("encode");
        bytes
    };
    let discover_type = {
        let mut reply = Reply::new(ReplyKind::Ack, 1, &MAC, ADDRESS);
        reply.server_id = Some(SERVER);
        edited(|bytes| {
            *bytes = server_bytes(&reply);
            // Option 53 is the first option: code, length, value.
            assert_eq!(&bytes[240..242], &[53, 1]);
            bytes[242] = 1;
        })
    };
    let table: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("empty", vec![], |e| {
            matches!(e, DecodeError::Truncated { len: 0 })
        }),
        ("truncated header", edited(|b| b.truncate(239)), |e| {
            matches!(e, DecodeError::Truncated { len: 239 })
        }),
        ("a boot request", edited(|b| b[0] = 1), |e| {
            matches!(e, DecodeError::NotReply { op: 1 })
        }),
        ("unknown op", edited(|b| b[0] = 7), |e| {
            matches!(e, DecodeError::NotReply { op: 7 })
        }),
        ("bad cookie", edited(|b| b[236] = 0), |e| {
            matches!(e, DecodeError::BadMagic { .. })
        }),
        ("hlen 17", edited(|b| b[2] = 17), |e| {
            matches!(e, DecodeError::BadHardwareLength { hlen: 17 })
        }),
        ("no options", edited(|b| b.truncate(240)), |e| {
            matches!(e, DecodeError::NoMessageType)
        }),
        ("no message type", no_type, |e| {
            matches!(e, DecodeError::NoMessageType)
        }),
        ("a discover", discover_type, |e| {
            matches!(
                e,
                DecodeError::NotForClient {
                    kind: MessageType::Discover
                }
            )
        }),
    ];
    for (name, bytes, expected) in table {
        match decode(&bytes) {
            Err(err) => assert!(expected(&err), "{name}: got {err:?}"),
            Ok(reply) => panic!("{name}: decoded {reply:?}"),
        }
    }
}

#[test]
fn no_prefix_or_corruption_panics() {
    let mut reply = ack(1, 60);
    reply.hostname = Some("node1".to_string());
    reply.mtu = Some(1500);
    let bytes = server_bytes(&reply);
    for len in 0..=bytes.len() {
        let _ = decode(&bytes[..len]);
    }
    // Every single-byte corruption of the options, and the header's hlen.
    for at in (240..bytes.len()).chain([2]) {
        for value in [0u8, 1, 2, 4, 0x7f, 0xff] {
            let mut corrupt = bytes.clone();
            corrupt[at] = value;
            let _ = decode(&corrupt);
        }
    }
}

#[test]
fn an_option_length_overrun_keeps_what_came_before() {
    // The last option before End claims more bytes than remain.
    let bytes = edited(|b| {
        let end = b.iter().rposition(|byte| *byte == 255).expect("end option");
        b.truncate(end);
        b.extend([OptionCode::DomainName.into(), 200, b'x']);
    });
    let decoded = decode(&bytes).expect("options before the overrun survive");
    assert_eq!(decoded.kind, ReplyKind::Ack);
}
