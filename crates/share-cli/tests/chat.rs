//! Chat over the peer wire between `share` processes: flooding with de-duplication along a
//! line of peers, history for late joiners, direct messages, and hostile chat from a scripted
//! raw peer (escape sequences, flooding).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::proc::{listen_port, Proc};
use common::{pattern, share_json};
use serde_json::Value;
use share_proto::chat::ChatMessage;
use share_proto::extension::ExtendedHandshake;
use share_proto::wire::{self, Handshake, Message};
use share_proto::{InfoHash, PeerId};

/// A manifest with no tracker; returns its path and info hash.
fn manifest(dir: &std::path::Path) -> (String, InfoHash) {
    let file = dir.join("room.bin");
    std::fs::write(&file, pattern(100_000, 5)).unwrap();
    let m = dir.join("room.torrent");
    let v = share_json(&[
        "create",
        file.to_str().unwrap(),
        "-o",
        m.to_str().unwrap(),
        "--json",
    ]);
    (
        m.to_str().unwrap().to_string(),
        InfoHash::from_hex(v["info_hash"].as_str().unwrap()).unwrap(),
    )
}

/// `share chat` with a nickname, talking on stdin, joined to `peer` if given; returns it and
/// its port once it is listening.
fn join(manifest: &str, nick: &str, peer: Option<u16>) -> (Proc, u16) {
    let peer = peer.map(|p| format!("127.0.0.1:{p}"));
    // No peer exchange: the line stays a line, so messages must be relayed along it.
    let mut args = vec![
        "chat", manifest, "--nick", nick, "--port", "0", "--json", "--no-pex",
    ];
    if let Some(p) = &peer {
        args.extend(["--peer", p.as_str()]);
    }
    let mut p = Proc::share_talking(&args);
    let port = listen_port(&p.wait_event(30, "chatting"));
    (p, port)
}

/// Waits until `p` has finished extension handshakes with `n` chat peers.
fn linked(p: &mut Proc, n: usize) {
    let mut seen = std::collections::HashSet::new();
    for v in &p.seen {
        if v["event"] == "peer_up" && !v["client"].is_null() {
            seen.insert(v["peer_id"].as_str().unwrap().to_string());
        }
    }
    while seen.len() < n {
        let v = p.wait(30, "a chat peer", |v| {
            v["event"] == "peer_up" && !v["client"].is_null()
        });
        seen.insert(v["peer_id"].as_str().unwrap().to_string());
    }
}

fn chats_with<'a>(p: &'a Proc, text: &str) -> Vec<&'a Value> {
    p.seen
        .iter()
        .filter(|v| v["event"] == "chat" && v["text"] == text)
        .collect()
}

fn wait_chat(p: &mut Proc, text: &str) -> Value {
    p.wait(30, &format!("chat {text:?}"), |v| {
        v["event"] == "chat" && v["text"] == text
    })
}

#[test]
fn a_message_crosses_a_line_of_four_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = manifest(dir.path());
    let (mut a, pa) = join(&m, "alice", None);
    let (mut b, pb) = join(&m, "bob", Some(pa));
    let (mut c, pc) = join(&m, "carol", Some(pb));
    let (mut d, _) = join(&m, "dave", Some(pc));
    linked(&mut a, 1);
    linked(&mut b, 2);
    linked(&mut c, 2);
    linked(&mut d, 1);
    a.say("hello from the start of the line");
    a.say("marker");
    for p in [&mut b, &mut c, &mut d] {
        let v = wait_chat(p, "hello from the start of the line");
        assert_eq!(v["nick"], "alice");
        assert_eq!(v["direct"], false);
        wait_chat(p, "marker");
        assert_eq!(
            chats_with(p, "hello from the start of the line").len(),
            1,
            "exactly once"
        );
    }
    // D is not connected to A: the message came over C.
    let at_d = chats_with(&d, "marker")[0].clone();
    assert!(!at_d["via"].as_str().unwrap().ends_with(&format!(":{pa}")));
    // And back the other way, with a nickname change on the way.
    d.say("/nick dave2");
    d.wait_event(10, "nick");
    d.say("reply from the end");
    let v = wait_chat(&mut a, "reply from the end");
    assert_eq!(v["nick"], "dave2");
    assert!(
        chats_with(&a, "hello from the start of the line").is_empty(),
        "A never sees its own message"
    );
}

#[test]
fn a_late_joiner_gets_the_recent_history_and_direct_messages_stay_direct() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = manifest(dir.path());
    let (mut a, pa) = join(&m, "alice", None);
    let (mut b, pb) = join(&m, "bob", Some(pa));
    let (mut c, _) = join(&m, "carol", Some(pb));
    linked(&mut a, 1);
    linked(&mut b, 2);
    linked(&mut c, 1);
    for i in 0..3 {
        a.say(&format!("earlier {i}"));
    }
    wait_chat(&mut c, "earlier 2");
    // E joins late, next to C only: it hears the history from C.
    let (mut e, _) = join(&m, "erin", Some(listen_port(&c.seen[0])));
    for i in 0..3 {
        let v = wait_chat(&mut e, &format!("earlier {i}"));
        assert_eq!(v["nick"], "alice");
    }
    // B sends C a direct message; A and E never see it.
    b.say("/peers");
    let peers = b.wait_event(10, "peers");
    let nicks: Vec<_> = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nick"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        nicks.contains(&"alice".to_string()) && nicks.contains(&"carol".to_string()),
        "{peers}"
    );
    b.say("/msg carol just for you");
    let v = wait_chat(&mut c, "just for you");
    assert_eq!(
        (v["direct"].as_bool(), v["nick"].as_str()),
        (Some(true), Some("bob"))
    );
    b.say("after the secret");
    for p in [&mut a, &mut e] {
        wait_chat(p, "after the secret");
        assert!(
            chats_with(p, "just for you").is_empty(),
            "a direct message reached a third peer"
        );
    }
    b.say("/msg nobody hello");
    let err = b.wait_event(10, "chat_error");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("no connected peer is called \"nobody\""),
        "{err}"
    );
}

/// A raw peer speaking just enough of the protocol to chat.
struct RawPeer {
    s: TcpStream,
    buf: BytesMut,
}

impl RawPeer {
    fn connect(port: u16, info_hash: InfoHash) -> Self {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(&Handshake::ours(info_hash, PeerId([0x42; 20])).encode())
            .unwrap();
        let mut hs = [0u8; 68];
        s.read_exact(&mut hs).unwrap();
        let mut ext = ExtendedHandshake::default();
        ext.m.insert("share_chat".into(), 5);
        let mut p = Self {
            s,
            buf: BytesMut::new(),
        };
        p.send(Message::Extended {
            id: 0,
            payload: Bytes::from(ext.encode()),
        });
        p
    }

    fn send(&mut self, m: Message) {
        let mut out = BytesMut::new();
        wire::encode(&m, &mut out);
        // A closed connection shows up in `closed`.
        let _ = self.s.write_all(&out);
    }

    fn chat(&mut self, seq: u64, nick: &str, text: &str) {
        let m = ChatMessage {
            origin: PeerId([0x42; 20]),
            seq,
            time_ms: 1,
            nick: nick.into(),
            text: text.into(),
            hops: 6,
            to: None,
        };
        self.send(Message::Extended {
            id: 1,
            payload: Bytes::from(m.encode()),
        });
    }

    /// Reads until the other side closes; panics if it does not within the read timeout.
    fn closed(&mut self) {
        let dec = wire::Decoder::new(1 << 20);
        let mut chunk = [0u8; 65536];
        loop {
            while let Ok(Some(_)) = dec.decode(&mut self.buf) {}
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

#[test]
fn escape_sequences_never_reach_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let (m, hash) = manifest(dir.path());
    let evil = "\x1b[2J\x1b[31mred\x1b[0m \x1b]0;pwned\x07alert\x07 \u{9b}31mtail";
    // U+009B is CSI in its C1 form: its parameters go with it.
    let shown = "red alert tail";
    // JSON mode.
    let (mut json, pj) = join(&m, "json", None);
    let mut raw = RawPeer::connect(pj, hash);
    raw.chat(1, "\x1b[1mmallory", evil);
    let v = wait_chat(&mut json, shown);
    assert_eq!(v["nick"], "mallory");
    json.say("/quit");
    assert_eq!(json.exit_code(10), Some(0));
    for v in &json.seen {
        let line = v.to_string();
        assert!(
            !line.contains('\u{1b}')
                && !line.contains('\u{7}')
                && !line.contains("\\u001b")
                && !line.contains("\\u0007"),
            "{line}"
        );
    }
    // Text mode, as a person reads it (no terminal here, so the lines go to stderr).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = Proc::share_talking(&["chat", &m, "--nick", "reader", "--port", &port.to_string()]);
    text.wait_stderr(30, |err| err.starts_with("chatting"));
    let mut raw = RawPeer::connect(port, hash);
    raw.chat(2, "\x1b[1mmallory", evil);
    text.wait_stderr(30, |err| err.contains(shown));
    let out = text.stderr();
    let line = out.lines().find(|l| l.contains(shown)).unwrap();
    assert!(line.ends_with(&format!("] mallory: {shown}")), "{line:?}");
    assert!(
        !out.contains('\u{1b}') && !out.contains('\u{7}') && !out.contains('\u{9b}'),
        "{out:?}"
    );
}

#[test]
fn a_flooding_peer_is_cut_off_while_the_others_keep_talking() {
    let dir = tempfile::tempdir().unwrap();
    let (m, hash) = manifest(dir.path());
    let (mut a, pa) = join(&m, "alice", None);
    let (mut b, _) = join(&m, "bob", Some(pa));
    linked(&mut a, 1);
    linked(&mut b, 1);
    let mut flood = RawPeer::connect(pa, hash);
    for seq in 0..2000 {
        flood.chat(seq, "spam", &format!("spam {seq}"));
    }
    flood.closed();
    let down = a.wait(30, "the flooder dropped", |v| {
        v["event"] == "peer_down" && v["reason"].as_str().is_some_and(|r| r.contains("chat flood"))
    });
    assert!(down["peer_id"].as_str().unwrap().starts_with('B'), "{down}");
    let spam_at_a = a
        .seen
        .iter()
        .filter(|v| v["event"] == "chat" && v["nick"] == "spam")
        .count();
    assert!(spam_at_a < 100, "throttled before the cut: {spam_at_a} shown");
    b.say("still talking");
    wait_chat(&mut a, "still talking");
    a.say("me too");
    wait_chat(&mut b, "me too");
}

/// The `/peers` list of `p`, asked now.
fn peers_of(p: &mut Proc) -> Vec<Value> {
    p.say("/peers");
    p.wait_event(10, "peers")["peers"].as_array().unwrap().clone()
}

#[test]
fn a_nick_change_reaches_peers_and_msg_and_two_bobs_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = manifest(dir.path());
    let (mut b1, p1) = join(&m, "bob", None);
    let (mut b2, p2) = join(&m, "bob", None);
    // Alice dials both, so her /peers shows their listening addresses.
    let (peer1, peer2) = (format!("127.0.0.1:{p1}"), format!("127.0.0.1:{p2}"));
    let mut a = Proc::share_talking(&[
        "chat", &m, "--nick", "alice", "--port", "0", "--json", "--peer", &peer1, "--peer", &peer2,
    ]);
    a.wait_event(30, "chatting");
    linked(&mut a, 2);
    linked(&mut b1, 1);
    linked(&mut b2, 1);
    // Two bobs: /msg bob asks which, naming both handles.
    a.say("/msg bob hi");
    let err = a.wait_event(10, "chat_error");
    let message = err["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("\"bob\" is the nickname of 2 connected peers"),
        "{message}"
    );
    let peers = peers_of(&mut a);
    let handle_of = |addr: &str| {
        let p = peers
            .iter()
            .find(|p| p["addr"] == addr)
            .unwrap_or_else(|| panic!("{addr} in {peers:?}"));
        p["handle"].as_str().unwrap().to_string()
    };
    let (h1, h2) = (handle_of(&peer1), handle_of(&peer2));
    assert!(
        h1.starts_with("bob#") && h2.starts_with("bob#") && h1 != h2,
        "{h1} {h2}"
    );
    assert!(message.contains(&h1) && message.contains(&h2), "{message}");
    // The handle, or nick@ADDR, picks one bob.
    a.say(&format!("/msg {h1} for the first bob"));
    assert_eq!(wait_chat(&mut b1, "for the first bob")["direct"], true);
    a.say(&format!("/msg bob@{peer2} for the second bob"));
    wait_chat(&mut b2, "for the second bob");
    assert!(chats_with(&b2, "for the first bob").is_empty());
    assert!(chats_with(&b1, "for the second bob").is_empty());
    // A nickname change reaches the others' /peers and /msg without a message sent.
    b2.say("/nick robert");
    b2.wait_event(10, "nick");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let peers = peers_of(&mut a);
        if peers.iter().any(|p| p["nick"] == "robert") {
            assert!(
                peers.iter().any(|p| p["handle"] == "bob"),
                "bob is unique again: {peers:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/nick never reached /peers: {peers:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    a.say("/msg robert renamed");
    assert_eq!(wait_chat(&mut b2, "renamed")["direct"], true);
    a.say("/msg bob unique now");
    wait_chat(&mut b1, "unique now");
    // Each connection was announced once, with its client name.
    a.say("/quit");
    a.exit_code(10);
    let ups: Vec<_> = a.seen.iter().filter(|v| v["event"] == "peer_up").collect();
    assert_eq!(ups.len(), 2, "one peer_up per peer: {ups:#?}");
    assert!(ups.iter().all(|v| !v["client"].is_null()), "{ups:#?}");
}

#[test]
fn without_user_or_logname_the_nick_is_the_passwd_name() {
    let dir = tempfile::tempdir().unwrap();
    let (m, _) = manifest(dir.path());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_share"));
    cmd.args(["chat", &m, "--port", "0", "--json"])
        .env_remove("USER")
        .env_remove("LOGNAME");
    let mut p = Proc::spawn_talking(cmd);
    let v = p.wait_event(30, "chatting");
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|r| r.split_whitespace().next().unwrap().to_string())
        })
        .unwrap();
    let expected = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<_> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| "anon".into());
    assert_ne!(expected, "anon", "this machine has a passwd entry for uid {uid}");
    assert_eq!(v["nick"], expected.as_str());
}
