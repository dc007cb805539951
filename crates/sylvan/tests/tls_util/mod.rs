//! A test PKI made with rcgen: a CA, and a `localhost` certificate it
//! signed; PEM text for the server, a rustls client configuration and a CA
//! file for curl and Python.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use sylvan::net::tls::rustls;

pub struct Pki {
    pub ca_pem: String,
    pub chain_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sylvan test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        Pki {
            ca_pem: ca.pem(),
            chain_pem: leaf.pem() + &ca.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A client configuration trusting only the test CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in sylvan::net::tls::certs_from_pem(self.ca_pem.as_bytes()).unwrap() {
            roots.add(c).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    /// The CA certificate in a file (for `curl --cacert`, Python's ssl).
    pub fn ca_file(&self, name: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("sylvan-test-ca-{}-{name}.pem", std::process::id()));
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }
}
