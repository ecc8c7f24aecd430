use super::*;
use std::path::Path;

#[test]
fn exact_lengths_distinct_prompts() {
    let w = RandomWorkload {
        input_tokens: 100,
        output_tokens: 7,
        ignore_eos: true,
        seed: 1,
    };
    let a = w.prompt(0);
    let b = w.prompt(1);
    assert_eq!(a.text.split_whitespace().count(), 100);
    assert_eq!(a.input_tokens, 100);
    assert_ne!(a.text, b.text);
    assert_eq!(a.text, w.prompt(0).text, "deterministic");
    let other_seed = RandomWorkload { seed: 2, ..w };
    assert_ne!(other_seed.prompt(0).text[..40], a.text[..40]);
    let p = counting_probe(1, 8, 4);
    assert!(p.text.ends_with("1 2 3 4 5 6 7 8"));
    assert_eq!(p.expect_prefix.as_deref(), Some("9 10 11"));
}

#[test]
fn workload_random_reseeds_and_says_it_is_approximate() {
    let spec = RandomWorkload {
        input_tokens: 16,
        output_tokens: 3,
        ignore_eos: false,
        seed: 5,
    };
    let w = Workload::from(spec.clone());
    assert_eq!(w.prompt(3).text, spec.prompt(3).text, "same text as before");
    assert_eq!(w.prompt(3).max_tokens, 3);
    let r = w.reseeded(6);
    assert_eq!(r.seed(), 6);
    assert_ne!(r.prompt(3).text, w.prompt(3).text);
    assert!(!w.exact());
    let notes = w.notes();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("approximate"), "{notes:?}");
    assert_eq!(w.lengths(), (Some(16), Some(3)));
    assert_eq!(w.describe_json()["dataset"], "random");
    let p = w.clone().prepare(10, 5);
    for i in [0, 9, 10, 12, 14, 15, 100] {
        assert_eq!(
            p.prompt(i).text,
            w.prompt(i).text,
            "prepared or not, same prompt"
        );
    }
}

fn prefix_spec(seed: u64) -> PrefixSpec {
    PrefixSpec {
        num_prefixes: 3,
        prefix_len: 20,
        suffix_len: 10,
        output_tokens: 5,
        ignore_eos: true,
        seed,
        reuse_prefixes: false,
    }
}

/// Prefixes shared within a point (each used once per block of `num_prefixes`),
/// fresh suffixes, new prefixes for another seed unless reused.
fn check_prefixes(tok: TokenCounter) {
    let w = PrefixRepetition::new(prefix_spec(1), tok.clone());
    let prefixes: Vec<String> = (0..3).map(|k| w.prefix_text(k)).collect();
    assert_ne!(prefixes[0], prefixes[1]);
    assert_ne!(prefixes[1], prefixes[2]);
    let mut texts = std::collections::HashSet::new();
    for block in 0..5 {
        let mut used: Vec<usize> = (0..3).map(|j| w.prefix_of(block * 3 + j)).collect();
        used.sort_unstable();
        assert_eq!(used, vec![0, 1, 2], "each prefix once per block");
        for j in 0..3 {
            let i = block * 3 + j;
            let p = w.prompt(i);
            assert!(p.text.starts_with(&prefixes[w.prefix_of(i)]), "{}", p.text);
            assert_eq!(p.input_tokens, 30, "{}", p.text);
            assert_eq!(tok.count(&p.text, false), 30, "{}", p.text);
            assert_eq!(p.max_tokens, 5);
            assert!(p.ignore_eos);
            assert!(texts.insert(p.text), "suffixes differ");
        }
    }
    assert_eq!(w.prompt(7).text, w.prompt(7).text, "deterministic");
    let other = w.reseeded(2);
    for k in 0..3 {
        assert!(!prefixes.contains(&other.prefix_text(k)), "new prefixes");
    }
    let reused = PrefixRepetition::new(
        PrefixSpec {
            reuse_prefixes: true,
            ..prefix_spec(1)
        },
        tok,
    );
    let again = reused.reseeded(2);
    for (k, p) in prefixes.iter().enumerate() {
        assert_eq!(&again.prefix_text(k), p, "reused prefixes");
    }
    assert_ne!(again.prompt(0).text, reused.prompt(0).text, "new suffixes");
    let wl = Workload::PrefixRepetition(w);
    assert_eq!(wl.name(), "prefix-repetition");
    assert_eq!(wl.lengths(), (Some(30), Some(5)));
    let r = wl.reseeded(1);
    assert_eq!(
        r.prompt(4).text,
        wl.prompt(4).text,
        "same seed, same prompts"
    );
}

#[test]
fn prefix_repetition_words() {
    check_prefixes(TokenCounter::words());
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn conv(human: &str, gpt: &str) -> serde_json::Value {
    json!({"id": "x", "conversations": [
            {"from": "human", "value": human}, {"from": "gpt", "value": gpt}]})
}

fn words(n: usize) -> String {
    vec!["word"; n].join(" ")
}

#[test]
fn sharegpt_parses_filters_and_counts_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let entries = json!([
        conv(&words(10), &words(20)),
        // system turn first, answer later: first human turn, first gpt after it
        {"conversations": [{"from": "system", "value": "be nice"},
            {"from": "human", "value": words(12)}, {"from": "human", "value": "again"},
            {"from": "gpt", "value": words(8)}]},
        conv(&words(30), &words(6)),
        // malformed
        "not an object",
        {"id": "no conversations"},
        {"conversations": "not a list"},
        {"conversations": [{"from": "gpt", "value": "answer only"}]},
        {"conversations": [{"from": "human", "value": words(10)}]},
        {"conversations": [{"from": "human", "value": 42}, {"from": "gpt", "value": "x"}]},
        // filtered: prompt too short, answer too short, prompt too long, total too long
        conv("hi there", &words(10)),
        conv(&words(10), "ok"),
        conv(&words(1100), &words(10)),
        conv(&words(1000), &words(1100)),
    ]);
    let path = write(dir.path(), "sg.json", &entries.to_string());
    let tok = TokenCounter::words();
    let opts = ShareGptOptions {
        seed: 3,
        ignore_eos: true,
        ..Default::default()
    };
    let s = ShareGpt::load(&path, &tok, &opts).unwrap();
    assert_eq!(s.stats.entries, 13);
    assert_eq!(s.stats.malformed_total(), 6, "{:?}", s.stats);
    assert_eq!(s.stats.malformed["not an object"], 1);
    assert_eq!(s.stats.malformed["without a \"conversations\" list"], 2);
    assert_eq!(s.stats.malformed["without a human turn"], 1);
    assert_eq!(
        s.stats.malformed["without a gpt answer after the human turn"],
        1
    );
    assert_eq!(s.stats.malformed["with a non-string human \"value\""], 1);
    assert_eq!(s.stats.too_short, 2);
    assert_eq!(s.stats.too_long, 2);
    assert_eq!(s.len(), 3);
    let mut got: Vec<(u64, u32)> = (0..3)
        .map(|i| {
            let p = s.prompt(i);
            assert!(p.ignore_eos);
            assert_eq!(p.text.split_whitespace().count() as u64, p.input_tokens);
            (p.input_tokens, p.max_tokens)
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, vec![(10, 20), (12, 8), (30, 6)]);
    assert_eq!(s.prompt(3).text, s.prompt(0).text, "cycles");
    let note = s.note();
    assert!(note.contains("13 entries, 3 used"), "{note}");
    assert!(note.contains("6 malformed"), "{note}");
    assert!(note.contains("2 too short, 2 too long"), "{note}");
    let w = Workload::ShareGpt(s.clone());
    assert_eq!(w.notes().len(), 2, "dataset note and the approximation");
    let order = |w: &Workload| (0..3).map(|i| w.prompt(i).text).collect::<Vec<_>>();
    let other = (1..20)
        .map(|seed| order(&w.reseeded(seed)))
        .any(|o| o != order(&w));
    assert!(other, "reseeding reorders");

    // --output-len overrides the answer's length (and its minimum).
    let fixed = ShareGpt::load(
        &path,
        &tok,
        &ShareGptOptions {
            output_len: Some(50),
            limit: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(fixed.len(), 2, "limit");
    assert!(fixed.stats.not_examined > 0);
    assert!((0..4).all(|i| fixed.prompt(i).max_tokens == 50));
}

#[test]
fn sharegpt_errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenCounter::words();
    let o = ShareGptOptions::default();
    let missing = dir.path().join("nope.json");
    let e = ShareGpt::load(&missing, &tok, &o).unwrap_err();
    assert!(matches!(e, WorkloadError::Missing(_)));
    assert!(e.to_string().contains("nope.json: no such file"), "{e}");

    let bad = write(dir.path(), "bad.json", "[{\"conversations\": [}");
    let e = ShareGpt::load(&bad, &tok, &o).unwrap_err().to_string();
    assert!(
        e.contains("bad.json") && e.contains("not valid ShareGPT JSON"),
        "{e}"
    );
    assert!(e.contains("line 1"), "{e}");

    let obj = write(dir.path(), "obj.json", "{\"conversations\": []}");
    let e = ShareGpt::load(&obj, &tok, &o).unwrap_err().to_string();
    assert!(e.contains("obj.json") && e.contains("a JSON array"), "{e}");

    let junk = write(
        dir.path(),
        "junk.json",
        "[1, \"x\", {\"a\": 1}, {\"conversations\": []}]",
    );
    let e = ShareGpt::load(&junk, &tok, &o).unwrap_err();
    assert!(matches!(e, WorkloadError::Empty { .. }));
    let e = e.to_string();
    assert!(
        e.contains("junk.json") && e.contains("no usable conversation"),
        "{e}"
    );
    assert!(e.contains("4 entries, skipped 4 malformed"), "{e}");

    let short = write(
        dir.path(),
        "short.json",
        &json!([conv("a b", "c d e f")]).to_string(),
    );
    let e = ShareGpt::load(&short, &tok, &o).unwrap_err().to_string();
    assert!(e.contains("1 too short"), "{e}");
}

#[test]
fn tokenizer_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = TokenCounter::from_file(&dir.path().join("tokenizer.json")).unwrap_err();
    assert!(e.to_string().contains("tokenizer.json"), "{e}");
    let bad = write(dir.path(), "bad.json", "{\"model\": 1}");
    let e = TokenCounter::from_file(&bad).unwrap_err().to_string();
    assert!(e.contains("bad.json"), "{e}");
}

#[cfg(feature = "hf-tokenizer")]
mod hf {
    use super::*;
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    use tokenizers::{AddedToken, Tokenizer};

    /// A word-level tokenizer built here. Some of its tokens ("cat,", "a.b") are
    /// split by its own pre-tokenizer, so decode → re-encode drifts and the
    /// length must be fixed up as vLLM does.
    pub(super) fn word_level(dir: &Path) -> (TokenCounter, PathBuf) {
        let mut vocab: Vec<&str> = vec!["[UNK]", "[BOS]"];
        vocab.extend([
            "the", "cat", "dog", "sat", "on", "mat", "a", "b", ",", ".", "big", "red",
        ]);
        vocab.extend(["cat,", "dog.", "a.b", "red,"]);
        let model = WordLevel::builder()
            .vocab(
                vocab
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (w.to_string(), i as u32))
                    .collect(),
            )
            .unk_token("[UNK]".into())
            .build()
            .unwrap();
        let mut tok = Tokenizer::new(model);
        tok.with_pre_tokenizer(Some(Whitespace {}));
        tok.add_special_tokens(&[
            AddedToken::from("[UNK]", true),
            AddedToken::from("[BOS]", true),
        ]);
        let path = dir.join("tokenizer.json");
        tok.save(&path, false).unwrap();
        (TokenCounter::from_file(&path).unwrap(), path)
    }

    /// A byte-level BPE (GPT-2/Llama-3 style: byte alphabet, a few merges, the
    /// ByteLevel regex pre-tokenizer and decoder). Random ids decode to text that
    /// re-encodes differently (merges, broken UTF-8), as with real models.
    fn byte_level_bpe(dir: &Path) -> TokenCounter {
        use tokenizers::models::bpe::{Vocab, BPE};
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
        alphabet.sort_unstable();
        let mut tokens: Vec<String> = alphabet.iter().map(|c| c.to_string()).collect();
        let merges: Vec<(String, String)> = [
            ("Ġ", "t"),
            ("h", "e"),
            ("Ġt", "he"),
            ("i", "n"),
            ("Ġ", "a"),
            ("e", "r"),
            ("o", "n"),
            ("Ġ", "c"),
            ("a", "t"),
            ("Ġc", "at"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        tokens.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .unwrap();
        let mut tok = Tokenizer::new(bpe);
        tok.with_pre_tokenizer(Some(ByteLevel::default()));
        tok.with_decoder(Some(ByteLevel::default()));
        tok.add_special_tokens(&[AddedToken::from("<|begin_of_text|>", true)]);
        let path = dir.join("bpe.json");
        tok.save(&path, false).unwrap();
        TokenCounter::from_file(&path).unwrap()
    }

    #[test]
    fn byte_level_bpe_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let tok = byte_level_bpe(dir.path());
        assert_eq!(tok.count("the cat", false), 2, "merges apply");
        let (mut exact, mut total) = (0, 0);
        for n in [1u32, 16, 256, 1024] {
            let w = Workload::Random {
                spec: RandomWorkload {
                    input_tokens: n,
                    output_tokens: 1,
                    ignore_eos: false,
                    seed: 7,
                },
                tokenizer: tok.clone(),
            };
            for i in 0..25 {
                let p = w.prompt(i);
                assert!(!p.text.contains("<|begin_of_text|>"));
                // The count stored is always the count of the text sent.
                assert_eq!(p.input_tokens, tok.count(&p.text, false));
                total += 1;
                if p.input_tokens == u64::from(n) {
                    exact += 1;
                }
            }
        }
        println!("byte-level BPE: {exact}/{total} prompts of exact length");
        assert_eq!(exact, total, "{exact}/{total} exact");
        let mut spec = prefix_spec(3);
        spec.prefix_len = 64;
        spec.suffix_len = 32;
        let w = PrefixRepetition::new(spec, tok.clone());
        let mut exact = 0;
        for i in 0..30 {
            let p = w.prompt(i);
            assert!(p.text.starts_with(&w.prefix_text(w.prefix_of(i))));
            assert_eq!(p.input_tokens, tok.count(&p.text, false));
            if p.input_tokens == 96 {
                exact += 1;
            }
        }
        println!("byte-level BPE prefix-repetition: {exact}/30 prompts of exact length");
        assert_eq!(exact, 30, "{exact}/30 exact");
    }

    #[test]
    fn random_lengths_exact_with_a_real_tokenizer() {
        let dir = tempfile::tempdir().unwrap();
        let (tok, path) = word_level(dir.path());
        assert!(tok.is_exact());
        assert_eq!(tok.path(), Some(path.as_path()));
        let mut drift = 0;
        for n in [1u32, 2, 7, 100, 1000] {
            let spec = RandomWorkload {
                input_tokens: n,
                output_tokens: 9,
                ignore_eos: true,
                seed: u64::from(n),
            };
            let w = Workload::Random {
                spec: spec.clone(),
                tokenizer: tok.clone(),
            };
            assert!(w.exact());
            assert!(w.notes().is_empty(), "no approximation note");
            for i in 0..20 {
                let p = w.prompt(i);
                assert_eq!(p.input_tokens, u64::from(n), "{}", p.text);
                assert_eq!(tok.count(&p.text, false), u64::from(n), "{}", p.text);
                assert!(!p.text.contains("[UNK]") && !p.text.contains("[BOS]"));
                assert_eq!(p.max_tokens, 9);
                let raw = tok.decode(&tok.random_ids(
                    &mut crate::schedule::Rng::new(random::index_seed(spec.seed, i)),
                    n as usize,
                ));
                if tok.count(&raw, false) != u64::from(n) {
                    drift += 1;
                }
            }
            assert_ne!(w.prompt(0).text, w.prompt(1).text);
        }
        assert!(drift > 0, "the test tokenizer does drift");
    }

    #[test]
    fn prefix_repetition_exact_with_a_real_tokenizer() {
        let dir = tempfile::tempdir().unwrap();
        check_prefixes(word_level(dir.path()).0);
    }

    #[test]
    fn sharegpt_counts_with_the_tokenizer() {
        let dir = tempfile::tempdir().unwrap();
        let (tok, _) = word_level(dir.path());
        // "cat, dog." is 4 tokens for the tokenizer, 2 words.
        let body = json!([conv("the cat, dog. sat on the mat", "the big red dog sat")]);
        let path = write(dir.path(), "sg.json", &body.to_string());
        let s = ShareGpt::load(&path, &tok, &ShareGptOptions::default()).unwrap();
        let p = s.prompt(0);
        assert_eq!(p.input_tokens, 9);
        assert_eq!(p.max_tokens, 5);
        assert!(s.note().contains("tokenizer.json"), "{}", s.note());
        assert!(Workload::ShareGpt(s).exact());
    }
}
