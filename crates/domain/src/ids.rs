use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }
    };
}

id_type!(
    /// A family: one event stream `family-{uuid}` (UUIDv7).
    FamilyId
);
id_type!(
    /// A member of a family (UUIDv7), stable across corrections.
    MemberId
);
id_type!(
    /// The random 128-bit id carried in a certificate's QR token. It is random (UUIDv4 layout) so
    /// that it reveals nothing: no time, no personal data, no certificate number.
    CertificateId
);

impl FamilyId {
    /// The name of the event stream that holds this family's events.
    pub fn stream_name(&self) -> String {
        format!("family-{}", self.0)
    }

    /// Parses a stream name produced by [`FamilyId::stream_name`].
    pub fn from_stream_name(stream: &str) -> Option<Self> {
        stream
            .strip_prefix("family-")
            .and_then(|s| Uuid::parse_str(s).ok())
            .map(Self)
    }
}
