//! The application layer: the command path and reads of one family's stream.
//!
//! Why a crate of its own: it joins the pure domain to the event-store trait (and to a clock)
//! without knowing any backend or any transport; the HTTP server and the CLI both drive it.
//! Errors come in two layers: [`AppError::Domain`] is the domain's answer (not eligible, conflict
//! with the state, invalid field); the other variants are operational.

mod clock;
mod ids;
mod metadata;
mod service;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{certificate_number, new_certificate_id, new_family_id, new_member_id};
pub use metadata::{Actor, EventMetadata, Role};
pub use service::{
    request_hash, to_new_events, AppError, CommandOutcome, CommandRequest, FamilyAt, LoadedFamily,
    Registry, StoredEvent, Visibility, MAX_RETRIES,
};
