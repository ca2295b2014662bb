//! Days and times as callees say them, read relative to the call's moment in the callee's zone:
//! "next Monday morning", "tomorrow arvo", "the 12th", "12 December", "in two weeks", "Monday
//! week", "half past three", "3pm", "quarter to five", "after five". Our own code: the date crates
//! on crates.io parse a date expression standing alone ("next friday 8pm"), while callees put it
//! inside a sentence, in spoken forms ("half past", "arvo", "the 12th") those crates do not know.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;

/// What an answer says about when: a day, a time of day, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct When {
    pub date: Option<NaiveDate>,
    pub time: Option<NaiveTime>,
}

/// Hour a part of the day stands for when no time is given.
const PARTS_OF_DAY: [(&str, u32); 9] = [
    ("early morning", 8),
    ("morning", 9),
    ("lunchtime", 12),
    ("lunch", 12),
    ("midday", 12),
    ("noon", 12),
    ("afternoon", 14),
    ("arvo", 14),
    ("evening", 18),
];

const WEEKDAYS: [(&str, Weekday); 14] = [
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("tues", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("thurs", Weekday::Thu),
    ("fri", Weekday::Fri),
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Lower-case words without punctuation (but keeping `:` inside times and `/` inside dates).
fn words(text: &str) -> Vec<String> {
    let lower: Vec<char> = text.to_lowercase().replace('’', "'").chars().collect();
    // Hyphens split words ("twenty-five") but not ISO dates (2026-12-24).
    let spaced: String = lower
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let digits_around =
                i > 0 && lower[i - 1].is_ascii_digit() && lower.get(i + 1).is_some_and(char::is_ascii_digit);
            if c == '-' && !digits_around {
                ' '
            } else {
                c
            }
        })
        .collect();
    spaced
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .trim_end_matches("'s")
                .to_owned()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// A count or clock number in digits or words ("4", "four", "a", "couple", "thirty").
fn small_number(word: &str) -> Option<u32> {
    if let Ok(n) = word.parse::<u32>() {
        return Some(n);
    }
    match word {
        "a" | "an" => Some(1),
        "couple" => Some(2),
        other => crate::conversation::amounts::number_word(other).map(|n| n as u32),
    }
}

/// "12th", "1st", "twelfth" → 12, 1, 12.
fn ordinal(word: &str) -> Option<u32> {
    const WORDS: [&str; 31] = [
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
        "twentieth",
        "twenty first",
        "twenty second",
        "twenty third",
        "twenty fourth",
        "twenty fifth",
        "twenty sixth",
        "twenty seventh",
        "twenty eighth",
        "twenty ninth",
        "thirtieth",
        "thirty first",
    ];
    if let Some(i) = WORDS.iter().position(|w| *w == word) {
        return Some(i as u32 + 1);
    }
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    match suffix {
        "st" | "nd" | "rd" | "th" => digits.parse().ok().filter(|d| (1..=31).contains(d)),
        _ => None,
    }
}

fn month(word: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| word.len() >= 3 && m.starts_with(word))
        .map(|i| i as u32 + 1)
}

/// The next `weekday` strictly after `today`.
fn coming(today: NaiveDate, weekday: Weekday) -> NaiveDate {
    let ahead = (weekday.num_days_from_monday() as i64 - today.weekday().num_days_from_monday() as i64).rem_euclid(7);
    today + Duration::days(if ahead == 0 { 7 } else { ahead })
}

/// The day of month `day` on or after `today` (this month, else the next month that has it).
fn day_of_month(today: NaiveDate, day: u32) -> Option<NaiveDate> {
    let mut year = today.year();
    let mut month = today.month();
    for _ in 0..13 {
        if let Some(d) = NaiveDate::from_ymd_opt(year, month, day).filter(|d| *d >= today) {
            return Some(d);
        }
        (year, month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    }
    None
}

/// A date in `month` on `day`, this year unless it has passed.
fn month_day(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    let this = NaiveDate::from_ymd_opt(today.year(), month, day)?;
    if this >= today {
        Some(this)
    } else {
        NaiveDate::from_ymd_opt(today.year() + 1, month, day)
    }
}

fn has(w: &[String], phrase: &str) -> bool {
    let p: Vec<&str> = phrase.split(' ').collect();
    w.windows(p.len()).any(|win| win.iter().zip(&p).all(|(a, b)| a == b))
}

fn position(w: &[String], word: &str) -> Option<usize> {
    w.iter().position(|x| x == word)
}

/// The day the words name, relative to `today`.
fn date(w: &[String], today: NaiveDate) -> Option<NaiveDate> {
    for t in w {
        if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
            return Some(d);
        }
        // Day first, as in Australia and most of the world: 12/12, 3/1/2027.
        let parts: Vec<&str> = t.split('/').collect();
        if parts.len() >= 2
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        {
            let (d, m) = (parts[0].parse().ok()?, parts[1].parse().ok()?);
            return match parts.get(2).and_then(|y| y.parse::<i32>().ok()) {
                Some(y) => NaiveDate::from_ymd_opt(if y < 100 { 2000 + y } else { y }, m, d),
                None => month_day(today, m, d),
            };
        }
    }
    // "anything but tomorrow", "not Monday": a day ruled out is not the day meant.
    let ruled_out: Vec<usize> = w
        .iter()
        .enumerate()
        .filter(|(i, _)| *i > 0 && matches!(w[i - 1].as_str(), "but" | "not"))
        .map(|(i, _)| i)
        .collect();
    if !ruled_out.is_empty() {
        let kept: Vec<String> = w
            .iter()
            .enumerate()
            .filter(|(i, _)| !ruled_out.contains(i))
            .map(|(_, x)| x.clone())
            .collect();
        if kept.len() < w.len() {
            if let Some(d) = date(&kept, today) {
                return Some(d);
            }
        }
    }
    // "a week from today", "two weeks from Monday", "a week from tomorrow".
    if let Some(i) = position(w, "from").filter(|i| *i >= 1) {
        let unit_days = match w[i - 1].as_str() {
            "day" | "days" => Some(1),
            "week" | "weeks" => Some(7),
            "fortnight" => Some(14),
            _ => None,
        };
        let count = i.checked_sub(2).and_then(|j| small_number(&w[j])).unwrap_or(1);
        if let (Some(days), Some(base)) = (
            unit_days,
            date(&w[i + 1..], today).or_else(|| has(&w[i + 1..], "now").then_some(today)),
        ) {
            return Some(base + Duration::days(i64::from(count) * days));
        }
    }
    if has(w, "day after tomorrow") {
        return Some(today + Duration::days(2));
    }
    if has(w, "today")
        || has(w, "tonight")
        || has(w, "this morning")
        || has(w, "this afternoon")
        || has(w, "this arvo")
        || has(w, "this evening")
    {
        return Some(today);
    }
    if has(w, "tomorrow") || has(w, "tmrw") {
        return Some(today + Duration::days(1));
    }
    // "in two weeks", "in 3 days", "in a fortnight", "a week from now".
    for (i, t) in w.iter().enumerate() {
        let unit_days = match t.as_str() {
            "day" | "days" => 1,
            "week" | "weeks" => 7,
            "fortnight" | "fortnights" => 14,
            "month" | "months" => 30,
            _ => continue,
        };
        let before = i.checked_sub(1).map(|j| w[j].as_str());
        let count = before.and_then(small_number);
        let said_in = i >= 2 && w[i - 2] == "in" || before == Some("in") || has(w, &format!("{t} from now"));
        if let (Some(n), true) = (count.or((before == Some("in")).then_some(1)), said_in) {
            if unit_days == 30 {
                return today.checked_add_months(chrono::Months::new(n));
            }
            return Some(today + Duration::days(i64::from(n) * unit_days));
        }
    }
    // "12 December", "December 12th", "the 3rd of March".
    for (i, t) in w.iter().enumerate() {
        if let Some(m) = month(t) {
            let around = [i.checked_sub(1), i.checked_sub(2), Some(i + 1)];
            for j in around.into_iter().flatten() {
                if let Some(d) = w
                    .get(j)
                    .and_then(|x| ordinal(x).or_else(|| x.parse().ok().filter(|d| (1..=31).contains(d))))
                {
                    return month_day(today, m, d);
                }
            }
        }
    }
    // "Tuesday the 8th": the day of the month says which Tuesday.
    let nth = w.iter().find_map(|t| ordinal(t)).and_then(|d| day_of_month(today, d));
    // Weekdays: "Monday", "next Monday" (the coming one), "Monday week" and "Friday next week"
    // (the one in the week after this one).
    for (name, weekday) in WEEKDAYS {
        if let Some(i) = position(w, name) {
            if let Some(d) = nth {
                return Some(d);
            }
            let d = coming(today, weekday);
            let week_later = w.get(i + 1).is_some_and(|n| n == "week");
            let of_next_week = w.get(i + 1).is_some_and(|n| n == "next") && w.get(i + 2).is_some_and(|n| n == "week");
            if of_next_week {
                let next_monday = coming(today, Weekday::Mon);
                return Some(next_monday + Duration::days(i64::from(weekday.num_days_from_monday())));
            }
            return Some(if week_later { d + Duration::days(7) } else { d });
        }
    }
    if has(w, "weekend") {
        return Some(coming(today - Duration::days(1), Weekday::Sat));
    }
    if has(w, "end of the month") || has(w, "end of month") {
        let first_next = day_of_month(today.with_day(1)? + Duration::days(32), 1)?;
        return Some(first_next.with_day(1)? - Duration::days(1));
    }
    // "the 12th", "on the 3rd".
    w.iter().find_map(|t| ordinal(t)).and_then(|d| day_of_month(today, d))
}

/// An hour said without am or pm: business hours, so 1 to 7 are afternoon.
fn business_hour(h: u32) -> u32 {
    if (1..=7).contains(&h) {
        h + 12
    } else {
        h
    }
}

fn hm(h: u32, m: u32) -> Option<NaiveTime> {
    NaiveTime::from_hms_opt(h, m, 0)
}

/// The time of day the words name.
fn time(w: &[String]) -> Option<NaiveTime> {
    let pm_after = |i: usize| -> Option<bool> {
        match w.get(i + 1).map(String::as_str) {
            Some("pm" | "p.m" | "tonight" | "evening") => Some(true),
            Some("am" | "a.m") => Some(false),
            Some("in") if w.get(i + 3).is_some_and(|x| x == "afternoon" || x == "evening") => Some(true),
            Some("in") if w.get(i + 3).is_some_and(|x| x == "morning") => Some(false),
            _ if has(w, "arvo") || has(w, "afternoon") || has(w, "evening") || has(w, "tonight") => Some(true),
            _ if has(w, "morning") => Some(false),
            _ => None,
        }
    };
    let with_meridiem = |h: u32, m: u32, pm: Option<bool>| -> Option<NaiveTime> {
        let h = match pm {
            Some(true) if h < 12 => h + 12,
            Some(false) if h == 12 => 0,
            Some(_) => h,
            None => business_hour(h),
        };
        hm(h, m)
    };
    for (i, t) in w.iter().enumerate() {
        // "3pm", "10am", "3:30pm", "15:30".
        let (body, suffix_pm) = match (t.strip_suffix("pm"), t.strip_suffix("am")) {
            (Some(b), _) if !b.is_empty() => (b, Some(true)),
            (_, Some(b)) if !b.is_empty() => (b, Some(false)),
            _ => (t.as_str(), None),
        };
        if let Some((h, m)) = body
            .split_once(':')
            .or_else(|| body.split_once('.').filter(|_| suffix_pm.is_some()))
        {
            if let (Ok(h), Ok(m)) = (h.parse::<u32>(), m.parse::<u32>()) {
                if h > 12 {
                    return hm(h, m);
                }
                return with_meridiem(h, m, suffix_pm.or_else(|| pm_after(i)));
            }
        }
        if suffix_pm.is_some() {
            if let Ok(h) = body.parse::<u32>() {
                return with_meridiem(h, 0, suffix_pm);
            }
        }
    }
    for (i, t) in w.iter().enumerate() {
        let next = w.get(i + 1).map(String::as_str);
        let after = w.get(i + 2).map(String::as_str);
        // "half past three", "quarter past 4", "quarter to five", "ten past two".
        if next == Some("past") || next == Some("to") {
            let minutes = match t.as_str() {
                "half" => Some(30),
                "quarter" => Some(15),
                other => small_number(other).filter(|m| *m < 60),
            };
            if let (Some(m), Some(h)) = (minutes, after.and_then(small_number).filter(|h| (1..=12).contains(h))) {
                let (h, m) = if next == Some("to") {
                    (if h == 1 { 12 } else { h - 1 }, 60 - m)
                } else {
                    (h, m)
                };
                return with_meridiem(h, m, pm_after(i + 2));
            }
        }
        // "three o'clock", "at 4", "around ten", "after five", "ten thirty", "4 30 pm".
        if let Some(h) = small_number(t).filter(|h| (1..=12).contains(h)) {
            let clock = matches!(next, Some("o'clock" | "oclock" | "o"));
            let lead = i.checked_sub(1).map(|j| w[j].as_str());
            let cue = matches!(
                lead,
                Some("at" | "around" | "about" | "after" | "before" | "by" | "from" | "like" | "say")
            );
            let minutes = next.and_then(|n| match n {
                "thirty" => Some(30),
                "fifteen" => Some(15),
                "forty" if after == Some("five") => Some(45),
                "forty five" | "45" => Some(45),
                "30" => Some(30),
                "15" => Some(15),
                _ => None,
            });
            let pm = pm_after(i + usize::from(minutes.is_some()));
            let meridiem_next = matches!(next, Some("pm" | "am"));
            if clock
                || cue
                || minutes.is_some()
                || meridiem_next
                || pm.is_some() && next.is_none_or(|n| small_number(n).is_none())
            {
                if lead == Some("in") || matches!(next, Some("day" | "days" | "week" | "weeks" | "minutes" | "hours")) {
                    continue;
                }
                let pm = if meridiem_next { Some(next == Some("pm")) } else { pm };
                return with_meridiem(h, minutes.unwrap_or(0), pm);
            }
        }
    }
    PARTS_OF_DAY
        .iter()
        .find(|(p, _)| has(w, p))
        .and_then(|(_, h)| hm(*h, 0))
        .or_else(|| has(w, "tonight").then(|| hm(19, 0)).flatten())
}

/// What the text says about when, relative to `now` (the call's moment in the callee's zone).
pub fn read(text: &str, now: DateTime<Tz>) -> When {
    let w = words(text);
    When {
        date: date(&w, now.date_naive()),
        time: time(&w),
    }
}

/// Whether the text names a day or a time of day (whatever the moment it is read against).
pub fn mentions(text: &str) -> bool {
    let w = words(text);
    date(&w, NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date")).is_some() || time(&w).is_some()
}

/// The moment the text names: its day (today when the time is still ahead, else tomorrow, when
/// only a time is said) at its time (9am when only a day is said).
pub fn moment(text: &str, now: DateTime<Tz>) -> Option<DateTime<Tz>> {
    let When { date, time } = read(text, now);
    let (date, time) = match (date, time) {
        (None, None) => return None,
        (Some(d), t) => (d, t.unwrap_or_else(|| NaiveTime::from_hms_opt(9, 0, 0).expect("9am"))),
        (None, Some(t)) if t > now.time() => (now.date_naive(), t),
        (None, Some(t)) => (now.date_naive() + Duration::days(1), t),
    };
    now.timezone().from_local_datetime(&date.and_time(time)).earliest()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thursday 26 November 2026, 10:00 in Sydney.
    fn now() -> DateTime<Tz> {
        chrono_tz::Australia::Sydney
            .with_ymd_and_hms(2026, 11, 26, 10, 0, 0)
            .unwrap()
    }

    fn day(text: &str) -> Option<String> {
        read(text, now()).date.map(|d| d.to_string())
    }

    fn at(text: &str) -> Option<String> {
        read(text, now()).time.map(|t| t.format("%H:%M").to_string())
    }

    #[test]
    fn days_as_callees_say_them() {
        let cases = [
            ("next Monday morning", "2026-11-30"),
            ("Monday works", "2026-11-30"),
            ("tomorrow arvo", "2026-11-27"),
            ("the day after tomorrow", "2026-11-28"),
            ("the 12th", "2026-12-12"),
            ("on the 3rd", "2026-12-03"),
            ("the 26th is fine", "2026-11-26"),
            ("in two weeks", "2026-12-10"),
            ("in a fortnight", "2026-12-10"),
            ("in 3 days", "2026-11-29"),
            ("Monday week", "2026-12-07"),
            ("12 December", "2026-12-12"),
            ("December the 12th", "2026-12-12"),
            ("the 3rd of March", "2027-03-03"),
            ("12/1", "2027-01-12"),
            ("2026-12-24", "2026-12-24"),
            ("this arvo", "2026-11-26"),
            ("thursday", "2026-12-03"),
            ("Friday next week", "2026-12-04"),
            ("Tuesday the 8th", "2026-12-08"),
            ("a week from today", "2026-12-03"),
            ("two weeks from Monday", "2026-12-14"),
            ("anything but tomorrow, Monday's good", "2026-11-30"),
            ("on the weekend", "2026-11-28"),
        ];
        for (text, want) in cases {
            assert_eq!(day(text).as_deref(), Some(want), "{text}");
        }
        assert_eq!(day("no idea, sorry"), None);
        assert_eq!(day("sometime next week"), None, "a week is not a day");
        assert_eq!(day("a couple of hundred"), None);
    }

    #[test]
    fn times_as_callees_say_them() {
        let cases = [
            ("3pm", "15:00"),
            ("at 3 pm", "15:00"),
            ("half past three", "15:30"),
            ("quarter past 4", "16:15"),
            ("quarter to five", "16:45"),
            ("10am", "10:00"),
            ("10:30am", "10:30"),
            ("15:45", "15:45"),
            ("three o'clock", "15:00"),
            ("after five", "17:00"),
            ("around ten", "10:00"),
            ("ten thirty in the morning", "10:30"),
            ("tomorrow arvo", "14:00"),
            ("next Monday morning", "09:00"),
            ("at 9 in the morning", "09:00"),
            ("8 tonight", "20:00"),
            ("midday", "12:00"),
            ("12pm", "12:00"),
        ];
        for (text, want) in cases {
            assert_eq!(at(text).as_deref(), Some(want), "{text}");
        }
        assert_eq!(at("in two weeks"), None);
        assert_eq!(at("the 12th"), None);
    }

    #[test]
    fn moments_fill_the_gaps() {
        let m = |t: &str| moment(t, now()).map(|m| m.to_rfc3339());
        assert_eq!(m("tomorrow at 3pm").as_deref(), Some("2026-11-27T15:00:00+11:00"));
        assert_eq!(m("Monday").as_deref(), Some("2026-11-30T09:00:00+11:00"));
        assert_eq!(m("3pm").as_deref(), Some("2026-11-26T15:00:00+11:00"));
        assert_eq!(m("8am").as_deref(), Some("2026-11-27T08:00:00+11:00"));
        assert_eq!(m("whenever"), None);
    }
}
