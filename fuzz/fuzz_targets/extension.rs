//! The BEP 10 extension handshake payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use share_proto::extension::ExtendedHandshake;

fuzz_target!(|data: &[u8]| {
    if let Some(h) = ExtendedHandshake::decode(data) {
        let _ = h.id_of("share_chat");
        if let Some(client) = h.client() {
            assert!(!client.chars().any(char::is_control));
            assert!(client.chars().count() <= 64);
        }
        let again = ExtendedHandshake::decode(&h.encode()).expect("our encoding decodes");
        assert_eq!(again, h);
    }
});
