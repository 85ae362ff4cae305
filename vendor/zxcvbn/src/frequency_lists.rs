use std::collections::HashMap;

/// A word list, comma-separated in rank order as upstream has it, from
/// the deflated copy `build.rs` made of `data/`: the six lists are 0.79 MB
/// of text and 0.39 MB deflated.
fn inflate(deflated: &[u8]) -> String {
    let bytes = miniz_oxide::inflate::decompress_to_vec(deflated)
        .expect("build.rs deflated the word lists");
    String::from_utf8(bytes).expect("the word lists are UTF-8")
}

macro_rules! word_list {
    ($file:literal) => {
        inflate(include_bytes!(concat!(
            env!("OUT_DIR"),
            "/",
            $file,
            ".deflate"
        )))
    };
}

lazy_static! {
    static ref PASSWORDS: String = word_list!("passwords");
    static ref ENGLISH_WIKI: String = word_list!("english_wiki");
    static ref FEMALE_NAMES: String = word_list!("female_names");
    static ref SURNAMES: String = word_list!("surnames");
    static ref US_TV_AND_FILM: String = word_list!("us_tv_and_film");
    static ref MALE_NAMES: String = word_list!("male_names");
}

#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, Default)]
#[cfg_attr(feature = "ser", derive(serde::Deserialize, serde::Serialize))]
pub enum DictionaryType {
    #[default]
    Passwords,
    English,
    FemaleNames,
    MaleNames,
    Surnames,
    UsTvAndFilm,
    UserInputs,
}

/// A word list's ranks, by word. Hashed with foldhash rather than SipHash,
/// which was most of the time spent building the six maps: their keys are
/// the lists' own words, none of them chosen by whoever types a password.
pub(crate) type Ranks<'a> = HashMap<&'a str, usize, foldhash::fast::RandomState>;

/// Each word of a comma-separated `list` and its rank, from 1; a word
/// listed twice keeps its last rank, as upstream's `collect` did.
fn ranks(list: &'static str) -> Ranks<'static> {
    let words = list.bytes().filter(|&b| b == b',').count() + 1;
    let mut ranks = Ranks::with_capacity_and_hasher(words, Default::default());
    ranks.extend(list.split(',').enumerate().map(|(i, x)| (x, i + 1)));
    ranks
}

lazy_static! {
    pub(crate) static ref RANKED_DICTIONARIES: HashMap<DictionaryType, Ranks<'static>> = {
        let mut dicts = HashMap::with_capacity(6);
        dicts.insert(DictionaryType::Passwords, ranks(&PASSWORDS));
        dicts.insert(DictionaryType::English, ranks(&ENGLISH_WIKI));
        dicts.insert(DictionaryType::FemaleNames, ranks(&FEMALE_NAMES));
        dicts.insert(DictionaryType::MaleNames, ranks(&MALE_NAMES));
        dicts.insert(DictionaryType::Surnames, ranks(&SURNAMES));
        dicts.insert(DictionaryType::UsTvAndFilm, ranks(&US_TV_AND_FILM));
        dicts
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_word_lists_come_back_from_their_deflated_copies_as_they_were() {
        let lists: [(&str, &String); 6] = [
            (include_str!("../data/passwords.txt"), &super::PASSWORDS),
            (
                include_str!("../data/english_wiki.txt"),
                &super::ENGLISH_WIKI,
            ),
            (
                include_str!("../data/female_names.txt"),
                &super::FEMALE_NAMES,
            ),
            (include_str!("../data/surnames.txt"), &super::SURNAMES),
            (
                include_str!("../data/us_tv_and_film.txt"),
                &super::US_TV_AND_FILM,
            ),
            (include_str!("../data/male_names.txt"), &super::MALE_NAMES),
        ];
        for (text, inflated) in lists {
            assert_eq!(inflated.as_str(), text);
        }
        // Upstream's ranks: the most common password first.
        let ranks = &super::RANKED_DICTIONARIES[&super::DictionaryType::Passwords];
        assert_eq!((ranks["123456"], ranks["password"]), (1, 2));
        assert_eq!(super::PASSWORDS.split(',').count(), 30_000);
    }
}
