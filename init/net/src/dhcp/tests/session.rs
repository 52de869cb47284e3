//! The session over a recording fake: what goes out where, what comes
//! back as events, and that bad input and I/O errors do not stop it.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use dhcproto::v4::{Message, MessageType};
use dhcproto::{Decodable, Decoder};

use super::super::machine::State;
use super::super::session::{Event, Session};
use super::fake::FakeTransport;
use super::fixtures::*;

fn sent(wire: &std::cell::RefCell<super::fake::Wire>) -> Vec<(MessageType, u32, SocketAddrV4)> {
    wire.borrow()
        .sent
        .iter()
        .map(|(bytes, to)| {
            let msg = Message::decode(&mut Decoder::new(bytes)).expect("decode what we sent");
            let kind = msg.opts().msg_type().expect("message type");
            (kind, msg.xid(), *to)
        })
        .collect()
}

const BROADCAST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
const UNICAST: SocketAddrV4 = SocketAddrV4::new(SERVER, 67);

#[test]
fn a_session_binds_renews_and_survives_junk() {
    let (transport, wire) = FakeTransport::new();
    let mut session = Session::with_transport("eth0", config(), transport, secs(0));
    assert_eq!(sent(&wire), vec![(MessageType::Discover, x(0), BROADCAST)]);
    assert_eq!(session.deadline(), Some(secs(1)));

    wire.borrow_mut().inbox.extend([
        Ok(vec![1, 2, 3]),
        Ok(server_bytes(&offer(x(0).wrapping_add(1)))),
        Ok(server_bytes(&offer(x(0)))),
    ]);
    assert_eq!(session.on_readable(millis(100)), vec![]);
    assert_eq!(session.state(), State::Requesting);
    assert_eq!(sent(&wire)[1..], [(MessageType::Request, x(0), BROADCAST)]);

    wire.borrow_mut()
        .inbox
        .push_back(Ok(server_bytes(&ack(x(0), 100))));
    assert_eq!(
        session.on_readable(millis(200)),
        vec![Event::Bound(lease(millis(100), 100))]
    );
    assert_eq!(session.lease(), Some(&lease(millis(100), 100)));
    assert_eq!(session.deadline(), Some(millis(50_100)));

    assert_eq!(session.on_tick(millis(50_100)), vec![]);
    assert_eq!(sent(&wire)[2..], [(MessageType::Request, x(1), UNICAST)]);

    wire.borrow_mut().inbox.extend([
        Err(io::Error::from(io::ErrorKind::ConnectionRefused)),
        Ok(server_bytes(&ack(x(1), 100))),
    ]);
    // The error ends this round; the ACK waits for the next.
    assert_eq!(session.on_readable(secs(51)), vec![]);
    assert_eq!(
        session.on_readable(secs(51)),
        vec![Event::Renewed(lease(millis(50_100), 100))]
    );
}

#[test]
fn a_failed_send_is_retried_by_the_timer() {
    let (transport, wire) = FakeTransport::new();
    wire.borrow_mut().fail_sends = true;
    let mut session = Session::with_transport("eth0", config(), transport, secs(0));
    assert_eq!(sent(&wire), vec![]);
    wire.borrow_mut().fail_sends = false;
    assert_eq!(session.on_tick(secs(1)), vec![]);
    assert_eq!(sent(&wire), vec![(MessageType::Discover, x(0), BROADCAST)]);
}

#[test]
fn nak_and_expiry_are_lost_events() {
    let (transport, wire) = FakeTransport::new();
    let mut session = Session::with_transport("eth0", config(), transport, secs(0));
    wire.borrow_mut().inbox.extend([
        Ok(server_bytes(&offer(x(0)))),
        Ok(server_bytes(&ack(x(0), 100))),
    ]);
    assert!(matches!(
        session.on_readable(secs(0)).as_slice(),
        [Event::Bound(_)]
    ));
    session.on_tick(secs(50));
    wire.borrow_mut()
        .inbox
        .push_back(Ok(server_bytes(&nak(x(1)))));
    assert_eq!(
        session.on_readable(secs(51)),
        vec![Event::Lost {
            reason: "192.0.2.1 refused 192.0.2.100 (nak): wrong network".to_string()
        }]
    );
    assert_eq!(session.state(), State::Selecting);
    assert_eq!(
        sent(&wire).last(),
        Some(&(MessageType::Discover, x(2), BROADCAST))
    );
}
