//! `registry audit verify`: the audit of `registry_tlog::audit` over the stores the URLs name,
//! with the checkpoint an auditor keeps between visits.

use crate::Stores;
use anyhow::Context;
use registry_tlog::audit::{verify, AuditError, AuditReport};
use registry_tlog::LogKey;
use std::path::Path;

/// The log's public key: given, or derived from the key in the data directory.
pub fn log_verifier_key(stores: &Stores, given: Option<&str>) -> anyhow::Result<String> {
    if let Some(key) = given {
        return Ok(key.trim().to_owned());
    }
    let path = stores.keys_dir().join(registry_tlog::note::KEY_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the log key {} (or pass the log's public key with --log-key, as served at \
             /log/key)",
            path.display()
        )
    })?;
    Ok(LogKey::from_signer_key(&text)?.verifier_key().to_owned())
}

/// What an audit found: a report when everything held, or the finding.
pub type AuditOutcome = Result<AuditReport, AuditError>;

/// Runs the audit over the stores. `kept` is a checkpoint file from an earlier audit (read if it
/// exists); after a passing audit the newest checkpoint is written to it.
pub async fn audit(
    stores: &Stores,
    verifier_key: &str,
    kept: Option<&Path>,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<AuditOutcome> {
    let events = stores.open_plain_event_store().await?;
    let tree = stores.open_read_store().await?.tree;
    let kept_note = match kept {
        Some(path) if path.exists() => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the kept checkpoint {}", path.display()))?,
        ),
        _ => None,
    };
    let outcome = verify(
        events.as_ref(),
        tree.as_ref(),
        verifier_key,
        kept_note.as_deref(),
        progress,
    )
    .await;
    if let (Ok(report), Some(path)) = (&outcome, kept) {
        if let Some((note, _)) = &report.latest {
            std::fs::write(path, note)
                .with_context(|| format!("saving the checkpoint to {}", path.display()))?;
        }
    }
    Ok(outcome)
}
