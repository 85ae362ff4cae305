//! The code that replaces upstream's six regular expressions, held to the
//! answers of the engines upstream uses (`fancy-regex` for the three with
//! backreferences, `regex` for the rest) on every string of a generated
//! corpus: all strings over a small alphabet up to a length, then random
//! ones with repeats, digits, separators, Unicode and newlines.

use super::{
    leftmost_repeat, maybe_date_with_separator, maybe_date_without_separator, recent_years,
    shortest_unit, Quantifier,
};

/// Every string of `alphabet` up to `longest` characters.
fn exhaustive(alphabet: &[&str], longest: usize) -> Vec<String> {
    let mut all = vec![String::new()];
    let mut last = vec![String::new()];
    for _ in 0..longest {
        last = last
            .iter()
            .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
            .collect();
        all.extend(last.iter().cloned());
    }
    all
}

/// Random strings (xorshift64*, so that a failure can be replayed).
fn random(pieces: &[&str], count: usize, longest: usize) -> Vec<String> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: usize| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    };
    (0..count)
        .map(|_| {
            let mut s = String::new();
            for _ in 0..next(longest + 1) {
                let piece = pieces[next(pieces.len())];
                // Now and then a piece repeated, the case the patterns are for.
                s.push_str(&piece.repeat(1 + next(2) * next(4)));
            }
            s
        })
        .collect()
}

fn corpus() -> Vec<String> {
    let mut all = exhaustive(&["a", "b", "\n", "é"], 7);
    all.extend(exhaustive(&["1", "9", "2", "0", "/", " "], 6));
    all.extend(random(
        &[
            "a", "b", "ab", "aab", "x", "1", "9", "0", "19", "20", "2", "12", "1991", "/", "\\",
            "_", ".", "-", " ", "\t", "\u{a0}", "\u{2003}", "\n", "\r", "é", "日本", "😀", "+",
        ],
        20_000,
        14,
    ));
    all
}

#[test]
fn repeats_are_found_where_fancy_regex_finds_them() {
    let greedy = fancy_regex::Regex::new(r"(.+)\1+").unwrap();
    let lazy = fancy_regex::Regex::new(r"(.+?)\1+").unwrap();
    let anchored = fancy_regex::Regex::new(r"^(.+?)\1+$").unwrap();
    for s in corpus() {
        for (regex, quantifier) in [(&greedy, Quantifier::Greedy), (&lazy, Quantifier::Lazy)] {
            let expected = regex
                .captures(&s)
                .unwrap()
                .map(|c| (c.get(0).unwrap().range(), c.get(1).unwrap().as_str()));
            assert_eq!(leftmost_repeat(&s, quantifier), expected, "{s:?}");
        }
        if let Some(whole) = greedy.find(&s).unwrap() {
            let repeated = whole.as_str();
            let expected = anchored.captures(repeated).unwrap().unwrap();
            assert_eq!(shortest_unit(repeated), &expected[1], "{repeated:?}");
        }
    }
}

#[test]
fn years_and_dates_are_found_where_regex_finds_them() {
    let year = regex::Regex::new(r"19[0-9]{2}|20[0-9]{2}").unwrap();
    let plain = regex::Regex::new(r"^[0-9]{4,8}$").unwrap();
    let separated =
        regex::Regex::new(r"^([0-9]{1,4})([\s/\\_.-])([0-9]{1,2})([\s/\\_.-])([0-9]{1,4})$")
            .unwrap();
    for s in corpus() {
        let expected: Vec<(usize, usize)> =
            year.find_iter(&s).map(|m| (m.start(), m.end())).collect();
        assert_eq!(recent_years(&s), expected, "{s:?}");
        assert_eq!(
            maybe_date_without_separator(&s),
            plain.is_match(&s),
            "{s:?}"
        );
        let expected = separated.captures(&s).map(|c| {
            let group = |k| c.get(k).unwrap().as_str();
            [group(1), group(2), group(3), group(4), group(5)]
        });
        assert_eq!(maybe_date_with_separator(&s), expected, "{s:?}");
    }
}

#[test]
fn the_corpus_reaches_every_outcome() {
    // A corpus that never matched would hold nothing to account.
    let all = corpus();
    let repeats = all
        .iter()
        .filter(|s| leftmost_repeat(s, Quantifier::Greedy).is_some())
        .count();
    let dates = all
        .iter()
        .filter(|s| maybe_date_with_separator(s).is_some())
        .count();
    let plain = all
        .iter()
        .filter(|s| maybe_date_without_separator(s))
        .count();
    let years = all.iter().filter(|s| !recent_years(s).is_empty()).count();
    for (what, count) in [
        ("repeats", repeats),
        ("dates", dates),
        ("plain dates", plain),
        ("years", years),
    ] {
        assert!(count > 100, "only {count} strings with {what}");
    }
}
