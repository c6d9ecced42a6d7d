//! The peer-connection flags of `share seed`, `share fetch` and `share chat`.

/// How we meet peers.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PeerArgs {
    /// No peer exchange (BEP 11): do not tell peers whom else we are connected to, and
    /// do not dial whom they tell us of.
    #[arg(long)]
    pub no_pex: bool,
    /// Encryption of peer connections (MSE/PE, RC4): `prefer` accepts both and dials
    /// encrypted, falling back to plain; `require` refuses plain connections both ways;
    /// `off` refuses encrypted ones.
    #[arg(long, value_name = "prefer|require|off", default_value = "prefer")]
    pub encryption: share_engine::Encryption,
}
