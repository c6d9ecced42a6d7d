//! Compact peer addresses (BEP 23, BEP 7): 4 address bytes and a big-endian port for IPv4
//! (6 in all), 16 and a port for IPv6 (18). HTTP and UDP tracker responses and `ut_pex`
//! messages all carry them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Bytes a compact address of the family takes.
pub fn width(v6: bool) -> usize {
    if v6 {
        18
    } else {
        6
    }
}

/// The addresses in `bytes`, all of one family; a partial one at the end is left out.
pub fn read(bytes: &[u8], v6: bool) -> impl Iterator<Item = SocketAddr> + '_ {
    let width = width(v6);
    bytes.chunks_exact(width).map(move |c| {
        let (ip, port) = c.split_at(width - 2);
        let ip = match <[u8; 16]>::try_from(ip) {
            Ok(v6) => IpAddr::V6(Ipv6Addr::from(v6)),
            Err(_) => IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
        };
        SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]]))
    })
}

/// Appends `addr` to `out`.
pub fn write(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_round_trip_and_a_partial_entry_is_left_out() {
        for (addr, v6) in [("1.2.3.4:5", false), ("[2001:db8::7]:6881", true)] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut out = Vec::new();
            write(&addr, &mut out);
            assert_eq!(out.len(), width(v6));
            out.push(9);
            assert_eq!(read(&out, v6).collect::<Vec<_>>(), vec![addr]);
        }
    }
}
