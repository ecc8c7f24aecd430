#!/usr/bin/env bash
# Packs what the GPU machine needs to run the real NIXL (PyPI nixl-cu13) and the UCX it
# bundles into .gpu/nixl.tar.xz (git-ignored), small enough to travel with the working
# tree (the wheel is ~59 MB; its nixl_ep_cu13 alone unpacks to ~90 MB). Kept:
#   - the import package nixl_cu13/ (Python files, _bindings, _utils) and its dist-info
#     (METADATA, WHEEL, licenses: importlib.metadata still names the version);
#   - the NIXL plugins UCX and LIBFABRIC (.nixl_cu13.mesonpy.libs/plugins/, the directory
#     libnixl loads plugins from);
#   - the bundled UCX (nixl_cu13.libs/libucp/ucs/uct/ucm-<hash>.so) and its modules
#     (nixl_cu13.libs/ucx/: cuda, cma, ib, ib_efa, ib_mlx5, ib_mlx5_ext, ucm_cuda);
#   - every library those need, followed through ELF NEEDED inside the wheel.
# Dropped: nixl_ep_cu13, other plugins and telemetry exporters, the duplicate plugin copies
# under nixl_cu13.libs/nixl/, UCX perftest modules, the mlx5 GPU-direct modules (they need
# libflexio), headers, scripts. Shared objects are stripped (--strip-unneeded).
#
#   scripts/gpu_bundle.sh [PYTHON_VERSION]   (default 3.12: the GPU machine's Python)
#
# On the GPU machine:
#   mkdir -p /tmp/nixl-site && tar -xJf .gpu/nixl.tar.xz -C /tmp/nixl-site
#   PYTHONPATH=/tmp/nixl-site python3 bench/nixl_ref.py --mem cuda:0
# The archive holds site/ layout at its root: nixl_cu13/, nixl_cu13.libs/, ...
# numpy and torch are not bundled: the GPU machine has them (seen: Python 3.12.3, numpy
# 2.5.2, torch 2.11.0+cu130). The node must provide libssl.so.3 / libcrypto.so.3 / libz
# (grpc, linked by libnixl), and libfabric.so.1 + libhwloc + libcudart for LIBFABRIC.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYVER="${1:-3.12}"
NIXL_VERSION=1.5.1
CACHE="${CARGO_TARGET_DIR:-$ROOT/target}/wheels"
OUT="$ROOT/.gpu"

die() { echo "gpu_bundle: $*" >&2; exit 1; }
for tool in readelf strip xz unzip python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

tag="cp${PYVER/./}"
mkdir -p "$CACHE"
wheel="$(ls "$CACHE"/nixl_cu13-"$NIXL_VERSION"-"$tag"-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$wheel" ]; then
  python3 -m pip download --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$PYVER" "nixl-cu13==$NIXL_VERSION" -d "$CACHE" >&2 \
    || die "pip download nixl-cu13==$NIXL_VERSION for Python $PYVER failed"
  wheel="$(ls "$CACHE"/nixl_cu13-"$NIXL_VERSION"-"$tag"-*.whl | head -1)"
fi
echo "gpu_bundle: wheel $(basename "$wheel") ($(stat -c %s "$wheel") bytes)" >&2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
unzip -q "$wheel" -d "$work/wheel"
mkdir -p "$work/site"

# Copies the kept files (relative paths) into $work/site, closing over ELF NEEDED.
python3 - "$work/wheel" "$work/site" <<'PYEOF'
import glob, os, shutil, subprocess, sys

src, dst = sys.argv[1], sys.argv[2]
LIB_DIRS = [".nixl_cu13.mesonpy.libs", "nixl_cu13.libs", "nixl_cu13.libs/ucx"]
UCX_MODULES = ["libuct_cuda", "libucm_cuda", "libuct_cma", "libuct_ib", "libuct_ib_efa",
               "libuct_ib_mlx5", "libuct_ib_mlx5_ext"]

def rel(pattern):
    found = sorted(glob.glob(os.path.join(src, pattern)))
    if not found:
        sys.exit(f"gpu_bundle: nothing in the wheel matches {pattern}")
    return [os.path.relpath(p, src) for p in found]

keep = []
keep += rel("nixl_cu13/*.py") + rel("nixl_cu13/py.typed") + rel("nixl_cu13/*.so")
for name in ("METADATA", "WHEEL", "top_level.txt", "licenses/**"):
    keep += [os.path.relpath(p, src) for p in glob.glob(os.path.join(src, "nixl_cu13-*.dist-info", name), recursive=True)
             if os.path.isfile(p)]
keep += rel(".nixl_cu13.mesonpy.libs/plugins/libplugin_UCX.so")
keep += rel(".nixl_cu13.mesonpy.libs/plugins/libplugin_LIBFABRIC.so")
keep += rel("nixl_cu13.libs/libucp-*.so*") + rel("nixl_cu13.libs/libucs-*.so*")
keep += rel("nixl_cu13.libs/libuct-*.so*") + rel("nixl_cu13.libs/libucm-*.so*")
for m in UCX_MODULES:
    keep += rel(f"nixl_cu13.libs/ucx/{m}.so*")

by_name = {}
for d in LIB_DIRS:
    for p in glob.glob(os.path.join(src, d, "*")):
        if os.path.isfile(p):
            by_name.setdefault(os.path.basename(p), os.path.relpath(p, src))

def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
    return [l.split("[", 1)[1].rstrip("]") for l in out.splitlines() if "(NEEDED)" in l]

seen, external, todo = set(), set(), list(keep)
while todo:
    r = todo.pop()
    if r in seen:
        continue
    seen.add(r)
    if ".so" in os.path.basename(r):
        for lib in needed(os.path.join(src, r)):
            if lib in by_name:
                todo.append(by_name[lib])
            else:
                external.add(lib)

for r in sorted(seen):
    os.makedirs(os.path.dirname(os.path.join(dst, r)) or dst, exist_ok=True)
    shutil.copy2(os.path.join(src, r), os.path.join(dst, r))
print(f"gpu_bundle: {len(seen)} files kept; libraries the node must provide: {' '.join(sorted(external))}",
      file=sys.stderr)
PYEOF

before="$(du -sb "$work/site" | cut -f1)"
find "$work/site" -name '*.so*' -type f -exec strip --strip-unneeded {} +
after="$(du -sb "$work/site" | cut -f1)"
echo "gpu_bundle: unpacked $before bytes, stripped $after bytes" >&2

mkdir -p "$OUT"
tar -C "$work/site" -cf - . | xz -9e -T0 >"$OUT/nixl.tar.xz.tmp"
mv "$OUT/nixl.tar.xz.tmp" "$OUT/nixl.tar.xz"
size="$(stat -c %s "$OUT/nixl.tar.xz")"
echo "gpu_bundle: $OUT/nixl.tar.xz $size bytes ($(( (size + 1048575) / 1048576 )) MiB) for Python $PYVER"
