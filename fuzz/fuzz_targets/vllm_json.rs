//! Fuzz target: `vllm bench serve --save-result` JSON imports
//! (`coordinator/src/analysis/load/vllm_json*`) on arbitrary text, one object or several.
//!
//! Oracles besides "no panic": an imported result written back by `to_json_string`
//! imports again to the same result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use servescope_coordinator::analysis::load::vllm_json::{parse_all, parse_str, to_json_string};

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let _ = parse_all(text, "fuzz.json");
    if let Ok(r) = parse_str(text, "fuzz.json") {
        let out = to_json_string(&r).expect("an imported result serialises");
        let again = parse_str(&out, "fuzz.json").expect("what we write imports");
        assert_eq!(again, r, "{out}");
    }
});
