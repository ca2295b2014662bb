//! Amounts as callees say them: "1.2 million", "$1.5m", "900k", "six hundred grand", "three and a
//! half million", "nine hundred and twenty thousand", "a couple", and ranges ("somewhere from 800
//! to 900k", "between 1.1 and 1.3 million"). Our own code: word-number crates read number words
//! only, while callees mix digits, words, slang and shorthand in one phrase, which is the case here.

/// A quantity found in an answer: its value and, when a range was given, its ends (the value is
/// then the middle).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Amount {
    pub value: f64,
    pub range: Option<(f64, f64)>,
    /// Whether a magnitude was said ("million", "k", "grand"): without one, "1.3" in a talk about
    /// house prices is 1.3 million, which the caller decides.
    pub scaled: bool,
}

/// The first quantity in the text (with the range it starts, if any).
pub fn parse(text: &str) -> Option<Amount> {
    let tokens = tokens(text);
    let mut i = 0;
    while i < tokens.len() {
        if let Some((first, next)) = quantity(&tokens, i) {
            return Some(range_from(&tokens, first, next));
        }
        i += 1;
    }
    None
}

/// Lower-case words, with hyphens split ("twenty-five") and punctuation around words dropped; a
/// leading `$` and thousands separators go too. Spoken forms become written ones: "one point two
/// five" is 1.25, "a million two" is 1.2 million, "9/10" is 9.
fn tokens(text: &str) -> Vec<String> {
    let raw: Vec<String> = text
        .to_lowercase()
        .replace('-', " ")
        .split_whitespace()
        .map(|w| {
            let w = w
                .split_once('/')
                .map_or(w, |(a, b)| if b.chars().all(|c| c.is_ascii_digit()) { a } else { w });
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '.')
                .trim_end_matches('.')
                .replace(',', "")
        })
        .filter(|w| !w.is_empty())
        .collect();
    let digit = |w: &str| {
        number_word(w)
            .filter(|n| *n < 10.0)
            .map(|n| n as u8)
            .or_else(|| w.parse::<u8>().ok().filter(|n| *n < 10))
    };
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        // "one point two five" → "1.25"
        if raw.get(i + 1).is_some_and(|w| w == "point") {
            if let Some(whole) = number_word(&raw[i]).or_else(|| raw[i].parse().ok()) {
                let mut j = i + 2;
                let mut decimals = String::new();
                while let Some(d) = raw.get(j).and_then(|w| digit(w)) {
                    decimals.push(char::from(b'0' + d));
                    j += 1;
                }
                if !decimals.is_empty() {
                    out.push(format!("{whole}.{decimals}"));
                    i = j;
                    continue;
                }
            }
        }
        // "a million two" → "1.2 million" (only when nothing more of a number follows)
        if matches!(raw[i].as_str(), "a" | "one")
            && raw.get(i + 1).is_some_and(|w| w == "million")
            && raw.get(i + 2).and_then(|w| digit(w)).is_some_and(|d| d > 0)
            && raw
                .get(i + 3)
                .is_none_or(|w| number_word(w).is_none() && magnitude(w).is_none() && w != "hundred")
        {
            out.push(format!("1.{}", digit(&raw[i + 2]).unwrap_or(0)));
            out.push("million".into());
            i += 3;
            continue;
        }
        out.push(raw[i].clone());
        i += 1;
    }
    out
}

/// A number said as one word: "zero" to "nineteen", and the tens to "ninety".
pub(crate) fn number_word(word: &str) -> Option<f64> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    if let Some(i) = UNITS.iter().position(|u| *u == word) {
        return Some(i as f64);
    }
    TENS.iter().position(|t| *t == word).map(|i| (i as f64 + 2.0) * 10.0)
}

fn magnitude(word: &str) -> Option<f64> {
    match word {
        "thousand" | "grand" | "k" => Some(1e3),
        "million" | "millions" | "mil" | "m" => Some(1e6),
        "billion" | "billions" | "bn" | "b" => Some(1e9),
        _ => None,
    }
}

/// A number written with digits, maybe with a shorthand magnitude stuck on ("900k", "1.5m").
fn digits(token: &str) -> Option<(f64, Option<f64>)> {
    if let Ok(n) = token.parse::<f64>() {
        return n.is_finite().then_some((n, None));
    }
    let split = token.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, suffix) = token.split_at(split);
    let n = number.parse::<f64>().ok().filter(|n| n.is_finite())?;
    magnitude(suffix).map(|m| (n * m, Some(m)))
}

/// What one quantity reads as: its value, and the largest magnitude word it used.
#[derive(Debug, Clone, Copy)]
struct Quantity {
    value: f64,
    magnitude: Option<f64>,
}

/// The quantity starting at token `start`, and the index after it.
fn quantity(tokens: &[String], start: usize) -> Option<(Quantity, usize)> {
    let (mut total, mut current, mut seen) = (0.0, 0.0, false);
    let mut largest: Option<f64> = None;
    let mut last_magnitude = 1.0;
    let mut i = start;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        let next = tokens.get(i + 1).map(String::as_str);
        if let Some((n, m)) = digits(t) {
            if seen && current != 0.0 {
                break; // "3 4" is two numbers
            }
            match m {
                Some(m) => {
                    total += n;
                    largest = Some(largest.map_or(m, |l: f64| l.max(m)));
                    last_magnitude = m;
                }
                None => current += n,
            }
        } else if let Some(n) = number_word(t) {
            current += n;
        } else if t == "hundred" && seen {
            current = if current == 0.0 { 100.0 } else { current * 100.0 };
        } else if let Some(m) = magnitude(t).filter(|_| seen && t.len() > 1) {
            total += if current == 0.0 && total == 0.0 { 1.0 } else { current } * m;
            current = 0.0;
            largest = Some(largest.map_or(m, |l: f64| l.max(m)));
            last_magnitude = m;
        } else if (t == "a" || t == "an")
            && matches!(next, Some("hundred" | "thousand" | "million" | "billion" | "grand"))
        {
            current += 1.0;
        } else if (t == "a" || t == "an") && matches!(next, Some("couple" | "half" | "dozen")) {
            // the count follows
        } else if t == "couple" {
            current += 2.0;
        } else if t == "dozen" {
            current = if current == 0.0 { 12.0 } else { current * 12.0 };
        } else if t == "half" && seen {
            // "three and a half million": a half of what follows; "a million and a half": of what came.
            if current != 0.0 || magnitude_ahead(tokens, i + 1) {
                current += 0.5;
            } else {
                total += 0.5 * last_magnitude;
            }
        } else if t == "half" && matches!(next, Some("a")) && magnitude_ahead(tokens, i + 2) {
            current += 0.5; // "half a million"
            i += 1;
        } else if (t == "and" || t == "of")
            && seen
            && continues(tokens, i + 1)
            && next.is_none_or(|n| digits(n).is_none())
        {
            // "nine hundred and twenty", "a couple of hundred"; before digits, "and" joins two
            // quantities instead ("between 1.1 and 1.3 million").
        } else {
            break;
        }
        seen = true;
        i += 1;
    }
    let value = total + current;
    // A lone article or connector is no number.
    let read_something = tokens[start..i].iter().any(|t| {
        digits(t).is_some()
            || number_word(t).is_some()
            || matches!(t.as_str(), "couple" | "dozen" | "half" | "hundred")
            || (magnitude(t).is_some() && t.len() > 1)
    });
    (seen && read_something).then_some((
        Quantity {
            value,
            magnitude: largest,
        },
        i,
    ))
}

fn magnitude_ahead(tokens: &[String], i: usize) -> bool {
    tokens.get(i).is_some_and(|t| magnitude(t).is_some() && t.len() > 1)
}

/// Whether a connector at `i - 1` is followed by more of the number.
fn continues(tokens: &[String], i: usize) -> bool {
    tokens.get(i).is_some_and(|t| {
        digits(t).is_some()
            || number_word(t).is_some()
            || matches!(t.as_str(), "a" | "an" | "half" | "hundred" | "couple")
            || magnitude_ahead(tokens, i)
    })
}

/// The amount that starts with `first` (ending before token `next`): a range when "to", "or",
/// "and" (after "between") or "-" leads to a second quantity. A first end said without its
/// magnitude takes the second's ("800 to 900k" is 800,000 to 900,000).
fn range_from(tokens: &[String], first: Quantity, next: usize) -> Amount {
    let single = Amount {
        value: first.value,
        range: None,
        scaled: first.magnitude.is_some(),
    };
    let Some(joiner) = tokens.get(next).map(String::as_str) else {
        return single;
    };
    if !matches!(joiner, "to" | "or" | "and" | "through") {
        return single;
    }
    let Some((second, _)) = quantity(tokens, next + 1) else {
        return single;
    };
    let mut low = first.value;
    if let (None, Some(m)) = (first.magnitude, second.magnitude) {
        if low * m <= second.value * 10.0 {
            low *= m;
        }
    }
    let (low, high) = if low <= second.value {
        (low, second.value)
    } else {
        (second.value, low)
    };
    Amount {
        value: (low + high) / 2.0,
        range: Some((low, high)),
        scaled: first.magnitude.is_some() || second.magnitude.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Option<f64> {
        parse(text).map(|a| a.value)
    }

    #[test]
    fn amounts_as_callees_say_them() {
        let cases: [(&str, f64); 16] = [
            ("About 1.2 million", 1_200_000.0),
            ("six hundred grand", 600_000.0),
            ("$1.5m", 1_500_000.0),
            ("maybe 900k", 900_000.0),
            ("three and a half million", 3_500_000.0),
            ("nine hundred and twenty thousand", 920_000.0),
            ("a couple", 2.0),
            ("about $650,000", 650_000.0),
            ("We need three bedrooms", 3.0),
            ("twenty-five", 25.0),
            ("a million and a half", 1_500_000.0),
            ("half a million", 500_000.0),
            ("one point", 1.0),
            ("a hundred thousand", 100_000.0),
            ("1.5 mil", 1_500_000.0),
            ("a dozen", 12.0),
        ];
        for (text, expected) in cases {
            assert_eq!(value(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn ranges_give_the_middle_and_the_ends() {
        let a = parse("somewhere from 800 to 900k").unwrap();
        assert_eq!(a.range, Some((800_000.0, 900_000.0)));
        assert_eq!(a.value, 850_000.0);
        let b = parse("between 1.1 and 1.3 million").unwrap();
        assert_eq!(b.range, Some((1_100_000.0, 1_300_000.0)));
        let c = parse("600 or 700 thousand").unwrap();
        assert_eq!(c.range, Some((600_000.0, 700_000.0)));
        // Two unrelated numbers are not a range.
        assert_eq!(parse("3 bedrooms and a pool").unwrap().range, None);
    }

    #[test]
    fn no_number_is_none() {
        for text in ["I have a question", "no idea", "a bit", "and", "", "mmm"] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
