#!/usr/bin/env bash
# Release build: one stripped binary per component, in dist/ with sha256 sums and a
# tarball each.
#
#   scripts/release.sh [--no-build] [--out DIR]
#
#   servescope-agent   the per-node agent (deploy/ kit: systemd, Helm, Ray)
#   servescope         the CLI, coordinator, load client and simulator (`servescope sim …`)
#
# The binaries link glibc dynamically (plus libgcc_s, libm, libdl/pthread through
# glibc); NVML, libfabric and UCX are loaded at run time with dlopen, so the target
# needs only a glibc at least as new as the build machine's (printed below).
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
out=dist
while [[ $# -gt 0 ]]; do
    case $1 in
        --no-build) build=0; shift ;;
        --out) out=$2; shift 2 ;;
        -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "release.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
arch=$(uname -m)
if [[ $build -eq 1 ]]; then
    # [profile.release] in Cargo.toml: strip = true, thin LTO. One package per build:
    # built together, cargo would unify features and give the agent the CLI's
    # tokenizer (the agent's load shards count words).
    cargo build --release --locked -p servescope-agent
    cargo build --release --locked -p servescope
fi
mkdir -p "$out"
glibc=$(ldd --version 2>/dev/null | head -n 1 | grep -oE '[0-9]+\.[0-9]+$' || echo "?")
for bin in servescope-agent servescope; do
    src=target/release/$bin
    [[ -x $src ]] || { echo "release.sh: $src missing (run without --no-build)" >&2; exit 1; }
    dir=$out/$bin-$version-linux-$arch
    rm -rf -- "$dir"
    mkdir -p -- "$dir"
    cp -- "$src" "$dir/$bin"
    strip --strip-all -- "$dir/$bin" 2>/dev/null || true
    (cd "$dir" && sha256sum "$bin" > "$bin.sha256")
    tar -C "$out" -czf "$dir.tar.gz" "$(basename -- "$dir")"
    (cd "$out" && sha256sum "$(basename -- "$dir").tar.gz" > "$(basename -- "$dir").tar.gz.sha256")
    needed=$(readelf -d "$dir/$bin" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
    maxglibc=$(objdump -T "$dir/$bin" 2>/dev/null | grep -oE 'GLIBC_[0-9]+\.[0-9]+' | sort -uV | tail -n 1)
    printf '%-18s %10s bytes  sha256 %s\n' "$bin" "$(stat -c %s "$dir/$bin")" "$(cut -d' ' -f1 "$dir/$bin.sha256")"
    printf '%-18s needs: %s(newest symbol %s; built on glibc %s)\n' "" "$needed" "${maxglibc:-?}" "$glibc"
    printf '%-18s %s (%s bytes)\n' "" "$dir.tar.gz" "$(stat -c %s "$dir.tar.gz")"
done
