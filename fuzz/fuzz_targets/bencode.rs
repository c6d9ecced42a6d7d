//! The strict bencode scanner: validation and the raw span of a top-level key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use share_proto::bencode;

fuzz_target!(|data: &[u8]| {
    let valid = bencode::validate(data).is_ok();
    if let Ok(Some(span)) = bencode::dict_value_span(data, b"info") {
        assert!(valid, "a span is only found in valid bencode");
        assert!(span.start <= span.end && span.end <= data.len());
        assert!(bencode::validate(&data[span]).is_ok(), "the span is itself valid bencode");
    }
});
