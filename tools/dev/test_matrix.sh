#!/usr/bin/env bash
# `make test-matrix`: the whole test suite (training and qgis_process end to end included) on the QGIS
# versions users run, each in a Debian chroot whose Python stack comes from Debian's own packages:
#
#   trixie  QGIS 3.40 LTR, Python 3.13, NumPy 2.2, torch 2.6
#   forky   QGIS 3.44 LTR, Python 3.14, NumPy 2.4, torch 2.14
#
# Usage: tools/dev/test_matrix.sh [SUITE ...]   (default: trixie forky; extra pytest args in PYTEST_ARGS)
# Needs root (debootstrap, chroot, mounts). A chroot that is already there is reused; it is rebuilt
# only when its package list changes. Chroots live in $DLC_CHROOT_DIR (default
# /var/cache/deeplandcover/chroots), about 3.3 GB each; building one takes about 7 minutes.
# Mounts are made in a private mount namespace (unshare), so nothing stays mounted after a run.
# Each suite's result and wall time are written to $MATRIX_REPORT (default matrix_output/).
# tests/integration/test_crossversion.py runs the deterministic chain through qgis_process first on the host (Debian
# 12, QGIS 3.22, the .venv of `make setup`), then in each chroot, and compares the outputs with the
# host's; they are kept in matrix_output/crossversion/<QGIS version>/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHROOTS="${DLC_CHROOT_DIR:-/var/cache/deeplandcover/chroots}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
REPORT="${MATRIX_REPORT:-$REPO/matrix_output}"
CROSSVERSION="$REPO/matrix_output/crossversion"  # inside the repository: the chroots see it
DATA="${DLC_DATA:?set DLC_DATA to the sample data folder (make test-matrix does: $DLC_DATA or the make data cache)}"
WEIGHTS="${DLC_WEIGHTS_DIR:-}"  # pre-trained weights (CI: ../shared/weights), mounted at /weights; empty: none
SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=(trixie forky)

# Debian's packages for QGIS and everything the plugin and its tests import. pip installs only what
# Debian does not package (PIP_PACKAGES) into a venv that sees the system site-packages.
DEB_PACKAGES=(
  qgis python3-qgis qgis-providers
  python3-numpy python3-rasterio python3-affine python3-onnxruntime python3-onnx python3-torch
  python3-geopandas python3-pandas python3-pyogrio python3-shapely python3-pyproj proj-bin
  python3-scipy python3-matplotlib python3-dask python3-distributed python3-sklearn python3-psutil python3-pooch
  python3-pytest python3-pytest-timeout python3-pip python3-venv ca-certificates make git
)
PIP_PACKAGES=("pytest-qgis>=5")
STAMP_TEXT="$(printf '%s\n' "${DEB_PACKAGES[@]}" "${PIP_PACKAGES[@]}")"

log() { printf '>> [%s] %s\n' "$(date +%T)" "$*"; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "test-matrix needs root (debootstrap, chroot, mounts): run it as root or with sudo" >&2
    exit 2
  fi
}

ensure_host_tools() {
  command -v debootstrap >/dev/null && command -v unshare >/dev/null && return
  log "installing debootstrap on the host"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap util-linux >/dev/null
}

# Run a command inside the chroot with /proc, /sys, /dev, /dev/shm and the repository mounted, in a
# private mount namespace: the mounts vanish when the command ends, whatever happens.
in_chroot() {
  local root="$1"; shift
  unshare --mount --propagation private -- bash -euo pipefail -c '
    root="$1"; repo="$2"; data="$3"; weights="$4"; shift 4
    mount -t proc proc "$root/proc"
    mount -t sysfs sys "$root/sys"
    mount --bind /dev "$root/dev"
    mount -t devpts devpts "$root/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null || true
    mkdir -p "$root/dev/shm" && mount -t tmpfs -o size=4g shm "$root/dev/shm"
    mkdir -p "$root/src/deeplandcover"
    mount --bind "$repo" "$root/src/deeplandcover"
    if [ -n "$data" ]; then mkdir -p "$root/data" && mount --bind "$data" "$root/data"; fi
    if [ -n "$weights" ]; then mkdir -p "$root/weights" && mount --bind "$weights" "$root/weights"; fi
    cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      DEBIAN_FRONTEND=noninteractive "$@"
  ' in_chroot "$root" "$REPO" "$DATA" "$WEIGHTS" "$@"
}

build_chroot() {
  local suite="$1" root="$CHROOTS/$1"
  if [ ! -x "$root/usr/bin/apt-get" ] || [ ! -f "$root/.dlc-debootstrap" ]; then
    log "$suite: debootstrap into $root"
    rm -rf "$root"
    mkdir -p "$CHROOTS"
    local script=()
    # bookworm's debootstrap has no script for forky (testing): sid's works for it.
    [ -f "/usr/share/debootstrap/scripts/$suite" ] || script=(/usr/share/debootstrap/scripts/sid)
    debootstrap --variant=minbase "$suite" "$root" "$MIRROR" "${script[@]}" >"$CHROOTS/$suite.debootstrap.log" 2>&1 \
      || { tail -20 "$CHROOTS/$suite.debootstrap.log"; exit 1; }
    touch "$root/.dlc-debootstrap"
  fi
  if [ -f "$root/.dlc-packages" ] && [ "$(cat "$root/.dlc-packages")" = "$STAMP_TEXT" ]; then
    log "$suite: reusing $root"
    return
  fi
  log "$suite: installing QGIS and the Python stack from Debian"
  # The host's extra CA certificates (a proxy's), so that apt and pip inside reach the registries.
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/* "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  # A testing suite's Release file may have expired: do not refuse it for that.
  in_chroot "$root" apt-get -qq -o Acquire::Check-Valid-Until=false update
  in_chroot "$root" apt-get install -y -qq --no-install-recommends "${DEB_PACKAGES[@]}" \
    >"$CHROOTS/$suite.apt.log" 2>&1 || { tail -30 "$CHROOTS/$suite.apt.log"; exit 1; }
  in_chroot "$root" update-ca-certificates >/dev/null
  in_chroot "$root" rm -rf /opt/dlc-venv
  in_chroot "$root" python3 -m venv --system-site-packages /opt/dlc-venv
  in_chroot "$root" /opt/dlc-venv/bin/python -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}"
  in_chroot "$root" apt-get clean
  printf '%s' "$STAMP_TEXT" >"$root/.dlc-packages"
}

run_suite() {
  local suite="$1" root="$CHROOTS/$1" t0 rc
  mkdir -p "$REPORT"
  in_chroot "$root" /opt/dlc-venv/bin/python - <<'EOF' | tee "$REPORT/$suite.versions.txt"
import importlib.metadata as md, platform
from qgis.core import Qgis
names = ["numpy", "GDAL", "rasterio", "affine", "torch", "onnx", "onnxruntime", "geopandas", "pandas",
         "shapely", "pyproj", "dask", "pytest-qgis"]
vers = []
for n in names:
    try:
        vers.append(f"{n} {md.version(n)}")
    except md.PackageNotFoundError:
        vers.append(f"{n} -")
print(f"QGIS {Qgis.version()}, Python {platform.python_version()}: " + ", ".join(vers))
EOF
  log "$suite: pytest"
  t0=$(date +%s)
  set +e
  # The repository is mounted read-write at /src/deeplandcover (importable as `deeplandcover` from /src);
  # a DLC_DATA folder of the host at /data, a DLC_WEIGHTS_DIR folder at /weights.
  in_chroot "$root" /usr/bin/env -C /src/deeplandcover QT_QPA_PLATFORM=offscreen PYTHONPATH=/src ${DATA:+DLC_DATA=/data} ${WEIGHTS:+DLC_WEIGHTS_DIR=/weights} \
    DLC_CROSSVERSION_DIR=/src/deeplandcover/matrix_output/crossversion \
    PYTHONDONTWRITEBYTECODE=1 /opt/dlc-venv/bin/python -m pytest ${PYTEST_ARGS:-} 2>&1 | tee "$REPORT/$suite.log"
  rc=${PIPESTATUS[0]}
  set -e
  echo "$suite rc=$rc seconds=$(( $(date +%s) - t0 ))" | tee -a "$REPORT/summary.txt"
  return "$rc"
}

# The reference run of tests/integration/test_crossversion.py on the host's QGIS (Debian 12, 3.22), through
# the Makefile's own test target (its venv, its cleaned PATH).
run_host_reference() {
  local t0
  log "host: reference run of tests/integration/test_crossversion.py"
  rm -rf "$CROSSVERSION" && mkdir -p "$CROSSVERSION"
  t0=$(date +%s)
  DLC_CROSSVERSION_DIR="$CROSSVERSION" make -s -C "$REPO" test PYTEST_ARGS="-q tests/integration/test_crossversion.py" \
    >"$REPORT/host-crossversion.log" 2>&1 || { tail -40 "$REPORT/host-crossversion.log"; exit 1; }
  echo "host crossversion_seconds=$(( $(date +%s) - t0 ))" >>"$REPORT/summary.txt"
}

main() {
  need_root
  ensure_host_tools
  local failed=() suite t0
  mkdir -p "$REPORT"
  : >"$REPORT/summary.txt"
  run_host_reference
  for suite in "${SUITES[@]}"; do
    t0=$(date +%s)
    build_chroot "$suite"
    echo "$suite setup_seconds=$(( $(date +%s) - t0 ))" >>"$REPORT/summary.txt"
    run_suite "$suite" || failed+=("$suite")
  done
  cat "$REPORT/summary.txt"
  if [ ${#failed[@]} -gt 0 ]; then
    echo "test-matrix: failed on ${failed[*]}" >&2
    exit 1
  fi
}

main
