//! Personal data sealed per family at rest, so that it can be erased without rewriting the log
//! (crypto-shredding).
//!
//! Why a crate of its own: sealing is a decorator over any [`EventStore`](registry_store::EventStore)
//! ([`SealingStore`]), so the application, the projections and every backend stay as they are.
//! Each family has a data key ([`FamilyKeys`]), kept wrapped by a key-encryption key
//! ([`KeyEncryptionKey`], a file under `data/keys` today, a KMS or HSM tomorrow). On append the
//! personal fields of a family's events ([`registry_domain::personal::PERSONAL_FIELDS`]) are
//! sealed with XChaCha20-Poly1305; on read they are opened, or, once the family's key is
//! destroyed, read as erased. ADR 19.

mod family_keys;
mod kek;
mod seal;
mod store;

pub use family_keys::{FamilyKeys, KeyState, SqliteFamilyKeys};
pub use kek::{DataKey, FileKek, KeyEncryptionKey, KeyError};
pub use seal::{open_event, seal_event, SealError, SEALED};
pub use store::SealingStore;
