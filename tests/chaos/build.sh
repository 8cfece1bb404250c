#!/usr/bin/env bash
# Builds tests/chaos/chaos_client against the release build's libraries (build/release must be
# built: quorumq-broker, quorumq). Output: build/chaos/chaos_client. Not part of the CMake tree
# on purpose: the suite owns only tests/chaos/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rel="$root/build/release"
out="$root/build/chaos"
mkdir -p "$out"
src="$root/tests/chaos/chaos_client.cc"
fs_src="$root/tests/chaos/lossyfs.cc"
if [[ ! "$out/lossyfs" -nt "$fs_src" ]] && pkg-config --exists fuse3 2>/dev/null; then
  g++ -std=c++23 -O2 -Wall -Wextra -Werror -o "$out/lossyfs" "$fs_src" $(pkg-config --cflags --libs fuse3)
fi
if [[ "$out/chaos_client" -nt "$src" && "$out/chaos_client" -nt "$rel/storage/libquorumq_storage.a" ]]; then exit 0; fi
g++ -std=c++23 -O2 -o "$out/chaos_client" "$src" \
  -I"$root/client/include" -I"$root/protocol/include" -I"$root/storage/include" -I"$rel/protocol/generated" \
  "$rel/storage/libquorumq_storage.a" "$rel/protocol/libquorumq_protocol.a" \
  -L"$rel/client" -Wl,-rpath,"$rel/client" -lquorumq -llmdb -lpthread
