//! `--max-up RATE` and `--max-down RATE`: bytes per second, with an optional K, M or G
//! suffix (powers of 1024, like the sizes the bars show: `4M` is 4 MiB/s), a fraction
//! allowed (`1.5M`), and `B`, `iB`, `/s` accepted after it (`4MiB/s`).

use share_engine::Limits;

/// The rate-limit flags of `share seed` and `share fetch`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RateArgs {
    /// Upload at most RATE bytes per second over all peers, e.g. 500K, 2M, 1G
    /// (K/M/G are 1024, 1024², 1024³) [default: no limit].
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub max_up: Option<u64>,
    /// Download at most RATE bytes per second over all peers, e.g. 4M [default: no limit].
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub max_down: Option<u64>,
}

impl RateArgs {
    /// The engine's limits: one bucket per direction, shared by every torrent given them.
    pub fn limits(&self) -> Limits {
        Limits::new(self.max_up, self.max_down)
    }
}

/// Parses a rate: `4M` -> 4,194,304. Zero, negatives, unknown suffixes and rates beyond
/// 1 TiB/s are refused with what was expected.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let expected = "expected bytes per second such as 500K, 2M or 1G";
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let unit = lower.strip_suffix("/s").unwrap_or(&lower);
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let (number, scale) = match unit.char_indices().last() {
        Some((i, 'k')) => (&unit[..i], 1u64 << 10),
        Some((i, 'm')) => (&unit[..i], 1 << 20),
        Some((i, 'g')) => (&unit[..i], 1 << 30),
        _ => (unit, 1),
    };
    let number = number.trim();
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("{t:?}: {expected}"));
    }
    let value: f64 = number.parse().map_err(|_| format!("{t:?}: {expected}"))?;
    let bytes = value * scale as f64;
    if bytes < 1.0 {
        return Err(format!(
            "{t:?}: a rate must be at least 1 byte per second (leave the flag out for no limit)"
        ));
    }
    if bytes > (1u64 << 40) as f64 {
        return Err(format!("{t:?}: more than 1 TiB per second; {expected}"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn suffixes_are_powers_of_1024_and_fractions_work() {
        assert_eq!(parse_rate("4M"), Ok(4 << 20));
        assert_eq!(parse_rate("500K"), Ok(500 << 10));
        assert_eq!(parse_rate("1G"), Ok(1 << 30));
        assert_eq!(parse_rate("1.5m"), Ok(3 << 19));
        assert_eq!(parse_rate("2MiB/s"), Ok(2 << 20));
        assert_eq!(parse_rate("2MB"), Ok(2 << 20));
        assert_eq!(parse_rate("100000"), Ok(100_000));
        assert_eq!(parse_rate(" 64k "), Ok(64 << 10));
    }

    #[test]
    fn nonsense_zero_and_huge_rates_are_refused_with_what_was_expected() {
        for bad in ["", "M", "fast", "4X", "-1M", "1e6", "4 M B", "1.2.3M"] {
            let err = parse_rate(bad).unwrap_err();
            assert!(err.contains("expected bytes per second"), "{bad:?}: {err}");
        }
        assert!(parse_rate("0")
            .unwrap_err()
            .contains("at least 1 byte per second"));
        assert!(parse_rate("0.1").unwrap_err().contains("leave the flag out"));
        assert!(parse_rate("2048G").unwrap_err().contains("1 TiB"));
    }
}
