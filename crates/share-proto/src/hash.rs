//! SHA-1 behind one small interface, and the 20-byte identifiers of BitTorrent.
//!
//! Every SHA-1 in the project goes through [`sha1`] or [`Sha1`], so the backend is chosen by
//! measurement in one place: the SHA-NI instructions where the CPU has them (sha1 0.11 detects
//! them at run time), else the OpenSSL-derived assembly of sha1 0.10 (about 1.8x the portable
//! code). `examples/hash_speed.rs` measures both; bench/README.md has the figures.

use std::fmt;
use std::sync::OnceLock;

use sha1::Digest as _;
use sha1_asm::Digest as _;

/// Length of a SHA-1 digest, of an info hash and of a peer id.
pub const HASH_LEN: usize = 20;

/// The SHA-1 implementations we can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// sha1 0.11: SHA-NI instructions when present, portable code otherwise.
    ShaNi,
    /// sha1 0.10 with its assembly core.
    Asm,
}

/// The backend this process uses: SHA-NI when the CPU has it, else the assembly core.
/// `SHARE_SHA1=asm` or `SHARE_SHA1=ni` forces one (for benchmarks).
pub fn backend() -> Backend {
    static CHOSEN: OnceLock<Backend> = OnceLock::new();
    *CHOSEN.get_or_init(|| match std::env::var("SHARE_SHA1").as_deref() {
        Ok("asm") => Backend::Asm,
        Ok("ni") => Backend::ShaNi,
        _ if cpu_has_sha_ni() => Backend::ShaNi,
        _ => Backend::Asm,
    })
}

fn cpu_has_sha_ni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sha") && std::arch::is_x86_feature_detected!("sse4.1")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// SHA-1 of `data`.
pub fn sha1(data: &[u8]) -> [u8; HASH_LEN] {
    let mut h = Sha1::new();
    h.update(data);
    h.finish()
}

/// Incremental SHA-1, for data that arrives in parts (blocks of a piece, spans of files).
#[derive(Clone)]
pub struct Sha1(Inner);

#[derive(Clone)]
enum Inner {
    Ni(sha1::Sha1),
    Asm(sha1_asm::Sha1),
}

impl Default for Sha1 {
    fn default() -> Self {
        Self::with_backend(backend())
    }
}

impl Sha1 {
    /// A fresh hasher on the process's backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh hasher on a given backend.
    pub fn with_backend(backend: Backend) -> Self {
        Self(match backend {
            Backend::ShaNi => Inner::Ni(sha1::Sha1::new()),
            Backend::Asm => Inner::Asm(sha1_asm::Sha1::new()),
        })
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Inner::Ni(h) => sha1::Digest::update(h, data),
            Inner::Asm(h) => sha1_asm::Digest::update(h, data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> [u8; HASH_LEN] {
        match self.0 {
            Inner::Ni(h) => h.finalize().into(),
            Inner::Asm(h) => h.finalize().into(),
        }
    }
}

macro_rules! id20 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; HASH_LEN]);

        impl $name {
            /// The raw 20 bytes.
            pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
                &self.0
            }

            /// Lower-case hex, 40 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses 40 hex digits (either case).
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; HASH_LEN];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some(Self(out))
            }

            /// Takes exactly 20 bytes.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                <[u8; HASH_LEN]>::try_from(b).ok().map(Self)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }
    };
}

id20!(
    /// The SHA-1 of the exact bytes of a manifest's `info` dictionary: a swarm's name.
    InfoHash
);
id20!(
    /// A peer's 20-byte id (BEP 20 style for ours: `-SH0100-` and 12 random bytes).
    PeerId
);

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for PeerId {
    /// Printable bytes as they are, the rest as `%XX`, the way trackers log ids.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

/// The prefix of our peer ids (BEP 20): client `SH`, version 0.1.0.0.
pub const PEER_ID_PREFIX: &[u8; 8] = b"-SH0100-";

impl PeerId {
    /// Our id: the [`PEER_ID_PREFIX`] followed by the 12 given random bytes.
    pub fn ours(random: [u8; 12]) -> Self {
        let mut id = [0u8; HASH_LEN];
        id[..8].copy_from_slice(PEER_ID_PREFIX);
        id[8..].copy_from_slice(&random);
        Self(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_vectors() {
        assert_eq!(hex::encode(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex::encode(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let mut h = Sha1::new();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish(), sha1(b"abc"));
    }

    #[test]
    fn backends_agree() {
        let data: Vec<u8> = (0..100_003u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let a = Sha1::with_backend(Backend::ShaNi);
        let b = Sha1::with_backend(Backend::Asm);
        let (mut a, mut b) = (a, b);
        for chunk in data.chunks(999) {
            a.update(chunk);
            b.update(chunk);
        }
        assert_eq!(a.finish(), b.finish());
        for backend in [Backend::ShaNi, Backend::Asm] {
            let mut h = Sha1::with_backend(backend);
            h.update(b"The quick brown fox jumps over the lazy dog");
            assert_eq!(
                hex::encode(h.finish()),
                "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
            );
        }
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(InfoHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(InfoHash::from_hex(&"AB".repeat(20)), Some(h));
        assert_eq!(InfoHash::from_hex("abc"), None);
        assert_eq!(InfoHash::from_hex(&"zz".repeat(20)), None);
        assert_eq!(InfoHash::from_slice(&[0; 19]), None);
    }

    #[test]
    fn peer_id_display_escapes() {
        let id = PeerId::ours([0xff; 12]);
        assert!(id.to_string().starts_with("-SH0100-%FF"));
    }
}
