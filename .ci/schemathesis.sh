#!/usr/bin/env bash
# Fuzzes the running server against the OpenAPI document it serves, with schemathesis (PyPI).
# Usage: .ci/schemathesis.sh [SECONDS]   (default 90). Uses target/debug/voxd; builds it if missing.
#
# One worker: with two, CPython 3.11's ast.parse (hypothesis describing its lambdas) is not thread-safe
# and schemathesis reports "AST constructor recursion depth mismatch" runtime errors of its own.
#
# Every response check is on: no 5xx, every status and body as documented, headers, auth, 405s,
# resources usable after creation. Two request-side checks are off, on purpose:
#   positive_data_acceptance  flags a 400 for a request the schema allows; ours also refuses what a
#                             schema cannot express (a string that is no phone number or time zone).
#   negative_data_rejection   flags a 200 for a request the schema forbids; add-contacts-to-list
#                             reports a bad item in its results instead of refusing the batch.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-90}"
venv="${SCHEMATHESIS_VENV:-target/schemathesis-venv}"
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==4.32.5"
fi
[ -x target/debug/voxd ] || cargo build --quiet
voxd="$PWD/target/debug/voxd"
work="$(mktemp -d)"
export VOXD_DATA_DIR="$work" VOXD_DATABASE_URL="sqlite://$work/voxd.db"
# Web calls need a secret shared with the gateway (without one they answer 503, as documented).
export VOXD_WEB_CALL_SECRET="schemathesis-gateway-secret"
# The fuzzer sends many requests without a key on purpose; from one address they would soon be
# limited (429) instead of refused (401), which is right for a server and noise for the checks.
printf 'unauthenticated_requests_per_second = 1000000\n' >"$work/voxd.toml"
export VOXD_CONFIG="$work/voxd.toml"
"$voxd" team create fuzz --requests-per-second 1000000 >/dev/null
key="$("$voxd" key create --team fuzz | tail -n 1)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
RUST_LOG=warn "$voxd" serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break
  sleep 0.1
done
"$venv/bin/st" run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks all --exclude-checks positive_data_acceptance,negative_data_rejection \
  --max-time "$seconds" --workers 1 --seed 1 --no-color
