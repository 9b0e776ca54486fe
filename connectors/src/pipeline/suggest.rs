//! "Did you mean": the known key nearest a misspelt one.

/// The candidate nearest `word` by edit distance, if it is near enough to be a typo
/// (at most two edits, and fewer than half of `word`'s letters).
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let most = 2.min(word.chars().count().saturating_sub(1) / 2);
    candidates
        .iter()
        .map(|candidate| (distance(word, candidate), *candidate))
        .filter(|(edits, _)| *edits <= most.max(1))
        .min_by_key(|(edits, _)| *edits)
        .map(|(_, candidate)| candidate)
}

/// `" (did you mean `x`?)"`, or nothing.
pub(crate) fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    closest(word, candidates)
        .map(|candidate| format!(" (did you mean `{candidate}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, b_char) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(a_char != *b_char));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_nothing_for_other_words() {
        let keys = ["path", "table", "columns", "workers", "batch_size"];
        assert_eq!(closest("tabel", &keys), Some("table"));
        assert_eq!(closest("worker", &keys), Some("workers"));
        assert_eq!(closest("batchsize", &keys), Some("batch_size"));
        assert_eq!(closest("colour", &keys), None);
        assert_eq!(closest("x", &keys), None);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(did_you_mean("pth", &keys), " (did you mean `path`?)");
        assert_eq!(did_you_mean("zzz", &keys), "");
    }
}
