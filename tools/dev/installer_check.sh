#!/usr/bin/env bash
# The installer's promise, checked on a bare QGIS (issue #27): a Debian trixie chroot with nothing but
# Debian's QGIS 3.40 and python3-pip (no python3-rasterio, -onnxruntime, -geopandas, ...), the plugin
# ZIP of `make package` unzipped into its profile, and then, all through qgis_process:
#
#   1. every algorithm is listed on the bare QGIS (none "could not be loaded");
#   2. `installdependencies WHAT=0` (inference) installs from PyPI into ~/.local/share/deeplandcover;
#      QGIS's own files stay as Debian installed them (`dpkg -V`), and a second run installs nothing;
#   3. Classify Pixels classifies a small raster with a small ONNX model (built on the host);
#   4. with PyTorch's CPU index unreachable (download.pytorch.org -> 127.0.0.1), `WHAT=1` (training)
#      stops within a minute, before downloading anything, names the index, and leaves the folder as it was;
#   5. when PyTorch's CPU index is reachable, the dry run of `WHAT=1 GPU=1` (CPU) shows it and a +cpu torch.
#
# Usage (root, on the Debian 12 CI host, after `make setup`: the host's .venv builds the test model):
#   tools/dev/installer_check.sh
# The chroot ($DLC_CHROOT_DIR/trixie-bare, default /var/cache/deeplandcover/chroots/trixie-bare, about
# 1.5 GB) is built once (debootstrap + apt: about 6 minutes) and reused while its package list is the
# same; each run starts from an empty package folder. Logs go to $INSTALLER_CHECK_OUT (default
# matrix_output/installer/); the last line says PASS or which check failed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHROOTS="${DLC_CHROOT_DIR:-/var/cache/deeplandcover/chroots}"
ROOT="$CHROOTS/trixie-bare"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
OUT="${INSTALLER_CHECK_OUT:-$REPO/matrix_output/installer}"
HOST_PY="${HOST_PYTHON:-$REPO/.venv/bin/python}"
# What a user installs: QGIS and pip (no recommends: qgis-plugin-grass and a compiler are not needed).
DEB_PACKAGES=(qgis python3-qgis python3-pip ca-certificates)
STAMP_TEXT="$(printf '%s\n' "${DEB_PACKAGES[@]}")"
PROFILE=/root/.local/share/QGIS/QGIS3/profiles/default
PKGS=/root/.local/share/deeplandcover
CHECK=/root/dlc-check  # the model, raster and outputs, inside the chroot

log() { printf '>> [%s] %s\n' "$(date +%T)" "$*"; }
fail() { echo "installer_check: FAIL: $*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] || { echo "installer_check needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
}

ensure_host_tools() {
  command -v debootstrap >/dev/null && command -v unshare >/dev/null && return
  log "installing debootstrap on the host"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap util-linux >/dev/null
}

# Run a command in the chroot, mounts in a private namespace (gone when it ends). With HOSTS_BLOCK set,
# /etc/hosts inside maps those host names to 127.0.0.1 (connection refused) for this command only.
in_chroot() {
  unshare --mount --propagation private -- bash -euo pipefail -c '
    root="$1"; block="$2"; shift 2
    mount -t proc proc "$root/proc"
    mount -t sysfs sys "$root/sys"
    mount --bind /dev "$root/dev"
    mount -t devpts devpts "$root/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null || true
    mkdir -p "$root/dev/shm" && mount -t tmpfs -o size=2g shm "$root/dev/shm"
    cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    if [ -n "$block" ]; then
      hosts=$(mktemp); cat "$root/etc/hosts" >"$hosts" 2>/dev/null || true
      for h in $block; do echo "127.0.0.1 $h" >>"$hosts"; echo "::1 $h" >>"$hosts"; done
      mount --bind "$hosts" "$root/etc/hosts"
    fi
    exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      QT_QPA_PLATFORM=offscreen XDG_RUNTIME_DIR=/tmp/xdg DEBIAN_FRONTEND=noninteractive "$@"
  ' in_chroot "$ROOT" "${HOSTS_BLOCK:-}" "$@"
}

build_chroot() {
  if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ ! -f "$ROOT/.dlc-debootstrap" ]; then
    log "debootstrap trixie into $ROOT"
    rm -rf "$ROOT"
    mkdir -p "$CHROOTS"
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >"$CHROOTS/trixie-bare.debootstrap.log" 2>&1 \
      || { tail -20 "$CHROOTS/trixie-bare.debootstrap.log"; exit 1; }
    touch "$ROOT/.dlc-debootstrap"
  fi
  if [ -f "$ROOT/.dlc-packages" ] && [ "$(cat "$ROOT/.dlc-packages")" = "$STAMP_TEXT" ]; then
    log "reusing $ROOT"
    return
  fi
  log "installing ${DEB_PACKAGES[*]} from Debian"
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/* "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null || true
  in_chroot apt-get -qq update
  in_chroot apt-get install -y -qq --no-install-recommends "${DEB_PACKAGES[@]}" \
    >"$CHROOTS/trixie-bare.apt.log" 2>&1 || { tail -30 "$CHROOTS/trixie-bare.apt.log"; exit 1; }
  in_chroot update-ca-certificates >/dev/null
  in_chroot apt-get clean
  printf '%s' "$STAMP_TEXT" >"$ROOT/.dlc-packages"
}

# The plugin ZIP of the working tree, unzipped into the chroot's profile; an empty package folder.
install_plugin() {
  local zip="$OUT/deeplandcover.zip"
  python3 "$REPO/tools/dev/package.py" "$zip" --worktree >/dev/null
  rm -rf "$ROOT$PROFILE/python/plugins/deeplandcover" "$ROOT$PKGS" "$ROOT$CHECK"
  mkdir -p "$ROOT$PROFILE/python/plugins" "$ROOT$CHECK"
  python3 -m zipfile -e "$zip" "$ROOT$PROFILE/python/plugins/"
  in_chroot qgis_process plugins enable deeplandcover >"$OUT/enable.log" 2>&1 \
    || grep -q "already enabled" "$OUT/enable.log" || { cat "$OUT/enable.log"; fail "enable"; }
}

# A 3-band 96x96 uint16 GeoTIFF and a 3-class ONNX model with its card (the test helpers; torch on the host).
make_fixtures() {
  [ -x "$HOST_PY" ] || fail "no $HOST_PY: run make setup first (its torch builds the test model)"
  PYTHONPATH="$REPO/.pkgroot" "$HOST_PY" - "$ROOT$CHECK" <<'EOF'
import sys
from pathlib import Path
import rasterio
from rasterio.transform import from_origin
from deeplandcover.tests.helpers.onnx_models import make_model, smooth_image
out = Path(sys.argv[1])
img = smooth_image(3, 96, 96, seed=1)
profile = dict(driver="GTiff", width=96, height=96, count=3, dtype="uint16", crs="EPSG:32633",
               transform=from_origin(500000, 5200000, 10, 10))
with rasterio.open(out / "image.tif", "w", **profile) as dst:
    dst.write(img)
    for i, b in enumerate(["B1", "B2", "B3"], 1):
        dst.set_band_description(i, b)
make_model(out / "model.onnx", ["B1", "B2", "B3"], n_classes=3, balance_on=img)
EOF
}

qgis_run() {  # qgis_run LOG ARGS...: qgis_process in the chroot (at most $QGIS_TIMEOUT s), output in $OUT/LOG
  local name="$1"; shift
  set +e
  in_chroot timeout "${QGIS_TIMEOUT:-1200}" qgis_process "$@" >"$OUT/$name" 2>&1
  local rc=$?
  set -e
  return $rc
}

check_listed() {  # check_listed LOG: all algorithms listed, none failed to load
  qgis_run "$1" list || { tail -20 "$OUT/$1"; fail "qgis_process list ($1)"; }
  ! grep -q "could not be loaded" "$OUT/$1" || { grep "could not be loaded" "$OUT/$1"; fail "an algorithm did not load ($1)"; }
  for alg in exporttrainingtiles trainmodel classifypixels classifybatch detectchange computeaccuracy \
    createaccuracypoints installdependencies; do
    grep -q "deeplandcover:$alg" "$OUT/$1" || fail "deeplandcover:$alg not listed ($1)"
  done
}

main() {
  need_root
  ensure_host_tools
  mkdir -p "$OUT"
  local t0 t1 before after secs
  t0=$(date +%s)
  build_chroot
  install_plugin
  make_fixtures
  log "1. bare QGIS: every algorithm listed"
  check_listed list-bare.log

  log "2. install the inference packages from PyPI"
  t1=$(date +%s)
  qgis_run install-inference.log run deeplandcover:installdependencies -- WHAT=0 \
    || { tail -40 "$OUT/install-inference.log"; fail "installdependencies WHAT=0"; }
  echo "inference install: $(( $(date +%s) - t1 )) s, $(du -sm "$ROOT$PKGS" | cut -f1) MB" | tee "$OUT/summary.txt"
  in_chroot dpkg -V qgis python3-qgis python3-numpy python3-gdal python3-pyqt5 >"$OUT/dpkg-V.log" 2>&1 || true
  [ ! -s "$OUT/dpkg-V.log" ] || { cat "$OUT/dpkg-V.log"; fail "Debian's files were changed"; }
  ! find "$ROOT$PKGS" -name "*.pth" | grep -q . || fail ".pth files in the package folder"
  qgis_run install-again.log run deeplandcover:installdependencies -- WHAT=0 || fail "second install"
  grep -q "Nothing to install" "$OUT/install-again.log" || { tail -20 "$OUT/install-again.log"; fail "second run installed"; }
  check_listed list-installed.log

  log "3. classify with a small ONNX model"
  qgis_run classify.log run deeplandcover:classifypixels -- "INPUT=$CHECK/image.tif" "MODEL=$CHECK/model.onnx" \
    "OUTPUT=$CHECK/classes.tif" || { tail -40 "$OUT/classify.log"; fail "classifypixels"; }
  in_chroot env PYTHONPATH="$PKGS/python3.13" python3 -c "
import numpy as np, rasterio
with rasterio.open('$CHECK/classes.tif') as src:
    values = set(np.unique(src.read(1)).tolist()) - {src.nodata}
assert values and values <= {1, 2, 3}, values
print('classes', sorted(values))" >>"$OUT/summary.txt" 2>&1 || { cat "$OUT/summary.txt"; fail "class raster"; }

  log "4. training install with PyTorch's CPU index unreachable"
  before=$(cd "$ROOT$PKGS" && find . | sort | md5sum)
  t1=$(date +%s)
  HOSTS_BLOCK="download.pytorch.org" QGIS_TIMEOUT=300 qgis_run install-blocked.log run deeplandcover:installdependencies -- WHAT=1 \
    && fail "WHAT=1 succeeded with the CPU index unreachable"
  secs=$(( $(date +%s) - t1 ))
  echo "training install, CPU index unreachable: stopped after $secs s" | tee -a "$OUT/summary.txt"
  [ "$secs" -le 60 ] || fail "took $secs s (more than a minute)"
  grep -q "download.pytorch.org" "$OUT/install-blocked.log" || { tail -20 "$OUT/install-blocked.log"; fail "URL not named"; }
  ! grep -qE "^(Downloading|Collecting)" "$OUT/install-blocked.log" || fail "pip downloaded before stopping"
  after=$(cd "$ROOT$PKGS" && find . | sort | md5sum)
  [ "$before" = "$after" ] || fail "the package folder changed"

  log "5. dry run of the training install on the CPU"
  if in_chroot python3 -c "import urllib.request as u; u.urlopen('https://download.pytorch.org/whl/cpu/torch/', timeout=10)" \
    >/dev/null 2>&1; then
    qgis_run dryrun-cpu.log run deeplandcover:installdependencies -- WHAT=1 GPU=1 DRY_RUN=true \
      || { tail -30 "$OUT/dryrun-cpu.log"; fail "dry run WHAT=1 GPU=1"; }
    grep -q "download.pytorch.org/whl/cpu" "$OUT/dryrun-cpu.log" || fail "dry run: no CPU index"
    grep -qE "torch==[0-9.]+\+cpu" "$OUT/dryrun-cpu.log" || fail "dry run: no +cpu torch"
  else
    echo "dry run skipped: download.pytorch.org is not reachable from here" | tee -a "$OUT/summary.txt"
  fi
  echo "installer_check: PASS in $(( $(date +%s) - t0 )) s" | tee -a "$OUT/summary.txt"
}

main "$@"
