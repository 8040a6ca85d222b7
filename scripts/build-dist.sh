#!/usr/bin/env bash
# The binary we ship (deploy/Dockerfile runs this): the release profile's
# code with fat LTO and one codegen unit ([profile.dist] in Cargo.toml), and
# the functions a start runs placed together (deploy/link/startup-order.txt,
# written by bench/startup_order.sh), so that a fresh start maps fewer pages
# of the binary: idle RSS 10.4 MiB against 19.0 for target/release
# (bench/RESULTS.md). Needs LLD, Rust's default linker on x86_64 Linux since
# 1.90; `cargo rustc` passes the link flags to the binary alone, so no
# dependency is rebuilt for them. Output: target/dist/mfa-facade.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo rustc --locked --profile dist --bin mfa-facade -- \
  -C "link-arg=-Wl,--symbol-ordering-file=$root/deploy/link/startup-order.txt" \
  -C link-arg=-Wl,--no-warn-symbol-ordering
