use super::*;

const HASH: [u8; 20] = [7; 20];

fn lookup_of(known: Vec<[u8; 20]>) -> Lookup {
    Box::new(move |named| known.iter().find(|h| &req2(h) == named).copied())
}

/// Runs both sides to the end, delivering each side's output in pieces of `chunk` bytes;
/// returns (initiator's result, responder's result).
fn run(mut a: Handshake, mut b: Handshake, chunk: usize) -> (Result<Done, MseError>, Result<Done, MseError>) {
    let (mut da, mut db) = (None, None);
    for _ in 0..10_000 {
        let out = a.take_output();
        for part in out.chunks(chunk) {
            if db.is_none() {
                match b.receive(part) {
                    Ok(Some(d)) => db = Some(Ok(d)),
                    Ok(None) => {}
                    Err(e) => return (Err(MseError::UnknownTorrent), Err(e)),
                }
            } else if let Some(Ok(d)) = &mut db {
                d.rest.extend_from_slice(part);
            }
        }
        let out = b.take_output();
        for part in out.chunks(chunk) {
            if da.is_none() {
                match a.receive(part) {
                    Ok(Some(d)) => da = Some(Ok(d)),
                    Ok(None) => {}
                    Err(e) => return (Err(e), db.unwrap_or(Err(MseError::UnknownTorrent))),
                }
            }
        }
        if da.is_some() && db.is_some() {
            break;
        }
    }
    (da.expect("initiator finished"), db.expect("responder finished"))
}

#[test]
fn rc4_keystream_after_discarding_1024_bytes_matches_rfc_6229() {
    // RFC 6229, 40-bit key 0x0102030405, keystream at offset 1024 (0x400).
    let mut c = discarded::<rc4::consts::U5>(&[1, 2, 3, 4, 5]);
    let mut ks = [0u8; 16];
    c.apply_keystream(&mut ks);
    assert_eq!(hex::encode(ks), "30abbcc7c20b01609f23ee2d5f6bb7df");
}

#[test]
fn both_sides_derive_the_same_secret_and_2_to_the_1_is_2() {
    let a = KeyPair::generate();
    let b = KeyPair::generate();
    assert_eq!(
        a.shared_secret(&b.public).unwrap(),
        b.shared_secret(&a.public).unwrap()
    );
    // A fixed vector: private key 1 gives public key 2, and 2 to the 2 is 4.
    let one = KeyPair::from_private(&[1]);
    let mut two = [0u8; KEY_LEN];
    two[KEY_LEN - 1] = 2;
    assert_eq!(one.public, two);
    let s = KeyPair::from_private(&[2]).shared_secret(&one.public).unwrap();
    assert_eq!(s[KEY_LEN - 1], 4);
    assert!(s[..KEY_LEN - 1].iter().all(|&b| b == 0));
}

#[test]
fn degenerate_public_keys_are_refused() {
    let me = KeyPair::generate();
    let mut one = [0u8; KEY_LEN];
    one[KEY_LEN - 1] = 1;
    assert_eq!(me.shared_secret(&[0; KEY_LEN]), Err(MseError::BadPublicKey));
    assert_eq!(me.shared_secret(&one), Err(MseError::BadPublicKey));
    assert_eq!(me.shared_secret(&[0xff; KEY_LEN]), Err(MseError::BadPublicKey));
    let mut p_minus_1 = to_key_bytes(&prime());
    p_minus_1[KEY_LEN - 1] -= 1;
    assert_eq!(me.shared_secret(&p_minus_1), Err(MseError::BadPublicKey));
}

#[test]
fn the_keys_are_sha1_of_key_a_or_b_s_and_the_info_hash() {
    // keyA = SHA1("keyA" || S || SKEY): the ciphers of both sides agree with a cipher
    // keyed by hand.
    let s = [0x5a; KEY_LEN];
    let (mut a, mut b) = ciphers(&s, &HASH);
    let mut by_hand = Rc4::<U20>::new(&crate::hash::sha1(&[&b"keyA"[..], &s, &HASH].concat()).into());
    let mut skip = [0u8; 1024];
    by_hand.apply_keystream(&mut skip);
    let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
    a.apply_keystream(&mut x);
    by_hand.apply_keystream(&mut y);
    assert_eq!(x, y);
    let mut z = [0u8; 32];
    b.apply_keystream(&mut z);
    assert_ne!(x, z, "each direction has its own key");
}

#[test]
fn an_rc4_handshake_completes_in_any_split_and_carries_the_payload() {
    for chunk in [1, 7, 96, 100_000] {
        let a = Handshake::initiator(HASH, RC4, b"hello from A".to_vec());
        let b = Handshake::responder(RC4 | PLAINTEXT, lookup_of(vec![[1; 20], HASH]));
        let (da, db) = run(a, b, chunk);
        let (mut da, mut db) = (da.unwrap(), db.unwrap());
        assert_eq!(da.method, Method::Rc4);
        assert_eq!(db.method, Method::Rc4);
        assert_eq!(db.info_hash, HASH, "the responder found the torrent");
        assert_eq!(db.initial_payload, b"hello from A");
        // The stream goes on under the ciphers, both ways.
        let (ta, ra) = da.ciphers.as_mut().unwrap();
        let (tb, rb) = db.ciphers.as_mut().unwrap();
        let mut m = b"payload A to B".to_vec();
        ta.apply_keystream(&mut m);
        assert_ne!(&m[..], b"payload A to B");
        rb.apply_keystream(&mut m);
        assert_eq!(&m[..], b"payload A to B");
        let mut m = b"payload B to A".to_vec();
        tb.apply_keystream(&mut m);
        ra.apply_keystream(&mut m);
        assert_eq!(&m[..], b"payload B to A");
    }
}

#[test]
fn plaintext_is_selected_when_both_sides_allow_it_and_rc4_when_one_requires_it() {
    for (offer, accept, method) in [
        (RC4 | PLAINTEXT, PLAINTEXT, Method::Plaintext),
        (RC4 | PLAINTEXT, RC4 | PLAINTEXT, Method::Plaintext),
        (RC4 | PLAINTEXT, RC4, Method::Rc4),
        (RC4, RC4 | PLAINTEXT, Method::Rc4),
    ] {
        let a = Handshake::initiator(HASH, offer, Vec::new());
        let b = Handshake::responder(accept, lookup_of(vec![HASH]));
        let (da, db) = run(a, b, 50);
        let (da, db) = (da.unwrap(), db.unwrap());
        assert_eq!(
            (da.method, db.method),
            (method, method),
            "{offer} offered, {accept} accepted"
        );
        assert_eq!(da.ciphers.is_some(), method == Method::Rc4);
        assert_eq!(db.ciphers.is_some(), method == Method::Rc4);
        assert!(db.initial_payload.is_empty());
    }
}

#[test]
fn a_responder_requiring_rc4_refuses_a_plaintext_only_initiator() {
    let a = Handshake::initiator(HASH, PLAINTEXT, Vec::new());
    let b = Handshake::responder(RC4, lookup_of(vec![HASH]));
    let (_, db) = run(a, b, 1000);
    let e = db.unwrap_err();
    assert_eq!(
        e,
        MseError::NoCommonMethod {
            offered: Methods(PLAINTEXT),
            allowed: Methods(RC4)
        }
    );
    assert_eq!(
        e.to_string(),
        "the peer offers plaintext only but we allow RC4 only (see --encryption)"
    );
}

#[test]
fn an_unknown_torrent_is_refused() {
    let a = Handshake::initiator(HASH, RC4, Vec::new());
    let b = Handshake::responder(RC4, lookup_of(vec![[9; 20]]));
    let (_, db) = run(a, b, 1000);
    assert_eq!(db.unwrap_err(), MseError::UnknownTorrent);
}

#[test]
fn bytes_after_the_handshake_are_left_for_the_stream() {
    let mut a = Handshake::initiator(HASH, RC4, b"ia".to_vec());
    let mut b = Handshake::responder(RC4, lookup_of(vec![HASH]));
    // A's first step, B's reply.
    assert!(b.receive(&a.take_output()).unwrap().is_none());
    assert!(a.receive(&b.take_output()).unwrap().is_none());
    // A's third step arrives with stream bytes glued on.
    let mut wire = a.take_output();
    wire.extend_from_slice(b"XYZ");
    let db = b.receive(&wire).unwrap().expect("done");
    assert_eq!(db.rest, b"XYZ");
    // B's fourth step, glued to its first stream bytes.
    let mut wire = b.take_output();
    let (mut tb, _) = db.ciphers.unwrap();
    let mut first = b"stream".to_vec();
    tb.apply_keystream(&mut first);
    wire.extend_from_slice(&first);
    let da = a.receive(&wire).unwrap().expect("done");
    let (_, mut ra) = da.ciphers.unwrap();
    let mut rest = da.rest;
    ra.apply_keystream(&mut rest);
    assert_eq!(rest, b"stream");
}

#[test]
fn a_peer_that_is_not_speaking_mse_fails_at_the_sync_bound() {
    // A responder fed junk finds no req1 within the 512 bytes of padding allowed.
    let mut b = Handshake::responder(RC4, lookup_of(vec![HASH]));
    let mut junk = KeyPair::generate().public.to_vec();
    junk.extend(std::iter::repeat_n(0x42, MAX_PAD + 20));
    assert!(matches!(b.receive(&junk), Err(MseError::NoSync(_))));
    // An initiator fed a key and junk finds no VC either.
    let mut a = Handshake::initiator(HASH, RC4, Vec::new());
    let mut junk = KeyPair::generate().public.to_vec();
    junk.extend(std::iter::repeat_n(0x42, MAX_PAD + 8));
    assert!(matches!(a.receive(&junk), Err(MseError::NoSync(_))));
}

#[test]
fn oversized_padding_and_payload_lengths_are_refused() {
    // Drive an initiator by hand so its third step can be forged.
    let keys = KeyPair::generate();
    let mut b = Handshake::responder(RC4, lookup_of(vec![HASH]));
    let mut a = Handshake::initiator_with(keys, Vec::new(), HASH, RC4, Vec::new());
    b.receive(&a.take_output()).unwrap();
    a.receive(&b.take_output()).unwrap();
    let honest = a.take_output();
    // Re-encrypt the body with a copy of the keystream, changing len(PadC) to 513.
    let (mut tx, _) = ciphers(&a.secret, &HASH);
    let mut body = VC.to_vec();
    body.extend_from_slice(&RC4.to_be_bytes());
    body.extend_from_slice(&513u16.to_be_bytes());
    tx.apply_keystream(&mut body);
    let mut forged = honest[..40].to_vec();
    forged.extend_from_slice(&body);
    assert_eq!(b.receive(&forged).unwrap_err(), MseError::PadTooLong(513));
}

#[test]
fn a_wrong_verification_constant_is_refused() {
    let mut b = Handshake::responder(RC4, lookup_of(vec![HASH]));
    let mut a = Handshake::initiator(HASH, RC4, Vec::new());
    b.receive(&a.take_output()).unwrap();
    a.receive(&b.take_output()).unwrap();
    let mut third = a.take_output();
    third[40] ^= 1; // first byte of the encrypted VC
    assert_eq!(b.receive(&third).unwrap_err(), MseError::BadVerification);
}

#[test]
fn plain_handshakes_are_told_from_mse_by_their_first_bytes() {
    assert!(looks_plain(b"\x13BitTorrent protocol\0\0"));
    assert!(looks_plain(b"\x13BitTor"));
    assert!(!looks_plain(b"\x13BitTorrent protocoX"));
    assert!(!looks_plain(
        &KeyPair::generate().public[..1]
            .iter()
            .map(|b| b | 0x80)
            .collect::<Vec<_>>()
    ));
}
