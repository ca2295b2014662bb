#!/usr/bin/env bash
# The served OpenAPI document must validate (openapi-spec-validator) and generate a Python client
# (openapi-python-client) with no warning; then tests/client/smoke.py uses that client against a
# real `voxd serve`. Uses target/debug/voxd; builds it if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CLIENT_VENV:-target/client-venv}"
# Made absolute: the generator runs from another folder.
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
if [ ! -x "$venv/bin/openapi-python-client" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "openapi-spec-validator==0.9.0" "openapi-python-client==0.29.1"
fi
[ -x target/debug/voxd ] || cargo build --quiet
voxd="$PWD/target/debug/voxd"
work="$(mktemp -d)"
export VOXD_DATA_DIR="$work" VOXD_DATABASE_URL="sqlite://$work/voxd.db"
# The simulated carrier answers at once, so the call ends within the test.
printf 'sim_ring_ms = 0\nsim_answer_ms = 0\n' >"$work/voxd.toml"
export VOXD_CONFIG="$work/voxd.toml"
"$voxd" team create smoke >/dev/null
key="$("$voxd" key create --team smoke | tail -n 1)"
"$voxd" number add --team smoke +61291234567 >/dev/null
"$voxd" script import --team smoke examples/scripts/appraisal-booking.yaml >/dev/null
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
RUST_LOG=warn "$voxd" serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/api/v1/openapi.json" >"$work/openapi.json"
"$venv/bin/openapi-spec-validator" "$work/openapi.json"
# Recordings are audio/flac and imports text/csv; the generator knows such bodies only as
# application/octet-stream (bytes).
printf 'post_hooks: []\ncontent_type_overrides:\n  audio/flac: application/octet-stream\n  text/csv: application/octet-stream\n' >"$work/generator.yaml"
(cd "$work" && "$venv/bin/openapi-python-client" generate --path openapi.json --meta none \
  --output-path voxd_client --config generator.yaml) >"$work/generate.log" 2>&1 || { cat "$work/generate.log"; exit 1; }
if grep -qiE "warning|unable|could not" "$work/generate.log"; then
  cat "$work/generate.log"
  echo "openapi-python-client could not process part of the document" >&2
  exit 1
fi
PYTHONPATH="$work" "$venv/bin/python" tests/client/smoke.py "http://127.0.0.1:$port" "$key" "+61291234567"
