#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS, one after the other; prints the
# runs (executions) per target and the total, and exits non-zero if any target
# crashed, hung or failed to run (the crashing input is left in artifacts/TARGET/).
#
#   fuzz/run.sh SECONDS [TARGET...]     (from anywhere; default: every target)
#
# Corpora grow in corpus/TARGET/ (git-ignored) and are reused by the next run. Seeds:
# seeds/TARGET/ and the repository's fixtures named below. Needs a nightly toolchain
# (or RUSTC_BOOTSTRAP=1 with FUZZ_TOOLCHAIN=stable) and cargo-fuzz
# (`cargo install cargo-fuzz --locked`). Integer overflow checks are on (-a).
set -u

secs=${1:-}
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
fi
shift
cd "$(dirname "$0")" || exit 2
toolchain=${FUZZ_TOOLCHAIN:-nightly}
all=(sse chunk prom sysfs startup_log engine_log otlp vllm_json guidellm exp_file proc_maps ucx_tools fi_pingpong)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

# Fixture files (paths from the repository root) seeding a target, beside seeds/TARGET/.
fixtures() {
    case "$1" in
    startup_log) ls ../coordinator/tests/fixtures/vllm-startup-logs/*.log ;;
    guidellm) echo ../coordinator/tests/fixtures/guidellm/benchmarks.json ;;
    proc_maps) echo ../fabric/tests/data/maps_nixl.txt ;;
    ucx_tools) ls ../fabric/tests/data/ucx_proto_info_*.txt ;;
    esac
}

if ! cargo "+$toolchain" fuzz build -a >build.log 2>&1; then
    tail -40 build.log >&2
    echo "fuzz/run.sh: build failed (fuzz/build.log)" >&2
    exit 1
fi

total=0
failed=()
printf '%-12s %14s %10s  %s\n' target runs exec/s result
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    args=(-max_total_time="$secs" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048)
    [ -f "$t.dict" ] && args+=(-dict="$t.dict")
    case "$t" in sse | chunk) args+=(-dict=sse.dict) ;; esac
    seeds=$(fixtures "$t" | paste -sd, -)
    [ -n "$seeds" ] && args+=(-seed_inputs="$seeds")
    dirs=("corpus/$t")
    [ -d "seeds/$t" ] && dirs+=("seeds/$t")
    log="corpus/$t.log"
    cargo "+$toolchain" fuzz run -a "$t" "${dirs[@]}" -- "${args[@]}" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    runs=${runs:-0}
    rate=$((runs / secs))
    if [ $rc -eq 0 ]; then
        result=ok
    else
        result="FAILED (exit $rc; fuzz/$log)"
        failed+=("$t")
        grep -m3 -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | sed 's/^/    /'
    fi
    total=$((total + runs))
    printf '%-12s %14d %10d  %s\n' "$t" "$runs" "$rate" "$result"
done
printf '%-12s %14d\n' total "$total"
if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed or failed: ${failed[*]}" >&2
    exit 1
fi
