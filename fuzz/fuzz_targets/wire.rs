//! The peer-wire codec on a stranger's byte stream: handshake, frames fed in two parts (the
//! split point taken from the input), bitfields against a piece count from the input, and a
//! re-encode of every decoded message that must decode to the same message.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use share_proto::bitfield::Bitfield;
use share_proto::wire::{self, Decoder, Handshake, Message, HANDSHAKE_LEN};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    if let Ok(hs) = <&[u8; HANDSHAKE_LEN]>::try_from(data.get(..HANDSHAKE_LEN).unwrap_or(&[])) {
        if let Ok(h) = Handshake::decode(hs) {
            assert_eq!(&h.encode(), hs);
        }
    }
    let pieces = u32::from(u16::from_be_bytes([data[0], data[1]]));
    let split = usize::from(data[2]).min(data.len() - 3);
    let max_frame = if data[3] & 1 == 0 { wire::DEFAULT_MAX_FRAME } else { 64 };
    let stream = &data[3..];
    let decoder = Decoder::new(max_frame);
    let mut buf = BytesMut::new();
    for part in [&stream[..split], &stream[split..]] {
        buf.extend_from_slice(part);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(msg)) => check(&decoder, msg, pieces),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});

fn check(decoder: &Decoder, msg: Message, pieces: u32) {
    if let Message::Bitfield(b) = &msg {
        if let Ok(bf) = Bitfield::from_wire(b, pieces) {
            assert_eq!(bf.as_bytes(), &b[..]);
            assert_eq!(bf.len(), pieces);
        }
    }
    if matches!(msg, Message::Unknown(_)) {
        return;
    }
    let mut out = BytesMut::new();
    wire::encode(&msg, &mut out);
    let again = decoder.decode(&mut out).expect("our own encoding decodes");
    assert_eq!(again, Some(msg));
    assert!(out.is_empty());
}
