//! Measures each SHA-1 backend on one thread: `cargo run --release -p share-proto --example
//! hash_speed [MIB]`. Prints GB/s for 1 MiB pieces.

use std::time::Instant;

use share_proto::hash::{backend, Backend, Sha1};

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(512);
    let piece: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    println!("process backend: {:?}", backend());
    for b in [Backend::ShaNi, Backend::Asm] {
        let start = Instant::now();
        let mut sink = 0u8;
        for _ in 0..mib {
            let mut h = Sha1::with_backend(b);
            h.update(&piece);
            sink ^= h.finish()[0];
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{b:?}: {:.2} GB/s ({mib} MiB in {secs:.3} s, {sink})",
            (mib << 20) as f64 / secs / 1e9
        );
    }
}
