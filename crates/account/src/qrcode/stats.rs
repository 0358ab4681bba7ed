//! Per-scene daily counts: one counter item per account and China day,
//! `qrstat#<AppId>#<YYYY-MM-DD>`, with one number attribute per scene and kind (`s:<scene>`
//! new followers, `c:<scene>` scans by followers). Each counted event is one atomic `ADD`
//! ([`table::Table::add`]): no read first, no lost count under concurrent instances. Reading
//! ([`stats`]) is one read per day asked.
//!
//! Days are China days (UTC+8, no daylight saving), as WeChat's own statistics count them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use table::{Item, StoreError, Table};

use super::scene::Scene;
use crate::token::china_day;

/// How many days one [`stats`] call reads at most (one read each).
pub const MAX_STATS_DAYS: u32 = 90;

/// The counter item. Only its key matters to the kernel: it is written by [`Table::add`] and read
/// raw ([`Table::read`]), since its attributes are the scene names.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct QrStatDay {}

impl Item for QrStatDay {
    const PREFIX: &'static str = "qrstat#";
    fn ttl(&self) -> Option<i64> {
        // Kept: one small item a day is worth keeping as the account's history.
        None
    }
}

/// What a scene event counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanKind {
    /// A new follower who came through the code (`subscribe` with `EventKey` `qrscene_<scene>`).
    Subscribe,
    /// A follower scanned the code (`SCAN` with `EventKey` `<scene>`).
    Scan,
}

impl ScanKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Subscribe => "s:",
            Self::Scan => "c:",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Scan => "scan",
        }
    }

    /// The item attribute that counts `scene` as this kind.
    pub fn attribute(self, scene: &Scene) -> String {
        format!("{}{scene}", self.prefix())
    }
}

/// A day in China time (UTC+8), shown and stored as `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChinaDate {
    /// Days since 1970-01-01.
    days: i64,
}

impl ChinaDate {
    /// The China day of the instant `epoch_ms`.
    pub fn of_ms(epoch_ms: i64) -> Self {
        Self {
            days: china_day(epoch_ms),
        }
    }

    pub fn from_days(days: i64) -> Self {
        Self { days }
    }

    /// The day `n` days before this one.
    pub fn minus(self, n: i64) -> Self {
        Self {
            days: self.days - n,
        }
    }

    /// `YYYY-MM-DD`, checked.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '-');
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
        let date = Self::from_days(days_from_civil(y, m, d));
        (date.civil() == (y, m, d)).then_some(date)
    }

    /// (year, month, day), by Howard Hinnant's `civil_from_days`.
    fn civil(self) -> (i64, u32, u32) {
        let z = self.days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day)
    }
}

/// Days since 1970-01-01 of a (proleptic Gregorian) date: `days_from_civil`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for ChinaDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.civil();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl Serialize for ChinaDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChinaDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a YYYY-MM-DD date")))
    }
}

/// One scene's counts on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneCounts {
    /// New followers who came through the scene's code.
    pub subscribe: u64,
    /// Scans of the scene's code by followers.
    pub scan: u64,
}

/// One day's counts: `{"date": "2026-12-03", "scenes": {"poster-a": {"subscribe": 3, "scan": 5}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayStats {
    pub date: ChinaDate,
    pub scenes: BTreeMap<String, SceneCounts>,
}

/// Why [`stats`] could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("days must be 1 to {MAX_STATS_DAYS}, not {0}")]
    Days(u32),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The counter item's id: `<AppId>#<YYYY-MM-DD>`.
fn day_id(app_id: &str, date: ChinaDate) -> String {
    format!("{app_id}#{date}")
}

/// Count one `kind` event of `scene` on `date`: one atomic add.
pub async fn count(
    table: &impl Table,
    app_id: &str,
    date: ChinaDate,
    scene: &Scene,
    kind: ScanKind,
) -> Result<(), StoreError> {
    let counts = BTreeMap::from([(kind.attribute(scene), 1)]);
    table
        .add::<QrStatDay>(&day_id(app_id, date), counts)
        .await
        .map(drop)
}

/// The counts of the `days` days ending with `today`, newest first; a day with no counted
/// event has no scenes.
pub async fn stats(
    table: &impl Table,
    app_id: &str,
    days: u32,
    today: ChinaDate,
) -> Result<Vec<DayStats>, StatsError> {
    if !(1..=MAX_STATS_DAYS).contains(&days) {
        return Err(StatsError::Days(days));
    }
    let mut out = Vec::with_capacity(days as usize);
    for back in 0..i64::from(days) {
        let date = today.minus(back);
        let pk = table::key::<QrStatDay>(&day_id(app_id, date));
        let scenes = match table.read(&pk).await? {
            Some(item) => scenes(&pk, &item)?,
            None => BTreeMap::new(),
        };
        out.push(DayStats { date, scenes });
    }
    Ok(out)
}

/// The scenes of a stored counter item: its `s:` and `c:` attributes.
fn scenes(pk: &str, item: &Value) -> Result<BTreeMap<String, SceneCounts>, StoreError> {
    let Value::Object(attributes) = item else {
        return Err(StoreError::Corrupt(format!("{pk}: not an item")));
    };
    let mut scenes: BTreeMap<String, SceneCounts> = BTreeMap::new();
    for (name, value) in attributes {
        let (scene, subscribe) = match (name.strip_prefix("s:"), name.strip_prefix("c:")) {
            (Some(scene), _) => (scene, true),
            (_, Some(scene)) => (scene, false),
            _ => continue,
        };
        let n = value
            .as_u64()
            .ok_or_else(|| StoreError::Corrupt(format!("{pk}: {name} is not a count")))?;
        let counts = scenes.entry(scene.to_string()).or_default();
        match subscribe {
            true => counts.subscribe = n,
            false => counts.scan = n,
        }
    }
    Ok(scenes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_days_turn_at_midnight_utc_plus_8() {
        // 2026-12-02T16:00:00Z is midnight of 2026-12-03 in China.
        let midnight_ms = 20_790 * 86_400_000 - 8 * 3_600_000;
        assert_eq!(ChinaDate::of_ms(midnight_ms).to_string(), "2026-12-03");
        assert_eq!(ChinaDate::of_ms(midnight_ms - 1).to_string(), "2026-12-02");
        assert_eq!(ChinaDate::from_days(0).to_string(), "1970-01-01");
        assert_eq!(ChinaDate::from_days(11_016).to_string(), "2000-02-29");
        assert_eq!(
            ChinaDate::from_days(20_790).minus(3).to_string(),
            "2026-11-30"
        );
    }

    #[test]
    fn dates_parse_back_and_nonsense_is_refused() {
        for days in [-1, 0, 11_016, 20_790, 60_000] {
            let date = ChinaDate::from_days(days);
            assert_eq!(ChinaDate::parse(&date.to_string()), Some(date));
        }
        for bad in ["2026-02-30", "2026-13-01", "26-01-01", "2026-1-01", "x", ""] {
            assert_eq!(ChinaDate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_stored_item_reads_as_scenes() {
        let item = serde_json::json!({"pk": "qrstat#wx#2026-12-03", "s:poster-a": 3,
            "c:poster-a": 5, "c:s:odd": 1});
        let read = scenes("k", &item).unwrap();
        assert_eq!(
            read["poster-a"],
            SceneCounts {
                subscribe: 3,
                scan: 5
            }
        );
        // A scene may itself start with `s:`: the kind is the first prefix only.
        assert_eq!(
            read["s:odd"],
            SceneCounts {
                subscribe: 0,
                scan: 1
            }
        );
        assert!(scenes("k", &serde_json::json!({"s:a": "x"})).is_err());
    }

    #[test]
    fn the_answer_is_shaped_as_the_api_serves_it() {
        let day = DayStats {
            date: ChinaDate::from_days(20_790),
            scenes: BTreeMap::from([(
                "poster-a".into(),
                SceneCounts {
                    subscribe: 3,
                    scan: 5,
                },
            )]),
        };
        assert_eq!(
            serde_json::to_value(&day).unwrap(),
            serde_json::json!({"date": "2026-12-03",
                "scenes": {"poster-a": {"subscribe": 3, "scan": 5}}})
        );
    }
}
