//! The eligibility rules as data (DESIGN.md §2, docs/eligibility.md): which children count, until
//! when, and which counted child's end ends the status. A preset is named after its legal source
//! and date and has the day it takes effect; a [`PolicyBook`] picks the preset in force on a
//! decision's date. Events record the preset's name, so a later rule never rewrites history.

use crate::member::{Care, Member, Relation};
use chrono::{Datelike, Days, NaiveDate};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which counted child's last counted day is the status's last day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndsWith {
    /// The youngest child (Moscow law No. 60: «до достижения младшим из них возраста 16 лет»).
    /// The older children count towards the minimum at any age.
    Youngest,
    /// The eldest child (a literal reading of Decree No. 63's «до достижения старшим ребенком»).
    /// The others count towards the minimum at any age.
    Eldest,
    /// The last day on which at least `min_children` children still count: the day "the eldest
    /// of the three youngest" stops counting (Mintrud order No. 164н).
    KthYoungest,
}

/// Who may count longer while studying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Study {
    /// A child with a confirmed study (`student_until`) counts while studying, until this age.
    pub age_limit: u32,
    /// What the officer checks before recording `student_until` (Russian, as in the act).
    pub confirmed_by: String,
}

/// The eligibility rules as a named, versioned value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Policy {
    pub name: String,
    /// The act and article it implements, in Russian.
    pub source: String,
    /// The first decision date it applies to.
    pub effective_from: NaiveDate,
    /// Children needed for the status.
    pub min_children: u32,
    pub ends_with: EndsWith,
    /// A child counts until this age (the day before the birthday on which it is reached).
    pub age_limit: u32,
    /// A longer limit while studying, if any.
    pub study: Option<Study>,
    /// Children in these situations are listed but never counted.
    pub not_counted: Vec<Care>,
}

/// The policy name is not one of the presets or books.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {0:?}; known: moscow, federal, moscow-2008, federal-2024")]
pub struct UnknownPolicy(pub String);

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

impl Default for Policy {
    fn default() -> Self {
        Self::moscow_2008()
    }
}

impl Policy {
    /// The presets a user can choose (books and single presets) for `--policy`.
    pub const PRESET_NAMES: [&'static str; 4] =
        ["moscow", "federal", "moscow-2008", "federal-2024"];

    /// Moscow city law No. 60 of 23.11.2005, art. 2 part 1, in the wording in force from
    /// 01.07.2008 (no later change of it was found; docs/eligibility.md): three or more children
    /// «до достижения младшим из них возраста 16 лет, а обучающимся в образовательном учреждении,
    /// реализующем общеобразовательные программы, — 18 лет»; children in full state care and
    /// children whose parents are deprived of or restricted in parental rights are not counted.
    pub fn moscow_2008() -> Self {
        Self {
            name: "moscow-2008".into(),
            source:
                "Закон г. Москвы от 23.11.2005 № 60, ст. 2 ч. 1 (ред., действующая с 01.07.2008)"
                    .into(),
            effective_from: day(2008, 7, 1),
            min_children: 3,
            ends_with: EndsWith::Youngest,
            age_limit: 16,
            study: Some(Study {
                age_limit: 18,
                confirmed_by: "справка об обучении по общеобразовательной программе".into(),
            }),
            not_counted: vec![
                Care::StateCare,
                Care::ParentalRightsLost,
                Care::ParentalRightsRestricted,
            ],
        }
    }

    /// Presidential Decree No. 63 of 23.01.2024 with Mintrud order No. 164н of 02.04.2024: the
    /// support measures last until the eldest of the three youngest children reaches 18, or 23 in
    /// full-time study. A student confirmation covers the gap between school and university in
    /// the same year, because it counts the child continuously from the age limit through
    /// `student_until`.
    pub fn federal_2024() -> Self {
        Self {
            name: "federal-2024".into(),
            source: "Указ Президента РФ от 23.01.2024 № 63, п. 1–2; приказ Минтруда России от \
                     02.04.2024 № 164н, п. 1, 3, 4"
                .into(),
            effective_from: day(2024, 1, 23),
            min_children: 3,
            ends_with: EndsWith::KthYoungest,
            age_limit: 18,
            study: Some(Study {
                age_limit: 23,
                confirmed_by: "справка об обучении по очной форме в образовательной организации"
                    .into(),
            }),
            not_counted: vec![Care::StateCare, Care::ParentalRightsLost],
        }
    }

    /// The registry's first reading of law No. 60 (16, pupils 18, ended by the third-youngest
    /// child). Withdrawn: it ends a family of 15-, 10- and 5-year-olds ten years early. Kept so
    /// that certificates decided under it explain their recorded dates; never in force.
    pub fn moscow_2005() -> Self {
        Self {
            name: "moscow-2005".into(),
            source: "Закон г. Москвы от 23.11.2005 № 60 (прежнее прочтение реестра, отменено)"
                .into(),
            effective_from: NaiveDate::MAX,
            min_children: 3,
            ends_with: EndsWith::KthYoungest,
            age_limit: 16,
            study: Some(Study {
                age_limit: 18,
                confirmed_by: "справка об обучении".into(),
            }),
            not_counted: vec![Care::StateCare, Care::ParentalRightsLost],
        }
    }

    /// Every preset a recorded event may name.
    pub fn presets() -> [Policy; 3] {
        [
            Self::moscow_2008(),
            Self::federal_2024(),
            Self::moscow_2005(),
        ]
    }

    /// A preset by its recorded name (including withdrawn ones).
    pub fn by_name(name: &str) -> Result<Self, UnknownPolicy> {
        Self::presets()
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| UnknownPolicy(name.to_string()))
    }

    /// The last day on which this member counts, or `None` if the member never counts (a parent,
    /// a child in one of the `not_counted` situations).
    pub fn counted_until(&self, member: &Member) -> Option<NaiveDate> {
        if member.relation != Relation::Child || self.not_counted.contains(&member.care) {
            return None;
        }
        let by_age = day_before(add_years(member.birth_date, self.age_limit));
        let by_study = match (&self.study, member.student_until) {
            (Some(study), Some(until)) => {
                Some(until.min(day_before(add_years(member.birth_date, study.age_limit))))
            }
            _ => None,
        };
        Some(match by_study {
            Some(study) => by_age.max(study),
            None => by_age,
        })
    }

    /// Children that count towards the minimum on `day`. Under [`EndsWith::KthYoungest`], those
    /// of an age (or study) that counts; under the other shapes every child not excluded, as long
    /// as the deciding child still counts (else only those of an age that counts).
    pub fn counted_on(&self, members: &[Member], day: NaiveDate) -> usize {
        let by_age = members
            .iter()
            .filter(|m| m.birth_date <= day)
            .filter(|m| self.counted_until(m).is_some_and(|until| until >= day))
            .count();
        if self.ends_with == EndsWith::KthYoungest {
            return by_age;
        }
        match self.deciding_child(members) {
            Some((_, until)) if until >= day => self
                .eligible_children(members)
                .iter()
                .filter(|m| m.birth_date <= day)
                .count(),
            _ => by_age,
        }
    }

    /// Whether `member` is one of the children [`Policy::counted_on`] counts on `day` (the same
    /// rule, one member at a time: what a page marks «учитывается»).
    pub fn counts_on(&self, members: &[Member], member: &Member, day: NaiveDate) -> bool {
        if member.relation != Relation::Child
            || self.not_counted.contains(&member.care)
            || member.birth_date > day
        {
            return false;
        }
        let by_age = self.counted_until(member).is_some_and(|until| until >= day);
        if self.ends_with == EndsWith::KthYoungest {
            return by_age;
        }
        match self.deciding_child(members) {
            Some((_, until)) if until >= day => true,
            _ => by_age,
        }
    }

    /// Children that count towards the minimum at all (any age): not parents, not excluded.
    fn eligible_children<'a>(&self, members: &'a [Member]) -> Vec<&'a Member> {
        members
            .iter()
            .filter(|m| m.relation == Relation::Child && !self.not_counted.contains(&m.care))
            .collect()
    }

    /// The child whose end ends the status, with that end, before any term cap. `None` when the
    /// family never has enough children under this policy.
    pub fn deciding_child<'a>(&self, members: &'a [Member]) -> Option<(&'a Member, NaiveDate)> {
        let k = usize::try_from(self.min_children)
            .unwrap_or(usize::MAX)
            .max(1);
        let children = self.eligible_children(members);
        if children.len() < k {
            return None;
        }
        let end = |m: &&Member| self.counted_until(m).unwrap_or(NaiveDate::MIN);
        match self.ends_with {
            EndsWith::KthYoungest => {
                let mut ends: Vec<(&Member, NaiveDate)> =
                    children.iter().map(|m| (*m, end(m))).collect();
                ends.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.birth_date.cmp(&a.0.birth_date)));
                ends.get(k - 1).copied()
            }
            // Twins are equally youngest (or eldest): the status lasts while either counts.
            EndsWith::Youngest => {
                let born = children.iter().map(|m| m.birth_date).max()?;
                children
                    .iter()
                    .filter(|m| m.birth_date == born)
                    .map(|m| (*m, end(m)))
                    .max_by_key(|(_, e)| *e)
            }
            EndsWith::Eldest => {
                let born = children.iter().map(|m| m.birth_date).min()?;
                children
                    .iter()
                    .filter(|m| m.birth_date == born)
                    .map(|m| (*m, end(m)))
                    .max_by_key(|(_, e)| *e)
            }
        }
    }

    /// The last calendar day of the status, capped by the decision's term. Members are all born
    /// already. `None` when fewer than `min_children` children ever count.
    pub fn valid_until(&self, members: &[Member], cap: Option<NaiveDate>) -> Option<NaiveDate> {
        let (_, until) = self.deciding_child(members)?;
        Some(match cap {
            Some(cap) => until.min(cap),
            None => until,
        })
    }
}

/// The presets in force over time, for one jurisdiction: each decision is decided by the preset
/// in force on the decision's date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyBook {
    pub name: String,
    /// In order of `effective_from`.
    presets: Vec<Policy>,
    /// One preset for every date (chosen by name on the command line).
    pinned: bool,
}

/// No preset of the book is in force on a decision's date.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no eligibility rule of {book} is in force on {date} (the first takes effect on {first})")]
pub struct NoPolicyInForce {
    pub book: String,
    pub date: NaiveDate,
    pub first: NaiveDate,
}

impl From<Policy> for PolicyBook {
    fn from(policy: Policy) -> Self {
        Self::pinned(policy)
    }
}

impl Default for PolicyBook {
    fn default() -> Self {
        Self::moscow()
    }
}

impl PolicyBook {
    /// Moscow's rules over time: law No. 60 in its 2008 wording (the rule in force today).
    pub fn moscow() -> Self {
        Self::new("moscow", vec![Policy::moscow_2008()])
    }

    /// The federal rules over time: Decree No. 63 with order No. 164н.
    pub fn federal() -> Self {
        Self::new("federal", vec![Policy::federal_2024()])
    }

    /// A book of presets (sorted by `effective_from` here).
    pub fn new(name: &str, mut presets: Vec<Policy>) -> Self {
        presets.sort_by_key(|p| p.effective_from);
        Self {
            name: name.to_string(),
            presets,
            pinned: false,
        }
    }

    /// One preset for every decision date.
    pub fn pinned(policy: Policy) -> Self {
        Self {
            name: policy.name.clone(),
            presets: vec![policy],
            pinned: true,
        }
    }

    /// `moscow`, `federal`, or a preset's name (pinned).
    pub fn by_name(name: &str) -> Result<Self, UnknownPolicy> {
        match name {
            "moscow" => Ok(Self::moscow()),
            "federal" => Ok(Self::federal()),
            "moscow-2005" => Err(UnknownPolicy(name.to_string())),
            other => Policy::by_name(other).map(Self::pinned),
        }
    }

    pub fn presets(&self) -> &[Policy] {
        &self.presets
    }

    /// The preset deciding a decision dated `date`.
    pub fn in_force_on(&self, date: NaiveDate) -> Result<&Policy, NoPolicyInForce> {
        if self.pinned {
            if let Some(p) = self.presets.first() {
                return Ok(p);
            }
        }
        self.presets
            .iter()
            .rev()
            .find(|p| p.effective_from <= date)
            .ok_or_else(|| NoPolicyInForce {
                book: self.name.clone(),
                date,
                first: self
                    .presets
                    .first()
                    .map_or(NaiveDate::MAX, |p| p.effective_from),
            })
    }
}

/// The date `years` after `date`. A 29 February date lands on 28 February in a common year: the
/// term ends on the last day of the month, as Russian civil law counts terms (Civil Code art.
/// 192 p. 3).
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
    use super::{Policy, PolicyBook};

    #[test]
    fn every_name_offered_on_the_command_line_resolves() {
        for name in Policy::PRESET_NAMES {
            assert!(PolicyBook::by_name(name).is_ok(), "{name}");
        }
        assert!(PolicyBook::by_name("moscow-2005").is_err(), "withdrawn");
        assert!(
            Policy::by_name("moscow-2005").is_ok(),
            "still explains old events"
        );
    }

    fn child(born: (i32, u32, u32)) -> crate::Member {
        crate::Member {
            member_id: crate::MemberId(uuid::Uuid::nil()),
            last_name: "Орлов".into(),
            first_name: "Лев".into(),
            middle_name: None,
            birth_date: chrono::NaiveDate::from_ymd_opt(born.0, born.1, born.2).unwrap_or_default(),
            relation: crate::Relation::Child,
            student_until: None,
            care: crate::Care::default(),
            snils: None,
        }
    }

    #[test]
    fn given_moscows_rule_when_the_youngest_counts_then_an_older_child_counts_too() {
        let policy = Policy::moscow_2008();
        let members = [
            child((2009, 1, 1)),
            child((2015, 1, 1)),
            child((2020, 1, 1)),
        ];
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default();
        // 17 years old: past the age limit by itself, counted while the youngest counts.
        assert!(policy.counted_until(&members[0]).is_some_and(|u| u < day));
        assert!(policy.counts_on(&members, &members[0], day));
        let each = members
            .iter()
            .filter(|m| policy.counts_on(&members, m, day))
            .count();
        assert_eq!(each, policy.counted_on(&members, day));
    }
}
