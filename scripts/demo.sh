#!/usr/bin/env bash
# Runs a Vireo server on 127.0.0.1:8080 (data in ./.vireo) with the example functions `hello`
# and `echo` deployed. Stop it with Ctrl-C. Extra arguments go to `vireo serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 target…" >&2
    rustup target add wasm32-wasip2
fi

echo "building the example functions…" >&2
for manifest in examples/*/Cargo.toml; do   # each example is a workspace of its own
    cargo build --quiet --release --target wasm32-wasip2 \
        --manifest-path "$manifest" --target-dir target/guests
done
echo "building vireo…" >&2
cargo build --quiet --release -p vireo-cli

guests=target/guests/wasm32-wasip2/release
exec target/release/vireo serve \
    --deploy "hello=$guests/hello.wasm" \
    --deploy "echo=$guests/echo.wasm" \
    "$@"
