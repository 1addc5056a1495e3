//! The polyglot example's Rust activity: text statistics.

wit_bindgen::generate!({
    world: "caisson-examples:text-rs/text-rs",
    path: ["../../../wit/activity", "wit"],
    with: {
        "caisson:activity/types@0.1.0": caisson_guest::activity::bindings::caisson::activity::types,
        "caisson:activity/context@0.1.0": caisson_guest::activity::bindings::caisson::activity::context,
    },
    generate_all,
});

use caisson_guest::activity as act;

struct TextRs;

impl Guest for TextRs {
    fn word_stats(text: String) -> TextStats {
        let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty()).collect();
        let sentences = text.split(['.', '!', '?']).filter(|s| !s.trim().is_empty()).count() as u32;
        let longest_word = words.iter().copied().max_by_key(|w| w.chars().count()).unwrap_or_default().to_owned();
        act::log(&format!("{} words, {sentences} sentences (Rust)", words.len()));
        TextStats { words: words.len() as u32, sentences, chars: text.chars().count() as u32, longest_word }
    }
}

export!(TextRs);
