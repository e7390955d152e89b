#!/bin/sh
# The GPU ready check, on a GPU machine with no network and perhaps no Node: `sh run.sh [options]` from this
# pack (built by `npx nx run tools:device-check`); `sh run.sh --usage` lists the options.
set -eu
pack=$(cd "$(dirname "$0")" && pwd)
work=${TMPDIR:-/tmp}/dann-device-check
mkdir -p "$work/dist/linux-x64"
# The pack's Node and dawn.node travel compressed; everything runs from $work.
gunzip -c "$pack/node.gz" > "$work/node" && chmod +x "$work/node"
gunzip -c "$pack/dist/linux-x64/dawn.node.gz" > "$work/dist/linux-x64/dawn.node"
cp "$pack"/check.mjs "$pack"/*.wasm "$work/"

# Dawn reaches an NVIDIA GPU through Vulkan: the loader (from the pack's .deb when the machine has none) ...
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  deb=$(ls "$pack"/libvulkan1_*.deb 2>/dev/null | head -n 1 || true)
  if [ -n "$deb" ] && command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$deb" "$work/vulkan"
  elif [ -n "$deb" ]; then
    (cd "$work" && mkdir -p vulkan && cd vulkan && ar x "$deb" data.tar.xz && tar -xJf data.tar.xz)
  fi
  export LD_LIBRARY_PATH="$work/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  echo "Vulkan loader: from the pack ($deb)"
fi
# ... and the driver's ICD file; where the driver left none, one pointing at its Vulkan library.
if ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
  if ldconfig -p 2>/dev/null | grep -q 'libGLX_nvidia\.so\.0 '; then
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3.0"}}\n' > "$work/nvidia_icd.json"
    export VK_ICD_FILENAMES="$work/nvidia_icd.json" VK_DRIVER_FILES="$work/nvidia_icd.json"
    echo "Vulkan ICD: wrote $work/nvidia_icd.json (libGLX_nvidia.so.0)"
  else
    echo "Vulkan ICD: no nvidia_icd.json and no libGLX_nvidia.so.0 (NVIDIA's graphics libraries are not installed)"
  fi
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
exec "$work/node" "$work/check.mjs" "$@"
