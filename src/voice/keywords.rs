//! Keywords after recognition: the script's names and terms ("Kiribilli", "Voxworks") spelled
//! as the script spells them when the transcript holds a near miss ("Kiribili", "vox works").
//! Speech servers that take a prompt get the keywords before recognition too; in-process Whisper
//! (ct2rs) has no prompt parameter, so this is how keywords reach every engine.
//!
//! Deliberately strict, since a wrong correction is worse than none: only keywords of five or
//! more letters are corrected, a near miss must start with the same letter and be within one edit
//! (two for eight letters or more) word by word, and words split or run together
//! ("kiri billi") must match the keyword's letters exactly.

/// The transcript with near misses of `keywords` replaced by the keywords' spelling.
pub fn spell(text: &str, keywords: &[String]) -> String {
    let mut words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    let mut keywords: Vec<Vec<&str>> = keywords
        .iter()
        .map(|k| k.split_whitespace().collect::<Vec<_>>())
        .filter(|k| !k.is_empty() && letters(&k.concat()).chars().count() >= 5)
        .collect();
    // Longer keywords first: "Ocean Street" before "Ocean".
    keywords.sort_by_key(|k| std::cmp::Reverse(k.concat().len()));
    let mut i = 0;
    while i < words.len() {
        let found = keywords.iter().find_map(|k| {
            let widths = [k.len(), k.len() + 1, k.len().saturating_sub(1)];
            widths
                .into_iter()
                .filter(|&w| w > 0 && i + w <= words.len())
                .find(|&w| matches(&words[i..i + w], k))
                .map(|w| (k, w))
        });
        match found {
            Some((k, w)) => {
                // Punctuation around the heard words stays ("kiribili?" → "Kiribilli?").
                let lead: String = words[i].chars().take_while(|c| !c.is_alphanumeric()).collect();
                let last = &words[i + w - 1];
                let tail: String = last
                    .chars()
                    .rev()
                    .take_while(|c| !c.is_alphanumeric())
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let replacement = format!("{lead}{}{tail}", k.join(" "));
                words.splice(i..i + w, [replacement]);
                i += 1;
            }
            None => i += 1,
        }
    }
    words.join(" ")
}

fn letters(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether heard words are the keyword: the same letters however split, or (word for word) a
/// near miss of each.
fn matches(heard: &[String], keyword: &[&str]) -> bool {
    let together = letters(&heard.concat());
    if together.is_empty() {
        return false;
    }
    if together == letters(&keyword.concat()) {
        return true;
    }
    heard.len() == keyword.len() && heard.iter().zip(keyword).all(|(h, k)| near(&letters(h), &letters(k)))
}

fn near(heard: &str, keyword: &str) -> bool {
    if heard == keyword {
        return true;
    }
    let n = keyword.chars().count();
    if n < 5 || heard.chars().next() != keyword.chars().next() {
        return false;
    }
    let allowed = if n >= 8 { 2 } else { 1 };
    strsim::levenshtein(heard, keyword) <= allowed
}

#[cfg(test)]
mod tests {
    use super::spell;

    fn kw(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn near_misses_take_the_keywords_spelling() {
        let k = kw(&["Kiribilli", "Voxworks", "Ocean Street"]);
        assert_eq!(spell("is it in kiribili?", &k), "is it in Kiribilli?");
        assert_eq!(spell("I saw it on vox works.", &k), "I saw it on Voxworks.");
        assert_eq!(spell("twelve ocean streat please", &k), "twelve Ocean Street please");
        assert_eq!(spell("Kiri billi, yes", &k), "Kiribilli, yes");
    }

    #[test]
    fn other_words_are_left_alone() {
        let k = kw(&["Kiribilli", "not interested", "later", "yes"]);
        // Different first letter, too far, too short to correct, or a keyword's part.
        assert_eq!(spell("maybe in Kirribilli", &k), "maybe in Kiribilli");
        assert_eq!(spell("I'm interested", &k), "I'm interested");
        assert_eq!(spell("call me layer", &k), "call me later");
        assert_eq!(spell("call me water", &k), "call me water");
        assert_eq!(spell("yeah", &k), "yeah");
        assert_eq!(spell("", &k), "");
        assert_eq!(spell("anything at all", &[]), "anything at all");
    }
}
