use super::*;

fn all_messages() -> Vec<Message> {
    vec![
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(0xdead_beef),
        Message::Bitfield(Bytes::from_static(&[0xff, 0x80])),
        Message::Request(BlockRequest {
            index: 1,
            begin: 16_384,
            length: 16_384,
        }),
        Message::Piece {
            index: 2,
            begin: 0,
            data: Bytes::from(vec![7u8; 100]),
        },
        Message::Cancel(BlockRequest {
            index: 3,
            begin: 0,
            length: 1,
        }),
        Message::Port(6881),
        Message::Extended {
            id: 0,
            payload: Bytes::from_static(b"d1:md11:share_chati3eee"),
        },
        Message::Extended {
            id: 3,
            payload: Bytes::new(),
        },
    ]
}

#[test]
fn round_trip_at_every_split() {
    let mut wire = BytesMut::new();
    let msgs = all_messages();
    for m in &msgs {
        encode(m, &mut wire);
    }
    let wire = wire.freeze();
    let dec = Decoder::default();
    // Feed the stream split into two parts at every byte position.
    for split in 0..=wire.len() {
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for part in [&wire[..split], &wire[split..]] {
            buf.extend_from_slice(part);
            while let Some(m) = dec.decode(&mut buf).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, msgs, "split at {split}");
        assert!(buf.is_empty());
    }
    // And one byte at a time.
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in wire.iter() {
        buf.extend_from_slice(&[*b]);
        while let Some(m) = dec.decode(&mut buf).unwrap() {
            got.push(m);
        }
    }
    assert_eq!(got, msgs);
}

fn decode_one(bytes: &[u8]) -> Result<Option<Message>, WireError> {
    Decoder::default().decode(&mut BytesMut::from(bytes))
}

#[test]
fn huge_length_prefix_is_refused_before_buffering() {
    let e = decode_one(&[0xff, 0xff, 0xff, 0xff]).unwrap_err();
    assert_eq!(
        e,
        WireError::FrameTooLong {
            len: u32::MAX as usize,
            max: DEFAULT_MAX_FRAME
        }
    );
    let small = Decoder::new(10);
    assert!(small.decode(&mut BytesMut::from(&[0, 0, 0, 11][..])).is_err());
    assert_eq!(small.decode(&mut BytesMut::from(&[0, 0, 0, 10][..])), Ok(None));
}

#[test]
fn fixed_lengths_are_exact() {
    let cases: &[(&[u8], u8, usize)] = &[
        (&[0, 0, 0, 2, 0, 0], 0, 1),
        (&[0, 0, 0, 2, 1, 9], 1, 1),
        (&[0, 0, 0, 2, 2, 9], 2, 1),
        (&[0, 0, 0, 2, 3, 9], 3, 1),
        (&[0, 0, 0, 4, 4, 0, 0, 1], 4, 3),
        (&[0, 0, 0, 6, 4, 0, 0, 0, 1, 0], 4, 5),
        (&[0, 0, 0, 1, 5], 5, 0),
        (&[0, 0, 0, 12, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 6, 11),
        (&[0, 0, 0, 14, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8, 13),
        (&[0, 0, 0, 9, 7, 0, 0, 0, 0, 0, 0, 0, 0], 7, 8),
        (&[0, 0, 0, 2, 9, 1], 9, 1),
        (&[0, 0, 0, 1, 20], 20, 0),
    ];
    for &(bytes, id, len) in cases {
        assert_eq!(
            decode_one(bytes),
            Err(WireError::BadLength { id, len }),
            "{bytes:?}"
        );
    }
}

#[test]
fn piece_data_over_128_kib_is_refused() {
    let ok = Message::Piece {
        index: 0,
        begin: 0,
        data: Bytes::from(vec![0u8; MAX_REQUEST_LEN as usize]),
    };
    let mut buf = BytesMut::new();
    encode(&ok, &mut buf);
    assert_eq!(decode_one(&buf), Ok(Some(ok)));
    let mut buf = BytesMut::new();
    encode(
        &Message::Piece {
            index: 0,
            begin: 0,
            data: Bytes::from(vec![0u8; MAX_REQUEST_LEN as usize + 1]),
        },
        &mut buf,
    );
    assert_eq!(
        decode_one(&buf),
        Err(WireError::BadLength {
            id: 7,
            len: MAX_REQUEST_LEN as usize + 9
        })
    );
}

#[test]
fn unknown_ids_are_skipped_whole() {
    let mut buf = BytesMut::from(&[0, 0, 0, 3, 13, 1, 2, 0, 0, 0, 1, 1][..]);
    let dec = Decoder::default();
    assert_eq!(dec.decode(&mut buf), Ok(Some(Message::Unknown(13))));
    assert_eq!(dec.decode(&mut buf), Ok(Some(Message::Unchoke)));
}

#[test]
fn handshake_round_trip_and_checks() {
    let h = Handshake::ours(InfoHash([1; 20]), PeerId::ours([2; 12]));
    assert!(h.supports_extended());
    let bytes = h.encode();
    assert_eq!(&bytes[..20], b"\x13BitTorrent protocol");
    assert_eq!(bytes[25], 0x10);
    assert_eq!(Handshake::decode(&bytes), Ok(h));
    let mut bad = bytes;
    bad[1] = b'b';
    assert_eq!(Handshake::decode(&bad), Err(WireError::NotBitTorrent));
}
