//! The connection strings the `kurrentdb` client parses.

/// The URL schemes of a KurrentDB connection string, as the client accepts them (`+discover`:
/// find the cluster's nodes through DNS or a gossip seed).
pub const SCHEMES: &[&str] = &[
    "kurrentdb://",
    "kurrentdb+discover://",
    "kurrent://",
    "kurrent+discover://",
    "esdb://",
    "esdb+discover://",
    "kdb://",
    "kdb+discover://",
];

/// Whether `url` names a KurrentDB event store.
#[must_use]
pub fn accepts(url: &str) -> bool {
    SCHEMES.iter().any(|s| url.starts_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_the_client_parses_is_accepted_and_parses() {
        for scheme in SCHEMES {
            let url = format!("{scheme}node-1.example:2113,node-2.example:2113?tls=false");
            assert!(accepts(&url), "{url}");
            if !scheme.contains("+discover") {
                url.parse::<kurrentdb::ClientSettings>()
                    .unwrap_or_else(|e| panic!("{url}: {e}"));
            } else {
                format!("{scheme}cluster.example:2113?tls=false")
                    .parse::<kurrentdb::ClientSettings>()
                    .unwrap_or_else(|e| panic!("{scheme}: {e}"));
            }
        }
        assert!(!accepts("postgres://registry@localhost/registry"));
        assert!(!accepts("sqlite:registry.db"));
    }
}
