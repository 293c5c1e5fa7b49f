use serde::Serialize;

/// One invalid field of a command, named by its JSON path (`members[2].birth_date`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why `decide` refused a command. These are the domain's answers, not operational failures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// One or more fields are invalid.
    #[error("validation failed: {0:?}")]
    Validation(Vec<FieldError>),
    /// The family does not qualify under the policy.
    #[error("not eligible: {counted} counted children, at least {required} required")]
    NotEligible { counted: usize, required: u32 },
    /// The family's current state forbids the command (renewing a revoked status, ...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// No such family, or no such member in the family.
    #[error("not found: {0}")]
    NotFound(String),
}

impl DomainError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }
}
