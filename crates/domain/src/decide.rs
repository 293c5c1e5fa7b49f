use crate::command::{Command, MemberChanges, StudentConfirmation};
use crate::error::{DomainError, FieldError};
use crate::event::{
    CertificateReissued, FamilyEvent, MemberAdded, MemberDetailsCorrected, MemberRemoved,
    PersonalDataErased, StatusGranted, StatusRenewed, StatusRevoked, StatusTerminated,
    TerminationReason,
};
use crate::ids::{CertificateId, FamilyId, MemberId};
use crate::member::{Care, Decision, Member, Relation};
use crate::policy::{Policy, PolicyBook};
use crate::state::{Family, Status};
use chrono::NaiveDate;
use std::collections::HashSet;

/// Longest accepted name part, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest accepted free text (reasons, decision numbers, offices), in characters.
pub const MAX_TEXT_CHARS: usize = 500;
/// Most members one family may list.
pub const MAX_MEMBERS: usize = 64;

/// What `decide` needs besides the state and the command: today's date in Moscow and the policy.
#[derive(Clone, Copy, Debug)]
pub struct DecideContext<'a> {
    pub today: NaiveDate,
    pub policy: &'a Policy,
    /// The family the command is addressed to (its stream).
    pub family_id: FamilyId,
}

/// The preset of `book` that decides `command`: the one in force on the command's decision date,
/// or on `today` for a command without a decision. A decision dated before every preset of the
/// book is an invalid `decision.date`.
pub fn policy_for<'a>(
    book: &'a PolicyBook,
    command: &Command,
    today: NaiveDate,
) -> Result<&'a Policy, DomainError> {
    book.in_force_on(command.decision_date().unwrap_or(today))
        .map_err(|e| {
            DomainError::field(
                "decision.date",
                format!(
                    "no eligibility rule is in force on this date (the first takes effect on {})",
                    e.first
                ),
            )
        })
}

/// Decides which events a command produces, or why it is refused. Pure: the same state, command
/// and context always give the same answer.
pub fn decide(
    state: Option<&Family>,
    command: &Command,
    ctx: &DecideContext<'_>,
) -> Result<Vec<FamilyEvent>, DomainError> {
    match command {
        Command::Grant {
            decision,
            members,
            valid_from,
            certificate_number,
            certificate_id,
        } => grant(
            state,
            ctx,
            decision,
            members,
            *valid_from,
            certificate_number,
            *certificate_id,
        ),
        Command::Renew {
            decision,
            student_confirmations,
        } => renew(existing(state)?, ctx, decision, student_confirmations),
        Command::AddMember { member, decision } => {
            add_member(existing(state)?, ctx, member, decision.as_ref())
        }
        Command::RemoveMember { member_id, reason } => {
            let family = existing(state)?;
            not_revoked(family, "remove a member from")?;
            find_member(family, *member_id)?;
            let members: Vec<Member> = family
                .members
                .iter()
                .filter(|m| m.member_id != *member_id)
                .cloned()
                .collect();
            if !members.iter().any(|m| m.relation == Relation::Parent) {
                return Err(DomainError::Conflict(
                    "the last parent cannot be removed; add a guardian first".into(),
                ));
            }
            let (valid_until, terminated) = recompute(family, &members, ctx);
            let mut events = vec![FamilyEvent::MemberRemoved(MemberRemoved {
                member_id: *member_id,
                reason: *reason,
                policy: ctx.policy.name.clone(),
                valid_until,
            })];
            events.extend(terminated);
            Ok(events)
        }
        Command::CorrectMember { member_id, changes } => {
            correct_member(existing(state)?, ctx, *member_id, changes)
        }
        Command::Revoke { reason, decision } => {
            let family = existing(state)?;
            if family.status == Status::Revoked {
                return Err(DomainError::Conflict(
                    "the status is already revoked".into(),
                ));
            }
            let mut errors = Vec::new();
            let reason = text(&mut errors, "reason", reason);
            let decision = decision
                .as_ref()
                .map(|d| check_decision(&mut errors, "decision", d, ctx.today));
            finish(errors)?;
            Ok(vec![FamilyEvent::StatusRevoked(StatusRevoked {
                reason,
                decision,
                effective_date: ctx.today,
            })])
        }
        Command::ReissueCertificate {
            reason,
            certificate_id,
        } => {
            let family = existing(state)?;
            match family.status {
                Status::Active => {}
                Status::Terminated => {
                    return Err(DomainError::Conflict(
                        "a terminated status has no certificate to reissue".into(),
                    ))
                }
                Status::Revoked => {
                    return Err(DomainError::Conflict(
                        "a revoked status has no certificate to reissue".into(),
                    ))
                }
            }
            let mut errors = Vec::new();
            let reason = text(&mut errors, "reason", reason);
            if is_known_certificate(family, *certificate_id) {
                errors.push(FieldError::new(
                    "certificate_id",
                    "the new certificate must have a new token id",
                ));
            }
            finish(errors)?;
            Ok(vec![FamilyEvent::CertificateReissued(
                CertificateReissued {
                    certificate_id: *certificate_id,
                    certificate_serial: family.certificate_serial.saturating_add(1),
                    previous_certificate_id: family.certificate_id,
                    reason,
                    issued_on: ctx.today,
                },
            )])
        }
        Command::ErasePersonalData {
            reason,
            decision,
            retention_days,
        } => erase(existing(state)?, ctx, reason, decision, *retention_days),
    }
}

/// The day a family's status ended: when it was terminated or revoked, or the day after its
/// certificate ran out; `None` while it is in force.
pub fn status_ended_on(family: &Family, today: NaiveDate) -> Option<NaiveDate> {
    match family.status {
        Status::Terminated | Status::Revoked => Some(family.ended_on.unwrap_or(family.valid_until)),
        Status::Active if today > family.valid_until => family.valid_until.succ_opt(),
        Status::Active => None,
    }
}

/// The first day the family's personal data may be erased, `retention_days` after its status
/// ended; `None` while the status is in force.
pub fn erasable_from(family: &Family, today: NaiveDate, retention_days: u32) -> Option<NaiveDate> {
    status_ended_on(family, today)
        .and_then(|ended| ended.checked_add_days(chrono::Days::new(u64::from(retention_days))))
}

fn erase(
    family: &Family,
    ctx: &DecideContext<'_>,
    reason: &str,
    decision: &Decision,
    retention_days: u32,
) -> Result<Vec<FamilyEvent>, DomainError> {
    let Some(from) = erasable_from(family, ctx.today, retention_days) else {
        return Err(DomainError::Conflict(
            "the status is in force: personal data is erased only after it ends and the \
             retention period passes"
                .into(),
        ));
    };
    if ctx.today < from {
        return Err(DomainError::Conflict(format!(
            "the retention period has not passed: erasure is allowed from {from}"
        )));
    }
    let mut errors = Vec::new();
    let reason = text(&mut errors, "reason", reason);
    let decision = check_decision(&mut errors, "decision", decision, ctx.today);
    finish(errors)?;
    Ok(vec![FamilyEvent::PersonalDataErased(PersonalDataErased {
        reason,
        decision,
        erased_on: ctx.today,
    })])
}

fn grant(
    state: Option<&Family>,
    ctx: &DecideContext<'_>,
    decision: &Decision,
    members: &[Member],
    valid_from: Option<NaiveDate>,
    certificate_number: &str,
    certificate_id: CertificateId,
) -> Result<Vec<FamilyEvent>, DomainError> {
    if state.is_some() {
        return Err(DomainError::Conflict(
            "the family already has a status; renew it instead".into(),
        ));
    }
    let mut errors = Vec::new();
    let decision = check_decision(&mut errors, "decision", decision, ctx.today);
    if members.is_empty() {
        errors.push(FieldError::new(
            "members",
            "at least one member is required",
        ));
    }
    if members.len() > MAX_MEMBERS {
        errors.push(FieldError::new(
            "members",
            format!("at most {MAX_MEMBERS} members"),
        ));
    }
    let members: Vec<Member> = members
        .iter()
        .enumerate()
        .map(|(i, m)| check_member(&mut errors, &format!("members[{i}]"), m, ctx.today))
        .collect();
    check_duplicates(&mut errors, &members, "members");
    if !members.is_empty() && !members.iter().any(|m| m.relation == Relation::Parent) {
        errors.push(FieldError::new(
            "members",
            "at least one parent is required",
        ));
    }
    let certificate_number = text(&mut errors, "certificate_number", certificate_number);
    finish(errors)?;

    let valid_from = valid_from.unwrap_or(decision.date);
    let mut errors = Vec::new();
    check_range(&mut errors, "valid_from", valid_from);
    finish(errors)?;
    let valid_until = eligible_until(ctx, &members, decision.term_until)?;
    if valid_from > valid_until {
        return Err(DomainError::field(
            "valid_from",
            "must not be after the last day of validity",
        ));
    }
    Ok(vec![FamilyEvent::StatusGranted(StatusGranted {
        family_id: ctx.family_id,
        certificate_id,
        certificate_number,
        certificate_serial: 1,
        decision,
        policy: ctx.policy.name.clone(),
        members,
        valid_from,
        valid_until,
    })])
}

fn renew(
    family: &Family,
    ctx: &DecideContext<'_>,
    decision: &Decision,
    confirmations: &[StudentConfirmation],
) -> Result<Vec<FamilyEvent>, DomainError> {
    not_revoked(family, "renew")?;
    let mut errors = Vec::new();
    let decision = check_decision(&mut errors, "decision", decision, ctx.today);
    let mut members = family.members.clone();
    let mut seen = HashSet::new();
    for (i, c) in confirmations.iter().enumerate() {
        let field = format!("student_confirmations[{i}]");
        if !seen.insert(c.member_id) {
            errors.push(FieldError::new(
                format!("{field}.member_id"),
                "the same member is confirmed twice",
            ));
        }
        match members.iter_mut().find(|m| m.member_id == c.member_id) {
            None => errors.push(FieldError::new(
                format!("{field}.member_id"),
                "no such member in this family",
            )),
            Some(m) if m.relation != Relation::Child => errors.push(FieldError::new(
                format!("{field}.member_id"),
                "only children can be confirmed as students",
            )),
            Some(m) if c.student_until < m.birth_date => errors.push(FieldError::new(
                format!("{field}.student_until"),
                "must not be before the birth date",
            )),
            Some(_) if c.student_until > latest_date() => errors.push(FieldError::new(
                format!("{field}.student_until"),
                "is too far in the future",
            )),
            Some(m) => m.student_until = Some(c.student_until),
        }
    }
    finish(errors)?;
    let valid_until = eligible_until(ctx, &members, decision.term_until)?;
    Ok(vec![FamilyEvent::StatusRenewed(StatusRenewed {
        decision,
        student_confirmations: confirmations.to_vec(),
        policy: ctx.policy.name.clone(),
        valid_until,
    })])
}

fn add_member(
    family: &Family,
    ctx: &DecideContext<'_>,
    member: &Member,
    decision: Option<&Decision>,
) -> Result<Vec<FamilyEvent>, DomainError> {
    not_revoked(family, "add a member to")?;
    let mut errors = Vec::new();
    let member = check_member(&mut errors, "member", member, ctx.today);
    let decision = decision.map(|d| check_decision(&mut errors, "decision", d, ctx.today));
    if family.members.len() >= MAX_MEMBERS {
        errors.push(FieldError::new(
            "member",
            format!("a family lists at most {MAX_MEMBERS} members"),
        ));
    }
    if family.member(member.member_id).is_some() {
        errors.push(FieldError::new("member.member_id", "already in the family"));
    }
    if let Some(twin) = family.members.iter().find(|m| same_person(m, &member)) {
        let _ = twin;
        errors.push(FieldError::new(
            "member",
            "this person is already a member of the family",
        ));
    }
    finish(errors)?;
    let mut members = family.members.clone();
    members.push(member.clone());
    let (valid_until, terminated) = recompute(family, &members, ctx);
    let mut events = vec![FamilyEvent::MemberAdded(MemberAdded {
        member,
        decision,
        policy: ctx.policy.name.clone(),
        valid_until,
    })];
    events.extend(terminated);
    Ok(events)
}

fn correct_member(
    family: &Family,
    ctx: &DecideContext<'_>,
    member_id: MemberId,
    changes: &MemberChanges,
) -> Result<Vec<FamilyEvent>, DomainError> {
    not_revoked(family, "correct a member of")?;
    let current = find_member(family, member_id)?;
    if changes.is_empty() {
        return Err(DomainError::field("", "no fields to change"));
    }
    let mut errors = Vec::new();
    // Validate the member as it would be after the change; field names are those of the body.
    let corrected = check_member(&mut errors, "", &changes.apply_to(current), ctx.today);
    let others: Vec<Member> = family
        .members
        .iter()
        .filter(|m| m.member_id != member_id)
        .cloned()
        .collect();
    if others.iter().any(|m| same_person(m, &corrected)) {
        errors.push(FieldError::new(
            "",
            "the corrected member would duplicate another member",
        ));
    }
    if corrected.relation != Relation::Parent
        && !others.iter().any(|m| m.relation == Relation::Parent)
    {
        errors.push(FieldError::new(
            "relation",
            "the family must keep at least one parent",
        ));
    }
    finish(errors)?;
    // Record the normalized values of the fields that were sent.
    let changes = MemberChanges {
        last_name: changes
            .last_name
            .as_ref()
            .map(|_| corrected.last_name.clone()),
        first_name: changes
            .first_name
            .as_ref()
            .map(|_| corrected.first_name.clone()),
        middle_name: changes
            .middle_name
            .as_ref()
            .map(|_| corrected.middle_name.clone()),
        ..changes.clone()
    };
    let mut members = others;
    members.push(corrected);
    let (valid_until, terminated) = recompute(family, &members, ctx);
    let mut events = vec![FamilyEvent::MemberDetailsCorrected(
        MemberDetailsCorrected {
            member_id,
            changes,
            policy: ctx.policy.name.clone(),
            valid_until,
        },
    )];
    events.extend(terminated);
    Ok(events)
}

/// After a change of members: the resulting `valid_until` to record, and a `StatusTerminated` when
/// the change takes an eligible active family below the minimum. `None` for an ended status.
fn recompute(
    family: &Family,
    members: &[Member],
    ctx: &DecideContext<'_>,
) -> (Option<NaiveDate>, Option<FamilyEvent>) {
    // Only a status that runs today has its validity derived again by a member change. An ended
    // one (terminated, or past its last day) needs a new decision, a renewal: a child born after
    // the status ended does not revive it silently.
    if family.status != Status::Active || family.valid_until < ctx.today {
        return (None, None);
    }
    let policy = ctx.policy;
    let eligible = |ms: &[Member]| policy.valid_until(ms, None).is_some_and(|v| v >= ctx.today);
    if eligible(&family.members) && !eligible(members) {
        let terminated = FamilyEvent::StatusTerminated(StatusTerminated {
            reason: TerminationReason::NotEnoughChildren,
            effective_date: ctx.today,
            counted_children: u32::try_from(policy.counted_on(members, ctx.today))
                .unwrap_or(u32::MAX),
            policy: policy.name.clone(),
        });
        return (None, Some(terminated));
    }
    (policy.valid_until(members, family.term_until), None)
}

/// The validity a (re)decision grants, or `NotEligible`.
fn eligible_until(
    ctx: &DecideContext<'_>,
    members: &[Member],
    cap: Option<NaiveDate>,
) -> Result<NaiveDate, DomainError> {
    let policy = ctx.policy;
    match policy.valid_until(members, None) {
        Some(until) if until >= ctx.today => Ok(policy.valid_until(members, cap).unwrap_or(until)),
        _ => Err(DomainError::NotEligible {
            counted: policy.counted_on(members, ctx.today),
            required: policy.min_children,
        }),
    }
}

/// The family, unless there is none or its personal data was erased (an erased family takes no
/// more commands).
fn existing(state: Option<&Family>) -> Result<&Family, DomainError> {
    let family = state.ok_or_else(|| DomainError::NotFound("no such family".into()))?;
    if family.erased_on.is_some() {
        return Err(DomainError::Conflict(
            "the personal data of this family was erased".into(),
        ));
    }
    Ok(family)
}

fn not_revoked(family: &Family, what: &str) -> Result<(), DomainError> {
    if family.status == Status::Revoked {
        return Err(DomainError::Conflict(format!(
            "cannot {what} a revoked status"
        )));
    }
    Ok(())
}

fn find_member(family: &Family, id: MemberId) -> Result<&Member, DomainError> {
    family
        .member(id)
        .ok_or_else(|| DomainError::NotFound("no such member in this family".into()))
}

fn is_known_certificate(family: &Family, id: CertificateId) -> bool {
    family.certificate_id == id || family.previous_certificate_ids.contains(&id)
}

fn finish(errors: Vec<FieldError>) -> Result<(), DomainError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DomainError::Validation(errors))
    }
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// A required free-text field: trimmed, not empty, not too long, no control characters.
fn text(errors: &mut Vec<FieldError>, field: &str, value: &str) -> String {
    check_text(errors, field, value, MAX_TEXT_CHARS)
}

fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) -> String {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if trimmed.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    } else if trimmed.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    trimmed.to_string()
}

fn earliest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN)
}

fn latest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2199, 12, 31).unwrap_or(NaiveDate::MAX)
}

/// Every date the registry keeps lies in 1900-01-01..=2199-12-31 (the HTTP layer refuses the
/// rest before it gets here; this holds for every other caller).
fn check_range(errors: &mut Vec<FieldError>, field: &str, date: NaiveDate) {
    if date < earliest_date() {
        errors.push(FieldError::new(field, "is too far in the past"));
    } else if date > latest_date() {
        errors.push(FieldError::new(field, "is too far in the future"));
    }
}

fn check_decision(
    errors: &mut Vec<FieldError>,
    prefix: &str,
    decision: &Decision,
    today: NaiveDate,
) -> Decision {
    let number = check_text(errors, &join(prefix, "number"), &decision.number, 64);
    if decision.date > today {
        errors.push(FieldError::new(
            join(prefix, "date"),
            "must not be in the future",
        ));
    }
    if decision.date < earliest_date() {
        errors.push(FieldError::new(
            join(prefix, "date"),
            "is too far in the past",
        ));
    }
    let office = decision
        .office
        .as_ref()
        .map(|o| text(errors, &join(prefix, "office"), o));
    if let Some(term) = decision.term_until {
        if term < today {
            errors.push(FieldError::new(
                join(prefix, "term_until"),
                "must not be in the past",
            ));
        } else {
            check_range(errors, &join(prefix, "term_until"), term);
        }
    }
    Decision {
        number,
        date: decision.date,
        office,
        term_until: decision.term_until,
    }
}

/// Validates one member and returns it normalized (names trimmed).
fn check_member(
    errors: &mut Vec<FieldError>,
    prefix: &str,
    member: &Member,
    today: NaiveDate,
) -> Member {
    let last_name = check_text(
        errors,
        &join(prefix, "last_name"),
        &member.last_name,
        MAX_NAME_CHARS,
    );
    let first_name = check_text(
        errors,
        &join(prefix, "first_name"),
        &member.first_name,
        MAX_NAME_CHARS,
    );
    let middle_name = member
        .middle_name
        .as_ref()
        .map(|m| check_text(errors, &join(prefix, "middle_name"), m, MAX_NAME_CHARS));
    if member.birth_date > today {
        errors.push(FieldError::new(
            join(prefix, "birth_date"),
            "must not be in the future",
        ));
    } else if member.birth_date < earliest_date() {
        errors.push(FieldError::new(
            join(prefix, "birth_date"),
            "is too far in the past",
        ));
    }
    if let Some(until) = member.student_until {
        if member.relation != Relation::Child {
            errors.push(FieldError::new(
                join(prefix, "student_until"),
                "only children can be confirmed as students",
            ));
        } else if until < member.birth_date {
            errors.push(FieldError::new(
                join(prefix, "student_until"),
                "must not be before the birth date",
            ));
        } else {
            check_range(errors, &join(prefix, "student_until"), until);
        }
    }
    if member.relation == Relation::Parent && member.care != Care::Family {
        errors.push(FieldError::new(
            join(prefix, "care"),
            "applies to children only",
        ));
    }
    let snils = member.snils.as_deref().and_then(|s| {
        crate::snils::normalize(s)
            .map_err(|why| errors.push(FieldError::new(join(prefix, "snils"), why)))
            .ok()
    });
    Member {
        member_id: member.member_id,
        last_name,
        first_name,
        middle_name,
        birth_date: member.birth_date,
        relation: member.relation,
        student_until: member.student_until,
        care: member.care,
        snils,
    }
}

fn same_person(a: &Member, b: &Member) -> bool {
    fn key(m: &Member) -> (String, String, String, NaiveDate) {
        (
            m.last_name.trim().to_lowercase(),
            m.first_name.trim().to_lowercase(),
            m.middle_name.as_deref().unwrap_or("").trim().to_lowercase(),
            m.birth_date,
        )
    }
    key(a) == key(b)
}

fn check_duplicates(errors: &mut Vec<FieldError>, members: &[Member], field: &str) {
    let mut ids = HashSet::new();
    for (j, m) in members.iter().enumerate() {
        if !ids.insert(m.member_id) {
            errors.push(FieldError::new(
                format!("{field}[{j}].member_id"),
                "duplicate member id",
            ));
        }
        if let Some(i) = members[..j].iter().position(|o| same_person(o, m)) {
            errors.push(FieldError::new(
                format!("{field}[{j}]"),
                format!("the same person is already listed as {field}[{i}]"),
            ));
        }
    }
}
