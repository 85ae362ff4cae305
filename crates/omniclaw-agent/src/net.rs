//! The HTTP clients' common ground: TLS through rustls with the `ring`
//! provider, installed once for the process.
//!
//! reqwest is built without a provider of its own (its default would link
//! aws-lc, about 1.5 MB of C, beside the `ring` the WebSocket client
//! already uses). Every reqwest client in OmniClaw starts from
//! [`client_builder`], which installs `ring` first: a client built
//! without a provider would panic.

use std::sync::Once;

/// `ring` as the process's rustls provider, unless one is installed.
pub fn install_tls_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means a provider is already installed: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder, with the TLS provider in place.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_builds_with_ring_as_the_provider() {
        client_builder().build().expect("a client");
        let provider = rustls::crypto::CryptoProvider::get_default().expect("installed");
        assert!(
            provider
                .cipher_suites
                .iter()
                .any(|s| format!("{:?}", s.suite()).contains("TLS13_AES_128_GCM_SHA256")),
            "ring's suites"
        );
    }
}
