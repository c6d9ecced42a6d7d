//! Message Stream Encryption (MSE, also called Protocol Encryption): the RC4-obfuscated
//! handshake every major BitTorrent client speaks, as a state machine without I/O.
//!
//! Both sides exchange 768-bit Diffie-Hellman public keys, derive RC4 keys from the shared
//! secret and the torrent's info hash (which the initiator never sends in the clear), then
//! agree on plaintext or RC4 for the rest of the stream:
//!
//! ```text
//! A->B: Ya, PadA
//! B->A: Yb, PadB
//! A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!       ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! B->A: ENCRYPT(VC, crypto_select, len(padD), padD), ENCRYPT2(payload stream)
//! ```
//!
//! The cryptography is RustCrypto's `rc4` (keystream, first 1024 bytes discarded), `sha1`
//! (through [`crate::hash`]) and `num-bigint`'s modular exponentiation; this module only
//! frames, pads and checks. [`Handshake`] consumes whatever bytes arrive (in any split) and
//! queues what to send; the caller moves the bytes.

use num_bigint::BigUint;
use rc4::{consts::U20, KeyInit, Rc4, StreamCipher};

/// The 768-bit prime of the MSE Diffie-Hellman group (generator 2).
const PRIME_HEX: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563";

/// Bytes in a public key and in the shared secret (768 bits).
pub const KEY_LEN: usize = 96;
/// Longest padding either side may send (PadA to PadD).
pub const MAX_PAD: usize = 512;
/// Longest initial payload we accept (a BitTorrent handshake is 68 bytes; clients send it
/// and sometimes their first messages with it).
pub const MAX_IA: usize = 4096;
/// Bits of `crypto_provide` and `crypto_select`.
pub const PLAINTEXT: u32 = 0x01;
pub const RC4: u32 = 0x02;
/// Private keys are 160 random bits: the specification asks for at least 128, and more than
/// 180 is not believed to add anything.
const PRIVATE_LEN: usize = 20;
/// The verification constant: eight zero bytes, encrypted.
const VC: [u8; 8] = [0; 8];

/// The RC4 cipher of one direction, its first 1024 bytes of keystream already discarded.
pub type Cipher = Rc4<U20>;

/// Runs `cipher` over `data` in place. One non-generic function, so that the keystream is
/// compiled (and optimized: Cargo.toml) here rather than in each caller.
pub fn apply(cipher: &mut Cipher, data: &mut [u8]) {
    cipher.apply_keystream(data);
}

fn prime() -> BigUint {
    BigUint::parse_bytes(PRIME_HEX.as_bytes(), 16).expect("the MSE prime parses")
}

/// `n` as exactly [`KEY_LEN`] big-endian bytes.
fn to_key_bytes(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    out[KEY_LEN - bytes.len()..].copy_from_slice(&bytes);
    out
}

/// A Diffie-Hellman key pair of the MSE group.
pub struct KeyPair {
    private: BigUint,
    /// Our public key, sent as Ya or Yb.
    pub public: [u8; KEY_LEN],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A fresh key pair from the thread's CSPRNG.
    pub fn generate() -> Self {
        let mut x = [0u8; PRIVATE_LEN];
        rand::fill(&mut x);
        Self::from_private(&x)
    }

    /// The key pair of a given private key (big-endian); for tests.
    pub fn from_private(x: &[u8]) -> Self {
        let private = BigUint::from_bytes_be(x);
        let public = to_key_bytes(&BigUint::from(2u32).modpow(&private, &prime()));
        Self { private, public }
    }

    /// The shared secret S with the other side's public key; refuses the degenerate keys
    /// (0, 1, p-1 and above) that would make S guessable.
    pub fn shared_secret(&self, theirs: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN], MseError> {
        let p = prime();
        let y = BigUint::from_bytes_be(theirs);
        let one = BigUint::from(1u32);
        if y <= one || y >= &p - &one {
            return Err(MseError::BadPublicKey);
        }
        Ok(to_key_bytes(&y.modpow(&self.private, &p)))
    }
}

fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = crate::hash::Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finish()
}

/// HASH('req2', SKEY): how the initiator names the torrent (xored with HASH('req3', S)). A
/// responder serving many torrents compares it with each one's.
pub fn req2(info_hash: &[u8; 20]) -> [u8; 20] {
    hash(&[b"req2", info_hash])
}

/// An RC4 cipher keyed with `key`, the first 1024 bytes of its keystream discarded, as MSE
/// asks.
fn discarded<K: rc4::cipher::ArrayLength<u8>>(key: &[u8]) -> Rc4<K> {
    let mut c = Rc4::<K>::new(rc4::Key::<K>::from_slice(key));
    let mut skip = [0u8; 1024];
    c.apply_keystream(&mut skip);
    c
}

/// The cipher keyed HASH(label, S, SKEY): `keyA` is the initiator's sending cipher, `keyB`
/// the responder's.
fn cipher(label: &[u8], s: &[u8; KEY_LEN], skey: &[u8; 20]) -> Cipher {
    discarded::<U20>(&hash(&[label, s, skey]))
}

/// The two directions' ciphers: (A's sending cipher, B's sending cipher).
fn ciphers(s: &[u8; KEY_LEN], skey: &[u8; 20]) -> (Cipher, Cipher) {
    (cipher(b"keyA", s, skey), cipher(b"keyB", s, skey))
}

/// What went wrong in an MSE handshake.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MseError {
    #[error("the peer's Diffie-Hellman public key is degenerate")]
    BadPublicKey,
    #[error("no encrypted handshake found after {0} bytes (not MSE, or the wrong key)")]
    NoSync(usize),
    #[error("the peer named a torrent we do not have")]
    UnknownTorrent,
    #[error("the verification constant did not decrypt to zeros")]
    BadVerification,
    #[error("padding of {0} bytes (at most {MAX_PAD})")]
    PadTooLong(usize),
    #[error("initial payload of {0} bytes (at most {MAX_IA})")]
    PayloadTooLong(usize),
    #[error("the peer offers {offered} but we allow {allowed} (see --encryption)")]
    NoCommonMethod { offered: Methods, allowed: Methods },
    #[error("the peer selected {selected} which we did not offer ({offered})")]
    BadSelect { selected: Methods, offered: Methods },
}

/// A set of `crypto_provide` bits, named for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods(pub u32);

impl std::fmt::Display for Methods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0 & RC4 != 0, self.0 & PLAINTEXT != 0) {
            (true, true) => write!(f, "RC4 or plaintext"),
            (true, false) => write!(f, "RC4 only"),
            (false, true) => write!(f, "plaintext only"),
            (false, false) => write!(f, "no method ({:#x})", self.0),
        }
    }
}

/// How the rest of the stream goes once the handshake is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Plaintext,
    Rc4,
}

/// A finished handshake.
pub struct Done {
    pub method: Method,
    /// The torrent the initiator named (for an initiator, the one it was given).
    pub info_hash: [u8; 20],
    /// For RC4: (our sending cipher, our receiving cipher), both already past the
    /// handshake's bytes.
    pub ciphers: Option<(Cipher, Cipher)>,
    /// The initiator's initial payload, decrypted (empty for an initiator's own result).
    pub initial_payload: Vec<u8>,
    /// Bytes received after the handshake, as they came off the wire (still encrypted under
    /// RC4; the caller's receiving cipher decrypts them first).
    pub rest: Vec<u8>,
}

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Done")
            .field("method", &self.method)
            .field("initial_payload", &self.initial_payload.len())
            .field("rest", &self.rest.len())
            .finish_non_exhaustive()
    }
}

/// Looks up a torrent by its HASH('req2', info hash) ([`req2`]).
pub type Lookup = Box<dyn Fn(&[u8; 20]) -> Option<[u8; 20]> + Send + Sync>;

enum State {
    // Initiator.
    AwaitYb,
    AwaitVc { encrypted_vc: [u8; 8] },
    AwaitSelect,
    AwaitPadD(usize),
    // Responder.
    AwaitYa,
    AwaitReq1 { req1: [u8; 20] },
    AwaitReq23,
    AwaitProvide,
    AwaitPadC(usize),
    AwaitIa(usize),
    Finished,
}

/// One side of an MSE handshake.
pub struct Handshake {
    state: State,
    /// Ours: an initiator's from the start, a responder's once Ya is in (a connection that
    /// never sends a whole key costs no exponentiation).
    keys: Option<KeyPair>,
    secret: [u8; KEY_LEN],
    /// Initiator: the torrent; responder: learnt from req2.
    info_hash: [u8; 20],
    /// Initiator: what we offer; responder: what we accept.
    methods: u32,
    /// Initiator: the payload to send with the handshake.
    ia: Vec<u8>,
    lookup: Option<Lookup>,
    provided: u32,
    selected: u32,
    /// (sending, receiving) once keyed.
    ciphers: Option<(Cipher, Cipher)>,
    initial_payload: Vec<u8>,
    /// Received and not yet consumed.
    buf: Vec<u8>,
    /// Queued to send.
    out: Vec<u8>,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake").finish_non_exhaustive()
    }
}

fn padding() -> Vec<u8> {
    let len = rand::random_range(0..=MAX_PAD);
    let mut pad = vec![0u8; len];
    rand::fill(&mut pad[..]);
    pad
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Handshake {
    /// The dialing side for `info_hash`, offering `methods` ([`RC4`], [`PLAINTEXT`] or both)
    /// and sending `initial_payload` (usually our BitTorrent handshake) with its third step.
    /// Its first bytes are queued at once ([`Handshake::take_output`]).
    pub fn initiator(info_hash: [u8; 20], methods: u32, initial_payload: Vec<u8>) -> Self {
        Self::initiator_with(
            KeyPair::generate(),
            padding(),
            info_hash,
            methods,
            initial_payload,
        )
    }

    fn initiator_with(keys: KeyPair, pad: Vec<u8>, info_hash: [u8; 20], methods: u32, ia: Vec<u8>) -> Self {
        assert!(ia.len() <= MAX_IA, "initial payload too long");
        let mut out = keys.public.to_vec();
        out.extend_from_slice(&pad);
        Self {
            state: State::AwaitYb,
            keys: Some(keys),
            secret: [0; KEY_LEN],
            info_hash,
            methods,
            ia,
            lookup: None,
            provided: methods,
            selected: 0,
            ciphers: None,
            initial_payload: Vec::new(),
            buf: Vec::new(),
            out,
        }
    }

    /// The accepting side: accepts `methods` (choosing plaintext when both sides allow it,
    /// RC4 when either requires it) and finds the torrent with `lookup`.
    pub fn responder(methods: u32, lookup: Lookup) -> Self {
        Self {
            state: State::AwaitYa,
            keys: None,
            secret: [0; KEY_LEN],
            info_hash: [0; 20],
            methods,
            ia: Vec::new(),
            lookup: Some(lookup),
            provided: 0,
            selected: 0,
            ciphers: None,
            initial_payload: Vec::new(),
            buf: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Bytes to send now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Takes bytes that arrived; `Ok(Some)` once the handshake is done (send
    /// [`Handshake::take_output`] first: the responder's last step is queued with it).
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<Done>, MseError> {
        self.buf.extend_from_slice(data);
        loop {
            match self.step()? {
                Step::More => return Ok(None),
                Step::Again => {}
                Step::Done => return Ok(Some(self.finish())),
            }
        }
    }

    fn finish(&mut self) -> Done {
        self.state = State::Finished;
        let method = if self.selected == RC4 {
            Method::Rc4
        } else {
            Method::Plaintext
        };
        let ciphers = self.ciphers.take();
        Done {
            method,
            info_hash: self.info_hash,
            ciphers: if method == Method::Rc4 { ciphers } else { None },
            initial_payload: std::mem::take(&mut self.initial_payload),
            rest: std::mem::take(&mut self.buf),
        }
    }

    /// Takes `n` bytes off the front of the buffer, decrypted with the receiving cipher.
    fn take_decrypted(&mut self, n: usize) -> Vec<u8> {
        let mut v: Vec<u8> = self.buf.drain(..n).collect();
        if let Some((_, rx)) = &mut self.ciphers {
            rx.apply_keystream(&mut v);
        }
        v
    }

    fn encrypt_out(&mut self, mut data: Vec<u8>) {
        if let Some((tx, _)) = &mut self.ciphers {
            tx.apply_keystream(&mut data);
        }
        self.out.extend_from_slice(&data);
    }

    fn step(&mut self) -> Result<Step, MseError> {
        match self.state {
            State::AwaitYb => {
                if self.buf.len() < KEY_LEN {
                    return Ok(Step::More);
                }
                let yb: [u8; KEY_LEN] = self.buf[..KEY_LEN].try_into().unwrap();
                self.buf.drain(..KEY_LEN);
                let keys = self
                    .keys
                    .as_ref()
                    .expect("an initiator has its keys from the start");
                self.secret = keys.shared_secret(&yb)?;
                let (a, b) = ciphers(&self.secret, &self.info_hash);
                // B's VC comes first in B's keystream: the bytes to look for.
                let mut probe = cipher(b"keyB", &self.secret, &self.info_hash);
                let mut encrypted_vc = VC;
                probe.apply_keystream(&mut encrypted_vc);
                self.ciphers = Some((a, b));
                let mut head = hash(&[b"req1", &self.secret]).to_vec();
                let req2 = req2(&self.info_hash);
                let req3 = hash(&[b"req3", &self.secret]);
                head.extend(req2.iter().zip(req3).map(|(x, y)| x ^ y));
                self.out.extend_from_slice(&head);
                let pad_c: Vec<u8> = Vec::new();
                let mut body = VC.to_vec();
                body.extend_from_slice(&self.methods.to_be_bytes());
                body.extend_from_slice(&(pad_c.len() as u16).to_be_bytes());
                body.extend_from_slice(&pad_c);
                body.extend_from_slice(&(self.ia.len() as u16).to_be_bytes());
                body.extend_from_slice(&std::mem::take(&mut self.ia));
                self.encrypt_out(body);
                self.state = State::AwaitVc { encrypted_vc };
                Ok(Step::Again)
            }
            State::AwaitVc { encrypted_vc } => match find(&self.buf, &encrypted_vc) {
                Some(at) if at <= MAX_PAD => {
                    self.buf.drain(..at);
                    let vc = self.take_decrypted(VC.len());
                    debug_assert_eq!(vc, VC);
                    self.state = State::AwaitSelect;
                    Ok(Step::Again)
                }
                _ if self.buf.len() >= MAX_PAD + VC.len() => Err(MseError::NoSync(KEY_LEN + self.buf.len())),
                _ => Ok(Step::More),
            },
            State::AwaitSelect => {
                if self.buf.len() < 6 {
                    return Ok(Step::More);
                }
                let v = self.take_decrypted(6);
                let selected = u32::from_be_bytes(v[..4].try_into().unwrap());
                let pad = u16::from_be_bytes([v[4], v[5]]) as usize;
                if selected.count_ones() != 1 || selected & self.provided == 0 {
                    return Err(MseError::BadSelect {
                        selected: Methods(selected),
                        offered: Methods(self.provided),
                    });
                }
                if pad > MAX_PAD {
                    return Err(MseError::PadTooLong(pad));
                }
                self.selected = selected;
                self.state = State::AwaitPadD(pad);
                Ok(Step::Again)
            }
            State::AwaitPadD(pad) => {
                if self.buf.len() < pad {
                    return Ok(Step::More);
                }
                self.take_decrypted(pad);
                Ok(Step::Done)
            }
            State::AwaitYa => {
                if self.buf.len() < KEY_LEN {
                    return Ok(Step::More);
                }
                let ya: [u8; KEY_LEN] = self.buf[..KEY_LEN].try_into().unwrap();
                self.buf.drain(..KEY_LEN);
                let keys = KeyPair::generate();
                self.secret = keys.shared_secret(&ya)?;
                let mut out = keys.public.to_vec();
                self.keys = Some(keys);
                out.extend_from_slice(&padding());
                self.out.extend_from_slice(&out);
                let req1 = hash(&[b"req1", &self.secret]);
                self.state = State::AwaitReq1 { req1 };
                Ok(Step::Again)
            }
            State::AwaitReq1 { req1 } => match find(&self.buf, &req1) {
                Some(at) if at <= MAX_PAD => {
                    self.buf.drain(..at + req1.len());
                    self.state = State::AwaitReq23;
                    Ok(Step::Again)
                }
                _ if self.buf.len() >= MAX_PAD + req1.len() => {
                    Err(MseError::NoSync(KEY_LEN + self.buf.len()))
                }
                _ => Ok(Step::More),
            },
            State::AwaitReq23 => {
                if self.buf.len() < 20 {
                    return Ok(Step::More);
                }
                let req3 = hash(&[b"req3", &self.secret]);
                let mut named = [0u8; 20];
                for (i, n) in named.iter_mut().enumerate() {
                    *n = self.buf[i] ^ req3[i];
                }
                self.buf.drain(..20);
                let lookup = self.lookup.as_ref().expect("a responder has a lookup");
                self.info_hash = lookup(&named).ok_or(MseError::UnknownTorrent)?;
                let (a, b) = ciphers(&self.secret, &self.info_hash);
                // We send with B's key and receive with A's.
                self.ciphers = Some((b, a));
                self.state = State::AwaitProvide;
                Ok(Step::Again)
            }
            State::AwaitProvide => {
                if self.buf.len() < 14 {
                    return Ok(Step::More);
                }
                let v = self.take_decrypted(14);
                if v[..8] != VC {
                    return Err(MseError::BadVerification);
                }
                self.provided = u32::from_be_bytes(v[8..12].try_into().unwrap());
                let pad = u16::from_be_bytes([v[12], v[13]]) as usize;
                if pad > MAX_PAD {
                    return Err(MseError::PadTooLong(pad));
                }
                self.state = State::AwaitPadC(pad);
                Ok(Step::Again)
            }
            State::AwaitPadC(pad) => {
                if self.buf.len() < pad + 2 {
                    return Ok(Step::More);
                }
                let v = self.take_decrypted(pad + 2);
                let ia = u16::from_be_bytes([v[pad], v[pad + 1]]) as usize;
                if ia > MAX_IA {
                    return Err(MseError::PayloadTooLong(ia));
                }
                self.state = State::AwaitIa(ia);
                Ok(Step::Again)
            }
            State::AwaitIa(len) => {
                if self.buf.len() < len {
                    return Ok(Step::More);
                }
                self.initial_payload = self.take_decrypted(len);
                // Plaintext when both sides allow it (as libtorrent does unless told to prefer
                // RC4): the handshake is hidden either way, and RC4 costs a core at gigabit
                // speeds. RC4 when either side requires it.
                let common = self.provided & self.methods;
                self.selected = if common & PLAINTEXT != 0 {
                    PLAINTEXT
                } else if common & RC4 != 0 {
                    RC4
                } else {
                    return Err(MseError::NoCommonMethod {
                        offered: Methods(self.provided),
                        allowed: Methods(self.methods),
                    });
                };
                let pad_d: Vec<u8> = Vec::new();
                let mut body = VC.to_vec();
                body.extend_from_slice(&self.selected.to_be_bytes());
                body.extend_from_slice(&(pad_d.len() as u16).to_be_bytes());
                self.encrypt_out(body);
                Ok(Step::Done)
            }
            State::Finished => Ok(Step::More),
        }
    }
}

enum Step {
    More,
    Again,
    Done,
}

/// Whether the first bytes of a connection can be a plain BitTorrent handshake (`\x13` and
/// "BitTorrent protocol"); anything else is taken for MSE. `head` may be shorter than 20.
pub fn looks_plain(head: &[u8]) -> bool {
    let n = head.len().min(crate::wire::PROTOCOL.len());
    head[..n] == crate::wire::PROTOCOL[..n]
}

#[cfg(test)]
mod tests;
