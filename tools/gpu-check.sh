#!/usr/bin/env bash
# Issue 16, item 4: the SASRec and backbone benchmarks on a lent GPU (no Node, no network there) and on
# its CPU, printed side by side.
#
#   tools/gpu-check.sh pack   here: builds out/, then writes .gpu-carry/ (ignored by git, < 64 MiB): the Node
#                             binary and the app (out/ plus only the node_modules files the benches load,
#                             traced by running them once), each xz-compressed, and Debian's Vulkan loader
#   tools/gpu-check.sh run    on the GPU machine, from the repository root with .gpu-carry/ carried: unpacks
#                             to a temp folder, then runs each bench on webgpu (the GPU's own adapter) and on
#                             cpu (wasm), each line prefixed with its backend; `almostrec backends` first
#
# Env: GPU_CHECK_EPOCHS (sasrec epochs, default 5), GPU_CHECK_STEPS (backbone steps, default 5),
# GPU_CHECK_BACKENDS (default "webgpu wasm").
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu-carry
LIMIT=$((64 * 1024 * 1024))

pack() {
  npm run build >/dev/null
  rm -rf "$CARRY" && mkdir -p "$CARRY"
  local trace
  trace=$(mktemp)
  # Every file the benches and the CLI load, from require.cache at exit (a preload, so nothing is guessed).
  cat >"$CARRY/trace.cjs" <<'EOF'
const { appendFileSync } = require('node:fs');
process.on('exit', () => appendFileSync(process.env.GPU_CHECK_TRACE, Object.keys(require.cache).join('\n') + '\n'));
EOF
  export GPU_CHECK_TRACE="$trace"
  node -r "./$CARRY/trace.cjs" out/main/bench.js sasrec --dataset ml-latest-small --epochs 1 --backend wasm >/dev/null 2>&1
  node -r "./$CARRY/trace.cjs" out/main/bench.js backbone --steps 1 --no-pretrain --backend wasm >/dev/null 2>&1 || true
  node -r "./$CARRY/trace.cjs" out/main/cli.js backends >/dev/null 2>&1
  rm "$CARRY/trace.cjs"
  # Packages' files as traced, plus what they load without require: package.json files, the wasm
  # binaries, the native libraries beside the .node files, and webgpu (ESM, so not in require.cache).
  {
    grep -o 'node_modules/.*' "$trace" | sort -u
    # every package.json of the traced packages, nested ones too (e.g. dist/cjs/package.json: "type": "commonjs")
    grep -o 'node_modules/\(@[^/]*/\)\?[^/]*/' "$trace" | sort -u | xargs -I{} find -L {} -name package.json
    find -L node_modules/@tensorflow/tfjs-backend-wasm/dist -maxdepth 1 -name '*.wasm'
    find -L node_modules/onnxruntime-node/bin -path '*linux/x64/*'
    find -L node_modules/webgpu -maxdepth 1 -name '*.js'
    echo node_modules/webgpu/dist/linux-x64/dawn.node
    find -L node_modules/@webgpu -type f 2>/dev/null
  } | sort -u >"$CARRY/files.txt"
  tar -chJf "$CARRY/app.tar.xz" out -T "$CARRY/files.txt"
  xz -9 -T0 -c "$(readlink -f "$(command -v node)")" >"$CARRY/node.xz"
  # Dawn reaches an NVIDIA GPU through the Vulkan loader (libvulkan.so.1), which a bare machine may lack;
  # the driver brings the ICD it loads.
  local deb
  deb=$(mktemp -d)
  (cd "$deb" && apt-get download libvulkan1 >/dev/null && dpkg-deb -x libvulkan1_*.deb x)
  cp -L "$deb"/x/usr/lib/*/libvulkan.so.1 "$CARRY/libvulkan.so.1"
  rm -rf "$deb"
  rm -f "$trace" "$CARRY/files.txt"
  local size
  size=$(du -cb "$CARRY"/* | tail -1 | cut -f1)
  echo "gpu-check: $CARRY is $((size / 1024 / 1024)) MiB ($(ls "$CARRY" | tr '\n' ' '))"
  if [ "$size" -ge "$LIMIT" ]; then
    echo "gpu-check: over the 64 MiB a device call carries" >&2
    exit 1
  fi
}

run() {
  [ -f "$CARRY/node.xz" ] && [ -f "$CARRY/app.tar.xz" ] && [ -f "$CARRY/libvulkan.so.1" ] || { echo "gpu-check: no $CARRY here: run 'tools/gpu-check.sh pack' first and carry it" >&2; exit 1; }
  local app
  app=$(mktemp -d)
  xz -dc "$CARRY/node.xz" >"$app/node" && chmod +x "$app/node"
  tar -xJf "$CARRY/app.tar.xz" -C "$app"
  export ALMOSTREC_RESOURCES="$PWD/resources"
  # The machine's own Vulkan loader when it has one, else the carried one.
  if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
    mkdir -p "$app/lib" && cp "$CARRY/libvulkan.so.1" "$app/lib/"
    export LD_LIBRARY_PATH="$app/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  local node="$app/node" epochs="${GPU_CHECK_EPOCHS:-5}" steps="${GPU_CHECK_STEPS:-5}"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /' || true
  ALMOSTREC_BACKEND=webgpu "$node" "$app/out/main/cli.js" backends | sed 's/^/backends: /'
  local log="$app/bench.log"
  for backend in ${GPU_CHECK_BACKENDS:-webgpu wasm}; do
    for bench in "sasrec --dataset ml-latest-small --epochs $epochs" "backbone --steps $steps --no-pretrain"; do
      local name=${bench%% *}
      # Forced (ALMOSTREC_BACKEND): a backend that fails its self-test falls back to cpu, and says so.
      # shellcheck disable=SC2086 # $bench is the bench's argument list
      if ALMOSTREC_BACKEND=$backend "$node" "$app/out/main/bench.js" $bench >"$log.out" 2>"$log"; then
        grep -m1 '^backend:' "$log" | sed "s/^/$name $backend: /" || true
        tail -1 "$log.out" | sed "s/^/$name $backend: /"
      else
        echo "$name $backend: failed: $(grep -v '^\[' "$log" | tail -1)"
      fi
    done
  done
}

case "${1:-}" in
  pack) pack ;;
  run) run ;;
  *) echo "usage: tools/gpu-check.sh pack|run" >&2; exit 2 ;;
esac
