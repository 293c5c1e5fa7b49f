use crate::member::{Member, Relation};
use chrono::{Datelike, Days, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The eligibility rules as a named, versioned value (DESIGN.md §2). The name is recorded in every
/// event that derives a validity date, so a later policy never rewrites history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Policy {
    pub name: String,
    /// Counted children needed for the status.
    pub min_children: u32,
    /// A child counts until this age (the day before the birthday on which it is reached).
    pub age_limit: u32,
    /// A child with a confirmed full-time study (`student_until`) counts until this age.
    pub student_age_limit: u32,
}

/// The policy name is not one of the presets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {0:?}; known: federal-2024, moscow-2005")]
pub struct UnknownPolicy(pub String);

impl Default for Policy {
    fn default() -> Self {
        Self::federal_2024()
    }
}

impl Policy {
    /// The presets' names, in the order of [`Policy::presets`].
    pub const PRESET_NAMES: [&'static str; 2] = ["federal-2024", "moscow-2005"];

    /// Presidential Decree No. 63 of 23.01.2024: children count until 18, full-time students until
    /// 23. A student confirmation covers the gap between school and university in the same year,
    /// because it counts the child continuously from the age limit through `student_until`.
    pub fn federal_2024() -> Self {
        Self {
            name: "federal-2024".into(),
            min_children: 3,
            age_limit: 18,
            student_age_limit: 23,
        }
    }

    /// The older wording of Moscow city law No. 60: children until 16, pupils until 18.
    pub fn moscow_2005() -> Self {
        Self {
            name: "moscow-2005".into(),
            min_children: 3,
            age_limit: 16,
            student_age_limit: 18,
        }
    }

    pub fn presets() -> [Policy; 2] {
        [Self::federal_2024(), Self::moscow_2005()]
    }

    pub fn by_name(name: &str) -> Result<Self, UnknownPolicy> {
        Self::presets()
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| UnknownPolicy(name.to_string()))
    }

    /// The last day on which this member counts, or `None` if the member never counts (a parent,
    /// a child not in the family's care).
    pub fn counted_until(&self, member: &Member) -> Option<NaiveDate> {
        if member.relation != Relation::Child || !member.care.is_family() {
            return None;
        }
        let by_age = day_before(add_years(member.birth_date, self.age_limit));
        let by_study = member.student_until.map(|until| {
            until.min(day_before(add_years(
                member.birth_date,
                self.student_age_limit,
            )))
        });
        Some(match by_study {
            Some(study) => by_age.max(study),
            None => by_age,
        })
    }

    /// Children counted on `day`.
    pub fn counted_on(&self, members: &[Member], day: NaiveDate) -> usize {
        members
            .iter()
            .filter(|m| m.birth_date <= day)
            .filter(|m| self.counted_until(m).is_some_and(|until| until >= day))
            .count()
    }

    /// The last calendar day on which at least `min_children` children still count (members are
    /// all born already, so the count only falls from here on), capped by the decision's term.
    /// `None` when fewer than `min_children` children ever count.
    pub fn valid_until(&self, members: &[Member], cap: Option<NaiveDate>) -> Option<NaiveDate> {
        let mut ends: Vec<NaiveDate> = members
            .iter()
            .filter_map(|m| self.counted_until(m))
            .collect();
        let k = usize::try_from(self.min_children).unwrap_or(usize::MAX);
        if k == 0 || ends.len() < k {
            return None;
        }
        ends.sort_unstable_by(|a, b| b.cmp(a));
        let until = ends[k - 1];
        Some(match cap {
            Some(cap) => until.min(cap),
            None => until,
        })
    }
}

/// The date `years` after `date`. A 29 February date lands on 28 February in a common year: the
/// term ends on the last day of the month, as Russian civil law counts terms.
pub fn add_years(date: NaiveDate, years: u32) -> NaiveDate {
    let year = date
        .year()
        .saturating_add(i32::try_from(years).unwrap_or(i32::MAX));
    NaiveDate::from_ymd_opt(year, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, date.month(), 28))
        .unwrap_or(NaiveDate::MAX)
}

fn day_before(date: NaiveDate) -> NaiveDate {
    date.checked_sub_days(Days::new(1)).unwrap_or(date)
}

#[cfg(test)]
mod tests {
    use super::Policy;

    #[test]
    fn the_listed_preset_names_are_the_presets() {
        let names: Vec<String> = Policy::presets().into_iter().map(|p| p.name).collect();
        assert_eq!(names, Policy::PRESET_NAMES);
    }
}
