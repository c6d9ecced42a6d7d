//! The `share_chat` payload from a peer, and the sanitizer every displayed string goes through.
#![no_main]

use libfuzzer_sys::fuzz_target;
use share_proto::chat::{self, ChatMessage};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = ChatMessage::decode(data) {
        assert!(m.text.len() <= chat::MAX_TEXT && m.nick.len() <= chat::MAX_NICK);
        assert!(m.hops <= chat::MAX_HOPS);
        assert_eq!(ChatMessage::decode(&m.encode()).as_ref(), Ok(&m));
        for shown in [chat::sanitize(&m.text), chat::sanitize(&m.nick)] {
            assert!(
                !shown.chars().any(|c| c.is_control()),
                "a control character survived: {shown:?}"
            );
        }
    }
    let text = String::from_utf8_lossy(data);
    let shown = chat::sanitize(&text);
    assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
    let _ = chat::truncate(&text, usize::from(data.first().copied().unwrap_or(0)));
});
