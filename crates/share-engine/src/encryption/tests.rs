use super::*;
use tokio::net::TcpListener;

const HASH: [u8; 20] = [3; 20];

fn lookup() -> mse::Lookup {
    Box::new(|named| (named == &mse::req2(&HASH)).then_some(HASH))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Accepts one connection and answers MSE with `encryption`.
async fn responder(
    encryption: Encryption,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<Result<(PeerStream, [u8; 20]), HandshakeFailure>>,
) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut tcp, _) = l.accept().await.unwrap();
        let mut first = [0u8; 20];
        tcp.read_exact(&mut first).await.unwrap();
        respond(tcp, &first, encryption, lookup()).await
    });
    (addr, task)
}

#[tokio::test]
async fn an_encrypted_connection_carries_megabytes_both_ways_unchanged() {
    let (addr, task) = responder(Encryption::Prefer).await;
    let (a, sent_ours) = dial(
        addr,
        HASH,
        b"our handshake",
        Encryption::Require,
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(sent_ours);
    let (mut b, ih) = task.await.unwrap().unwrap();
    assert_eq!(ih, HASH);
    assert_eq!((a.crypto(), b.crypto()), (Crypto::Rc4, Crypto::Rc4));
    // The initial payload is the first thing B reads.
    let mut ia = [0u8; 13];
    b.read_exact(&mut ia).await.unwrap();
    assert_eq!(&ia, b"our handshake");
    let up = pattern(3_000_000, 1);
    let down = pattern(2_000_000, 2);
    let (up2, down2) = (up.clone(), down.clone());
    let (mut ar, mut aw) = a.into_split();
    let (mut br, mut bw) = b.into_split();
    // Both sides write while both read, as connections do (neither socket buffer holds
    // megabytes).
    let writer_a = tokio::spawn(async move {
        // Vectored writes, as the peer writer makes them.
        for chunk in up2.chunks(100_000) {
            let (x, y) = chunk.split_at(chunk.len() / 3);
            let mut slices = [io::IoSlice::new(x), io::IoSlice::new(y)];
            let mut slices = &mut slices[..];
            while !slices.is_empty() {
                let n = aw.write_vectored(slices).await.unwrap();
                io::IoSlice::advance_slices(&mut slices, n);
            }
        }
        aw.flush().await.unwrap();
    });
    let writer_b = tokio::spawn(async move {
        bw.write_all(&down2).await.unwrap();
        bw.flush().await.unwrap();
    });
    let reader_a = tokio::spawn(async move {
        let mut got = vec![0u8; 2_000_000];
        ar.read_exact(&mut got).await.unwrap();
        got
    });
    let mut got = vec![0u8; up.len()];
    br.read_exact(&mut got).await.unwrap();
    assert!(got == up, "A to B arrives unchanged");
    assert!(reader_a.await.unwrap() == down, "B to A arrives unchanged");
    writer_a.await.unwrap();
    writer_b.await.unwrap();
}

#[tokio::test]
async fn the_bytes_on_the_wire_are_not_the_plaintext() {
    // A raw listener records what an encrypted dialer sends after the handshake.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = l.accept().await.unwrap();
        let mut hs = Handshake::responder(mse::RC4, lookup());
        let done = drive(&mut tcp, &mut hs).await.unwrap();
        let mut raw = done.rest;
        while raw.len() < 4096 {
            let mut buf = [0u8; 8192];
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0);
            raw.extend_from_slice(&buf[..n]);
        }
        (done.initial_payload, raw)
    });
    let (mut a, _) = dial(
        addr,
        HASH,
        b"our handshake",
        Encryption::Prefer,
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let secret = vec![b'S'; 4096];
    a.write_all(&secret).await.unwrap();
    a.flush().await.unwrap();
    let (ia, raw) = server.await.unwrap();
    assert_eq!(ia, b"our handshake");
    assert!(
        !raw.windows(64).any(|w| w == &secret[..64]),
        "no run of the plaintext on the wire"
    );
}

#[tokio::test]
async fn require_gives_up_on_a_peer_that_only_speaks_plain() {
    // A plain-only peer: reads what comes, finds no BitTorrent handshake, hangs up.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = l.accept().await.unwrap();
            let mut b = [0u8; 20];
            let _ = tcp.read_exact(&mut b).await;
        }
    });
    let e = dial(
        addr,
        HASH,
        b"hs",
        Encryption::Require,
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, DialError::Refused(_)), "{e}");
    assert!(e.to_string().contains("--encryption require"), "{e}");
}

#[tokio::test]
async fn prefer_falls_back_to_plaintext_on_a_fresh_connection() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move {
        // First connection: not BitTorrent, so hang up.
        let (mut tcp, _) = l.accept().await.unwrap();
        let mut b = [0u8; 20];
        tcp.read_exact(&mut b).await.unwrap();
        assert!(!mse::looks_plain(&b));
        drop(tcp);
        // Second: plain.
        let (mut tcp, _) = l.accept().await.unwrap();
        let mut b = [0u8; 5];
        tcp.read_exact(&mut b).await.unwrap();
        b
    });
    let (mut s, sent_ours) = dial(
        addr,
        HASH,
        b"hs",
        Encryption::Prefer,
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(!sent_ours);
    assert_eq!(s.crypto(), Crypto::Plain);
    s.write_all(b"plain").await.unwrap();
    assert_eq!(&server.await.unwrap(), b"plain");
}

#[tokio::test]
async fn a_responder_that_is_off_or_required_refuses_what_it_does_not_allow() {
    let (addr, task) = responder(Encryption::Require).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let e = initiate(tcp, HASH, mse::PLAINTEXT, Vec::new()).await;
    assert!(e.is_err());
    let e = task.await.unwrap().unwrap_err();
    assert_eq!(
        e.to_string(),
        "encrypted handshake: the peer offers plaintext only but we allow RC4 only (see --encryption)"
    );
}

#[test]
fn encryption_parses_its_three_words() {
    assert_eq!("prefer".parse::<Encryption>(), Ok(Encryption::Prefer));
    assert_eq!("require".parse::<Encryption>(), Ok(Encryption::Require));
    assert_eq!("off".parse::<Encryption>(), Ok(Encryption::Off));
    assert!("rc4"
        .parse::<Encryption>()
        .unwrap_err()
        .contains("prefer, require or off"));
    assert_eq!(Encryption::default(), Encryption::Prefer);
}

#[tokio::test]
async fn require_tries_a_silent_peer_again_later_instead_of_giving_up() {
    // A peer that takes the connection and says nothing (busy, or slow): not a refusal.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (done, wait) = tokio::sync::oneshot::channel::<()>();
    let held = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let _ = wait.await;
        drop(s);
    });
    let e = dial(
        addr,
        HASH,
        b"hs",
        Encryption::Require,
        Duration::from_secs(5),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, DialError::Connect(_)), "{e}");
    assert!(e.to_string().contains("not completed within 0.3 s"), "{e}");
    let _ = done.send(());
    held.await.unwrap();
}
