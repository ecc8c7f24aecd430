//! `servescope import PATH…`: reads `vllm bench serve` result JSON (files, or folders
//! searched recursively) and says what each holds — including what its summary
//! hides: silently failed requests, and aggregates that averaged percentiles
//! across client parts. Folders laid out as `partN/` beside `all-parts/` (one
//! client per part) are compared: averaged vs the range a pooled percentile lies in.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use servescope_coordinator::analysis::load::guidellm;
use servescope_coordinator::analysis::load::vllm_json::{
    compare_parts, import_dir, import_file_all, Metric, Provenance, VllmBenchResult,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Result files or folders
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Percentile for the parts comparison
    #[arg(long, default_value_t = 99.0)]
    pub percentile: f64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// Client parts of one result file name, and the all-parts aggregate if present.
type PartsGroup<'a> = (
    Vec<(String, &'a VllmBenchResult)>,
    Option<&'a VllmBenchResult>,
);

fn ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let mut all: Vec<(PathBuf, VllmBenchResult)> = Vec::new();
    // GuideLLM exports (`guidellm run --output kind=json`), recognised by content.
    let mut gl: Vec<(PathBuf, guidellm::GuidellmReport)> = Vec::new();
    for p in &a.paths {
        if p.is_file() && guidellm::is_guidellm_file(p) {
            gl.push((
                p.clone(),
                guidellm::import_file(p).with_context(|| format!("importing {}", p.display()))?,
            ));
        } else if p.is_dir() {
            all.extend(import_dir(p).with_context(|| format!("importing {}", p.display()))?);
        } else {
            for r in import_file_all(p).with_context(|| format!("importing {}", p.display()))? {
                all.push((p.clone(), r));
            }
        }
    }
    if all.is_empty() && gl.is_empty() {
        anyhow::bail!("no vllm bench result files found in {:?}", a.paths);
    }
    let mut out_json = Vec::new();
    if !a.json {
        println!(
            "{:<60} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9}  provenance",
            "file", "completed", "failed", "TTFT mean", "TTFT p99", "TPOT mean", "out tok/s"
        );
    }
    for (path, r) in &all {
        let f = r.failures();
        let prov = r.provenance(Some(path));
        if a.json {
            out_json.push(serde_json::json!({"file": path, "failures": f, "provenance": prov}));
            continue;
        }
        let name = path.display().to_string();
        let short = if name.len() > 60 {
            format!("…{}", &name[name.len() - 59..])
        } else {
            name
        };
        println!(
            "{:<60} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9}  {}",
            short,
            format!(
                "{}/{}",
                f.completed.map(|c| c.to_string()).unwrap_or("-".into()),
                f.num_prompts.map(|c| c.to_string()).unwrap_or("-".into())
            ),
            f.failed.map(|c| c.to_string()).unwrap_or("-".into()),
            ms(r.mean_ttft_ms.value()),
            ms(r.percentile_ms(Metric::Ttft, 99.0)),
            ms(r.mean_tpot_ms.value()),
            ms(r.output_throughput.value()),
            match &prov {
                Provenance::PerClient => "one client".to_string(),
                Provenance::AveragedAggregate { .. } =>
                    "AVERAGED aggregate (percentiles are means of parts)".to_string(),
            }
        );
        if f.silent {
            println!(
                "  WARNING {} of {} requests failed ({:.1} %) and the file has no 'failed' key: its summary hides them",
                f.failed.unwrap_or(0),
                f.num_prompts.unwrap_or(0),
                f.failure_rate.unwrap_or(0.0) * 100.0
            );
        }
    }
    for (path, r) in &gl {
        for (i, b) in r.benchmarks.iter().enumerate() {
            if a.json {
                out_json.push(serde_json::json!({"file": path, "format": "guidellm",
                    "guidellm_version": r.guidellm_version, "benchmark": i, "result": b}));
                continue;
            }
            let name = format!("{}#{i}", path.display());
            let short = if name.len() > 60 {
                format!("…{}", &name[name.len() - 59..])
            } else {
                name
            };
            let t = &b.totals;
            println!(
                "{:<60} {:>10} {:>7} {:>9} {:>9} {:>9} {:>9}  GuideLLM {} {}",
                short,
                format!("{}/{}", t.successful, t.total),
                t.errored + t.incomplete,
                ms(b.ttft_ms.as_ref().and_then(|s| s.mean)),
                ms(b.ttft_ms.as_ref().and_then(|s| s.percentile(99.0))),
                ms(b.tpot_ms.as_ref().and_then(|s| s.mean)),
                ms(b.output_throughput),
                r.guidellm_version.as_deref().unwrap_or("?"),
                b.strategy.as_deref().unwrap_or("?"),
            );
        }
    }
    // partN/ beside all-parts/: compare per file name.
    let mut groups: BTreeMap<(PathBuf, String), PartsGroup<'_>> = BTreeMap::new();
    for (path, r) in &all {
        let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
            continue;
        };
        let (Some(parent), Some(dname)) = (dir.parent(), dir.file_name().and_then(|d| d.to_str()))
        else {
            continue;
        };
        let key = (parent.to_path_buf(), file.to_string_lossy().to_string());
        let e = groups.entry(key).or_default();
        if dname == "all-parts" {
            e.1 = Some(r);
        } else if dname.starts_with("part") {
            e.0.push((path.display().to_string(), r));
        }
    }
    let mut printed = false;
    for ((parent, file), (parts, allp)) in &groups {
        if parts.len() < 2 {
            continue;
        }
        let refs: Vec<(&str, &VllmBenchResult)> =
            parts.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        let c = compare_parts(&refs, *allp, a.percentile)?;
        if a.json {
            out_json.push(serde_json::json!({"parts_of": parent, "file": file, "comparison": c}));
            continue;
        }
        if !printed {
            println!(
                "\nclient parts: averaged p{} (what an all-parts file holds) vs pooled",
                a.percentile
            );
            printed = true;
        }
        for m in &c.metrics {
            println!(
                "{}/…/{file} {}: averaged {} ms, all-parts file {} ms, pooled {} (lies in {} ms)",
                parent.display(),
                m.metric.name(),
                ms(m.averaged),
                ms(m.all_parts_file),
                m.pooled
                    .map(|p| format!("{p:.1} ms"))
                    .unwrap_or_else(|| "unknown".into()),
                m.pooled_range
                    .map(|(l, h)| format!("{l:.1}–{h:.1}"))
                    .unwrap_or_else(|| "-".into()),
            );
        }
        if let Some(why) = &c.pooled_unavailable {
            println!("  exact pooling impossible: {why}");
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out_json)?);
    }
    Ok(())
}
