#!/usr/bin/env bash
# Installs the main build into a temporary prefix, then configures and builds examples/ against
# that installed package only (find_package(quorumq CONFIG REQUIRED), target quorumq::client):
# proof that the installed headers and library stand alone.
#   examples/build-against-install.sh [BUILD_DIR]   (default: $QUORUMQ_BUILD_DIR or build/release)
# With a running broker, set QUORUMQ_BOOTSTRAP to also run the two examples against it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${1:-${QUORUMQ_BUILD_DIR:-$root/build/release}}"
[[ "$build" = /* ]] || build="$root/$build"
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  echo "error: $build is not a configured build directory; run: cmake --preset release && cmake --build build/release" >&2
  exit 2
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/quorumq-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

echo "== building and installing $build into $prefix"
cmake --build "$build"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"

# The package must not leak internals: only quorumq/ public headers, no Asio or flatbuffers.
if grep -rlE '#include [<"](asio|flatbuffers)|quorumq_generated|quorumq/protocol/' "$prefix/include" >/dev/null 2>&1; then
  echo "error: installed public headers include internal headers:" >&2
  grep -rnE '#include [<"](asio|flatbuffers)|quorumq_generated|quorumq/protocol/' "$prefix/include" >&2
  exit 1
fi

# Every installed program runs from this prefix (RUNPATH $ORIGIN/../lib: libquorumq.so is found
# without LD_LIBRARY_PATH), as a packager installing into any --prefix would run it.
echo "== every installed program starts from $prefix"
for bin in "$prefix"/bin/*; do
  case "$(basename "$bin")" in quorumq-entrypoint|quorumq-healthcheck) continue ;; esac
  if ! env -u LD_LIBRARY_PATH "$bin" --help >/dev/null 2>"$work/run.err"; then
    echo "error: installed $bin does not run: $(head -3 "$work/run.err")" >&2
    exit 1
  fi
done

echo "== configuring examples against the installed package only"
cmake -S "$here" -B "$work/examples" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
cmake --build "$work/examples"

if [[ -n "${QUORUMQ_BOOTSTRAP:-}" ]]; then
  topic="examples-$$"
  "$prefix/bin/quorumq" topic create "$topic" --partitions 3 --replicas 1
  "$work/examples/example_producer" "$QUORUMQ_BOOTSTRAP" "$topic" 20
  "$work/examples/example_consumer" "$QUORUMQ_BOOTSTRAP" "$topic" examples-group 20 | tail -3
fi
echo "== ok: examples built against the installed quorumq package"
