//! The tokio engine of share.
