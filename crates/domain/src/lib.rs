//! The pure domain of the large-family certificate registry.
//!
//! Why a crate of its own: everything here is synchronous and free of I/O and clocks, so the rules
//! (who counts, until when, which commands a status allows) can be tested exhaustively without a
//! database. The vocabulary is `decide(&state, &command, &context) -> events` and
//! `evolve(state, &event) -> state`; "today" always arrives from outside in [`DecideContext`].

mod command;
mod decide;
mod error;
mod event;
mod ids;
mod member;
pub mod personal;
mod policy;
pub mod snils;
mod state;
pub mod time;
mod validity;

pub use command::{Command, MemberChanges, StudentConfirmation};
pub use decide::{decide, erasable_from, policy_for, status_ended_on, DecideContext};
pub use error::{DomainError, FieldError};
pub use event::{
    CertificateReissued, DecodeError, FamilyEvent, MemberAdded, MemberDetailsCorrected,
    MemberRemoved, PersonalDataErased, StatusGranted, StatusRenewed, StatusRevoked,
    StatusTerminated, TerminationReason, EVENT_TYPES,
};
pub use ids::{CertificateId, FamilyId, MemberId};
pub use member::{Care, Decision, Member, Relation, RemovalReason};
pub use policy::{add_years, EndsWith, NoPolicyInForce, Policy, PolicyBook, Study, UnknownPolicy};
pub use state::{evolve, fold, CertificateState, Family, Status};
pub use validity::{validity_basis, DecidingRole, ValidityBasis};
