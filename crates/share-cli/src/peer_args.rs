//! The peer-connection flags of `share seed`, `share fetch` and `share chat`.

/// How we meet peers.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PeerArgs {
    /// No peer exchange (BEP 11): do not tell peers whom else we are connected to, and
    /// do not dial whom they tell us of.
    #[arg(long)]
    pub no_pex: bool,
    /// Encryption of peer connections (MSE/PE): `prefer` accepts both and dials with the
    /// encrypted handshake, falling back to plain, and the data is RC4 when either side
    /// requires it; `require` refuses plain connections both ways; `off` refuses encrypted
    /// ones.
    #[arg(long, value_name = "prefer|require|off", default_value = "prefer")]
    pub encryption: share_engine::Encryption,
    /// No Mainline DHT (BEP 5): find peers through trackers, peer exchange and `--peer`
    /// only. Private torrents never use the DHT.
    #[arg(long, env = "SHARE_NO_DHT", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_dht: bool,
    /// No Local Service Discovery (BEP 14): do not announce torrents on the LAN by
    /// multicast, nor dial the peers announcing them there.
    #[arg(long, env = "SHARE_NO_LSD", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_lsd: bool,
    /// A DHT node to bootstrap from (HOST:PORT), instead of the public routers; repeat for
    /// several.
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
}

impl PeerArgs {
    /// The DHT settings these flags ask for, with the routing table kept in `state_dir`.
    pub fn dht(&self, state_dir: Option<&std::path::Path>) -> Option<share_engine::DhtConfig> {
        (!self.no_dht).then(|| share_engine::DhtConfig {
            bootstrap: self.dht_bootstrap.clone(),
            nodes_file: state_dir.map(|d| d.join("dht-nodes")),
        })
    }
}
