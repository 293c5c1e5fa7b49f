//! Reading `$all`: where a read starts, the head, and lag counted in events.
//!
//! A position in `$all` is a byte offset in the server's log, and a read may start only at a
//! record's first byte: the server reads whatever record it finds there and answers
//! `InvalidPosition` (to this client: a server error) when none begins at that byte. A reader of
//! this store resumes at "the last position it saw, plus one", which is never a record's first
//! byte; so a read from `p` starts at `p - 1` (the event seen last, skipped) and only if that is
//! refused at `p` itself (a caller that passed an event's own position; the server's read is
//! inclusive).

use crate::connection::Connection;
use kurrentdb::{Position, ReadAllOptions, StreamPosition, SubscriptionFilter};
use registry_store::{StoreError, StoreResult};

/// The registry's streams in `$all`: not system streams (`$...`), not idempotency claims.
pub fn registry_filter() -> SubscriptionFilter {
    SubscriptionFilter::on_stream_name().regex(format!("^(?!{})[^$]", crate::IDEMPOTENCY_PREFIX))
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string().into())
}

/// Where a read that wants positions from `from` on starts first, and where it starts if the
/// server refuses that.
#[must_use]
pub fn starts(from: u64) -> (StreamPosition<Position>, Option<StreamPosition<Position>>) {
    let at = |p: u64| {
        StreamPosition::Position(Position {
            commit: p,
            prepare: p,
        })
    };
    if from <= 1 {
        (StreamPosition::Start, None)
    } else {
        (at(from - 1), Some(at(from)))
    }
}

/// The server's refusal of a start that is not a record boundary: `InvalidPosition`, which it
/// sends to readers as an unknown error.
#[must_use]
pub fn is_invalid_position(e: &kurrentdb::Error) -> bool {
    match e {
        kurrentdb::Error::ServerError(m) | kurrentdb::Error::Grpc { message: m, .. } => {
            m.contains("InvalidPosition") || m.contains("invalid position")
        }
        _ => false,
    }
}

/// The server's refusal of an append over its `MaxAppendSize` (or one event over
/// `MaxAppendEventSize`).
#[must_use]
pub fn is_too_large(e: &kurrentdb::Error) -> bool {
    match e {
        kurrentdb::Error::Grpc { code, message } => {
            *code == tonic::Code::InvalidArgument && message.contains("Maximum Append")
        }
        _ => false,
    }
}

/// Reads up to `limit` events of the registry with a position of at least `from`.
async fn read_page(
    connection: &Connection,
    start: StreamPosition<Position>,
    from: u64,
    limit: usize,
) -> Result<Vec<kurrentdb::RecordedEvent>, kurrentdb::Error> {
    let options = ReadAllOptions::default()
        .forwards()
        .position(start)
        .filter(registry_filter())
        // One more than asked: the event seen last comes first and is skipped.
        .max_count(limit.saturating_add(1));
    let options = &options;
    let mut read = connection
        .call(|client| async move { client.read_all(options).await })
        .await?;
    let mut out = Vec::new();
    while let Some(e) = read.next().await? {
        let Some(e) = e.link.or(e.event) else {
            continue;
        };
        if e.position.prepare < from {
            continue;
        }
        out.push(e);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// At most `limit` events with a position of at least `from`, in log order. Every event commits
/// on its own position, and the events of one append become readable together (the server
/// indexes a write when its last event is written), so a page may end anywhere.
pub async fn from(
    connection: &Connection,
    from: u64,
    limit: usize,
) -> StoreResult<Vec<kurrentdb::RecordedEvent>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let (first, second) = starts(from);
    match read_page(connection, first, from, limit).await {
        Ok(page) => Ok(page),
        Err(e) if is_invalid_position(&e) => match second {
            Some(start) => read_page(connection, start, from, limit)
                .await
                .map_err(backend),
            None => Err(backend(e)),
        },
        Err(e) => Err(backend(e)),
    }
}

/// The position of the registry's last event (0 when there is none).
pub async fn head(connection: &Connection) -> StoreResult<u64> {
    let options = ReadAllOptions::default()
        .backwards()
        .position(StreamPosition::End)
        .filter(registry_filter())
        .max_count(1);
    let options = &options;
    let mut stream = connection
        .call(|client| async move { client.read_all(options).await })
        .await
        .map_err(backend)?;
    Ok(stream
        .next()
        .await
        .map_err(backend)?
        .map_or(0, |e| e.get_original_event().position.prepare))
}

/// How many of the registry's events come after `position`, counting to `at_most`: positions
/// are byte offsets, so the events are read (a page at a time) and counted.
pub async fn count_after(connection: &Connection, position: u64, at_most: u64) -> StoreResult<u64> {
    const PAGE: usize = 4096;
    let mut counted = 0u64;
    let mut next = position.saturating_add(1);
    while counted < at_most {
        let want = usize::try_from(at_most - counted).unwrap_or(PAGE).min(PAGE);
        let page = from(connection, next, want).await?;
        counted += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == want => next = last.position.prepare + 1,
            _ => break,
        }
    }
    Ok(counted.min(at_most))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_from_the_start_needs_no_second_try() {
        assert!(matches!(starts(0), (StreamPosition::Start, None)));
        assert!(matches!(starts(1), (StreamPosition::Start, None)));
    }

    #[test]
    fn a_resumed_read_starts_at_the_event_seen_last_then_at_the_position_itself() {
        let (first, second) = starts(5_000);
        assert!(
            matches!(first, StreamPosition::Position(p) if p.prepare == 4_999 && p.commit == 4_999)
        );
        assert!(
            matches!(second, Some(StreamPosition::Position(p)) if p.prepare == 5_000 && p.commit == 5_000)
        );
    }

    #[test]
    fn the_servers_refusals_are_told_apart() {
        let invalid = kurrentdb::Error::ServerError(
            "status: Unknown, message: \"Unexpected ReadAllResult: InvalidPosition >> Invalid position.\""
                .into(),
        );
        assert!(is_invalid_position(&invalid));
        assert!(!is_invalid_position(&kurrentdb::Error::ResourceNotFound));
        let large = kurrentdb::Error::Grpc {
            code: tonic::Code::InvalidArgument,
            message: "Maximum Append Size of 1048576 Exceeded.".into(),
        };
        assert!(is_too_large(&large));
        assert!(!is_too_large(&invalid));
    }
}
