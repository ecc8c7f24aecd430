//! Every `vllm bench serve` result in the bench-results fixture directory beside the
//! checkout (skipped when absent) imports, re-exports losslessly, and the rayoss251-x4
//! client parts show what averaging p99s across parts (the all-parts files) does
//! compared with pooling.

use std::path::{Path, PathBuf};

use serde_json::Value;
use servescope_coordinator::analysis::load::vllm_json::{
    compare_parts, import_dir, import_file, parse_str, to_json_string, Metric, Provenance,
    VllmBenchResult,
};

fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/vllm-bench-results"
    ));
    if dir.is_dir() {
        Some(dir.to_path_buf())
    } else {
        println!("skipping: ../shared/fixtures not found");
        None
    }
}

#[test]
fn every_fixture_imports_and_round_trips() {
    let Some(dir) = fixtures() else { return };
    let all = import_dir(&dir).unwrap();
    assert!(all.len() >= 39, "found {} fixtures", all.len());
    for (path, r) in &all {
        let original: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let text = to_json_string(r).unwrap();
        let exported: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(original, exported, "{}", path.display());
        let again = parse_str(&text, "re-export").unwrap();
        assert_eq!(&again, r, "{}", path.display());

        let f = r.failures();
        let prov = r.provenance(Some(path));
        let rel = path.strip_prefix(&dir).unwrap().display().to_string();
        println!(
            "{rel}: completed {}/{} failed {} ({:.1} %){} provenance {}",
            f.completed.unwrap(),
            f.num_prompts.unwrap(),
            f.failed.unwrap(),
            100.0 * f.failure_rate.unwrap(),
            if f.silent { " [no `failed` key]" } else { "" },
            match &prov {
                Provenance::PerClient => "per-client".to_string(),
                Provenance::AveragedAggregate { reasons } =>
                    format!("averaged aggregate ({})", reasons.len()),
            }
        );
        if rel.contains("all-parts") {
            let Provenance::AveragedAggregate { reasons } = &prov else {
                panic!("{rel} not detected as aggregate")
            };
            // Detected from content alone, not only from the directory name.
            assert!(reasons.len() >= 2, "{rel}: {reasons:?}");
            assert_eq!(r.provenance(None), prov_without_path(&prov));
        } else {
            assert_eq!(prov, Provenance::PerClient, "{rel}");
        }
        if rel.starts_with("rayoss251-x4") {
            assert!(f.silent && f.failed.unwrap() > 0, "{rel}");
        } else {
            assert_eq!((f.failed_key, f.failed), (Some(0), Some(0)), "{rel}");
        }
    }
}

fn prov_without_path(p: &Provenance) -> Provenance {
    match p {
        Provenance::PerClient => Provenance::PerClient,
        Provenance::AveragedAggregate { reasons } => Provenance::AveragedAggregate {
            reasons: reasons
                .iter()
                .filter(|r| !r.contains("all-parts"))
                .cloned()
                .collect(),
        },
    }
}

#[test]
fn rayoss251_x4_pooled_vs_averaged_p99() {
    let Some(dir) = fixtures() else { return };
    let base = dir.join("rayoss251-x4");
    for conc in [4, 8, 16, 32, 48, 64, 128] {
        let name = format!("conc{conc}.json");
        let all = import_file(&base.join("all-parts").join(&name)).unwrap();
        let parts: Vec<(String, VllmBenchResult)> = (1..=4)
            .map(|k| {
                let p = base.join(format!("part{k}")).join(&name);
                (p.display().to_string(), import_file(&p).unwrap())
            })
            .collect();
        let refs: Vec<(&str, &VllmBenchResult)> =
            parts.iter().map(|(n, r)| (n.as_str(), r)).collect();

        // The aggregate sums counts…
        let sum = |f: &dyn Fn(&VllmBenchResult) -> u64| refs.iter().map(|(_, r)| f(r)).sum::<u64>();
        assert_eq!(
            all.completed.value(),
            Some(sum(&|r| r.completed.value().unwrap()))
        );
        assert_eq!(
            all.num_prompts.value(),
            Some(sum(&|r| r.num_prompts.value().unwrap()))
        );

        // …sums throughputs, although the clients ran side by side for about the
        // longest part's duration.
        let tokens = sum(&|r| r.total_output_tokens.value().unwrap()) as f64;
        let longest = refs
            .iter()
            .map(|(_, r)| r.duration.value().unwrap())
            .fold(0.0, f64::max);
        let summed = all.output_throughput.value().unwrap();
        println!(
            "rayoss251-x4 conc{conc}: output tok/s summed over parts {summed:.1} vs pooled (tokens / longest part) {:.1}",
            tokens / longest
        );
        assert!(tokens / longest <= summed * 1.000_001);

        let cmp = compare_parts(&refs, Some(&all), 99.0).unwrap();
        // No --save-detailed arrays in these files: exact pooling is impossible.
        assert!(cmp.pooled_unavailable.is_some());
        println!("rayoss251-x4 conc{conc}:");
        for m in &cmp.metrics {
            let averaged = m.averaged.unwrap();
            let file = m.all_parts_file.unwrap();
            // …and its p99 is the plain average of the parts' p99s.
            assert!((averaged - file).abs() <= 1e-9 * file, "{:?}", m.metric);
            let (lo, hi) = m.pooled_range.unwrap();
            assert!(lo <= averaged && averaged <= hi);
            println!(
                "  p99 {:<4} averaged (all-parts file) {file:9.2} ms | parts {} | pooled p99 lies in [{lo:.2}, {hi:.2}] (spread {:.2} ms); exact pooled p99: n/a (no --save-detailed arrays)",
                m.metric.name(),
                m.parts
                    .iter()
                    .map(|v| format!("{:.2}", v.unwrap()))
                    .collect::<Vec<_>>()
                    .join(" "),
                hi - lo,
            );
            if m.metric == Metric::Ttft {
                let pooled_mean = m.pooled_mean.unwrap();
                let avg_mean = all.mean_ttft_ms.value().unwrap();
                println!(
                    "  mean ttft: pooled (weighted by completed) {pooled_mean:.2} ms vs averaged {avg_mean:.2} ms"
                );
            }
        }
    }
}
