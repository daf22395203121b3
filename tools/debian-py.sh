#!/usr/bin/env bash
# Run ParsNER's test suite on a newer Python than this machine's, in a Debian root with Debian's own Python, numpy
# and CPU torch (python3-torch), built once outside the clone and reused. One recipe for every suite:
#
#   SUITE    Python  Debian                       wrapper          root (under ~/.cache/parsner)  exact set
#   trixie   3.13    13 (stable): torch 2.6       tools/py313.sh   debian-trixie-py313            requirements/py313-dev.txt
#   forky    3.14    14 (testing): torch 2.14     tools/py314.sh   debian-forky-py314             requirements/py314-dev.txt
#
#   tools/debian-py.sh SUITE build               # create the root (once; idempotent; root only; network-bound, minutes)
#   tools/debian-py.sh SUITE test [PYTEST ARGS]  # build if needed, install the project there, run `python -m pytest -q ARGS`
#   tools/debian-py.sh SUITE shell [CMD...]      # a shell (or CMD) in the root's venv, on a fresh copy of the checkout
#   tools/debian-py.sh SUITE lock                # re-resolve the ranges there and write the suite's exact set
#   tools/debian-py.sh SUITE clean               # delete the root (and its venv)
#
# Environment (TAG is PY313 for trixie, PY314 for forky):
#   PARSNER_<TAG>_ROOT    the root; default ${XDG_CACHE_HOME:-$HOME/.cache}/parsner/debian-SUITE-pyNNN
#   PARSNER_<TAG>_EXTRAS  extras installed with the project; default: trixie dev,hazm,onnx,serve,crf;
#                         forky dev,hazm,onnx,serve,crf,ray,browser (what has Python 3.14 wheels; hazm's markers
#                         leave it out on 3.14, and the browser test skips: the root has no Chromium)
#   PARSNER_<TAG>_MIRROR  Debian mirror for debootstrap; default http://deb.debian.org/debian
#   PARSNER_SHARED        the shared folder (corpora, tokenizers); default ../shared beside the checkout if present
#
# How: the checkout's files (git's tracked and untracked-but-not-ignored files; no .git, .venv or run outputs) are
# copied afresh into ROOT/work/repo on every run, and the tests run on that copy, so nothing is ever written into
# the checkout (egg-info, caches, __pycache__ and test outputs land in the copy). The shared folder is bind-mounted
# read-only at /work/shared, with /proc, /sys and /dev; every mount is undone on exit, failure or signal. The venv
# (/opt/parsner-venv inside ROOT, --system-site-packages, so Debian's torch and numpy are the ones used; a pip
# constraint holds them so pip never replaces them with the registry's) is an editable install of the copy; it is
# rebuilt only when pyproject.toml (or setup.py), the suite's lock, the extras or this script's recipe change. One
# run at a time per root (flock): a second concurrent run waits for the first. Testing (forky) changes under us:
# a root is a snapshot of the day it was built; `clean` then `build` takes a newer one.
set -euo pipefail

usage() {
  sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

SUITE=${1:-}
[ $# -gt 0 ] && shift
# Per suite: the tag (messages, file names, environment), Python's version (checked in the new root), what the
# root holds (for messages), the default extras, pytest options for every pytest run there (PYTEST_ADDOPTS).
# forky's Hypothesis (Debian's python3-hypothesis 6.155, a torch dependency; trixie's 6.130 predates this) reads the
# constants of every "local" module on its first draw, and outside a venv's own site-packages Debian's dist-packages
# count as local: torch, sympy and the rest are parsed there, 7-9 s, which fails HealthCheck.too_slow for whichever
# property test draws first. Hypothesis's own `ci` profile (what it loads where $CI is set) suppresses that check,
# with derandomize and no deadline or database (each run's copy of the checkout is new anyway).
ADDOPTS=
case "$SUITE" in
  trixie) TAG=py313 PY=3.13 RELEASE="Debian 13" ABOUT="Python 3.13, numpy 2, torch 2.6"
          DEFAULT_EXTRAS=dev,hazm,onnx,serve,crf ;;
  forky)  TAG=py314 PY=3.14 RELEASE="Debian 14" ABOUT="Python 3.14, numpy 2.4, torch 2.14"
          DEFAULT_EXTRAS=dev,hazm,onnx,serve,crf,ray,browser ADDOPTS=--hypothesis-profile=ci ;;
  *) usage ;;
esac
setting() { local v="PARSNER_${TAG^^}_$1"; printf '%s' "${!v:-${2:-}}"; }

RECIPE=1   # bump when the venv recipe below changes, to rebuild existing venvs
ROOT=$(setting ROOT "${XDG_CACHE_HOME:-$HOME/.cache}/parsner/debian-$SUITE-$TAG")
EXTRAS=$(setting EXTRAS "$DEFAULT_EXTRAS")
MIRROR=$(setting MIRROR http://deb.debian.org/debian)
NO_LOCK=$(setting NO_LOCK)   # set by `lock` (resolve the ranges afresh)
PKGS=python3,python3-venv,python3-pip,python3-dev,python3-torch,python3-numpy,ca-certificates,make,git,gcc,g++,mount
VENV=/opt/parsner-venv
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WRAPPER=tools/$TAG.sh
STAMP=.parsner-$TAG-root-complete
# The exact set tested on this Python beside Debian's torch and numpy (pip constraints; regenerate: WRAPPER lock)
LOCK=requirements/$TAG-dev.txt

say() { echo "$TAG: $*" >&2; }
die() { say "error: $*"; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot and bind mounts need it); try: sudo $WRAPPER $*"
  command -v flock >/dev/null || die "flock (util-linux) is needed"
  command -v chroot >/dev/null || die "chroot (coreutils) is needed"
}

# One run at a time per root: build, test and clean all hold this lock for their whole duration.
take_lock() {
  mkdir -p "$(dirname "$ROOT")"
  exec 9>"$ROOT.lock"
  if ! flock -n 9; then
    say "another $TAG run holds $ROOT.lock; waiting for it"
    flock 9
  fi
}

# Mount points under DIR, deepest first (only called while holding the lock, so any found are stale).
mounts_under() {
  findmnt -rn -o TARGET | awk -v d="$1/" 'index($0, d) == 1' | sort -r
}

unmount_stale() {
  local m
  for m in $(mounts_under "$1"); do
    say "unmounting stale $m"
    umount -R "$m" 2>/dev/null || umount -l "$m" || die "cannot unmount stale $m; remove it by hand"
  done
}

remove_tree() {   # delete a (possibly half-built) root, never crossing into a mounted file system
  [ -e "$1" ] || return 0
  unmount_stale "$1"
  [ -z "$(mounts_under "$1")" ] || die "$1 still has mounts; not deleting it"
  rm -rf --one-file-system "$1"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return 0
  command -v apt-get >/dev/null || die "debootstrap is not installed and there is no apt-get to install it; install debootstrap and retry"
  say "installing debootstrap with apt-get"
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; } >/dev/null 2>&1 ||
    die "apt-get could not install debootstrap; install it and retry"
  command -v debootstrap >/dev/null || die "debootstrap still not found after apt-get install"
}

# The debootstrap script for SUITE: none (debootstrap's own) when it knows the suite; else its `sid` script, which
# every suite since bookworm shares (Debian 12's debootstrap predates forky's name).
debootstrap_script() {
  local dir=${DEBOOTSTRAP_DIR:-/usr/share/debootstrap}/scripts
  [ -e "$dir/$SUITE" ] && return 0
  [ -e "$dir/sid" ] || die "this debootstrap knows neither '$SUITE' nor 'sid' (no $dir/$SUITE); install a newer debootstrap"
  say "this debootstrap has no '$SUITE' script; using its 'sid' one (shared by every suite since bookworm)"
  echo "$dir/sid"
}

host_ca() {
  local f
  for f in "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
    [ -n "$f" ] && [ -s "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

refresh_host_files() {   # CA bundle (for pip behind a TLS-inspecting proxy) and DNS, from this machine
  local ca
  if ca=$(host_ca); then cp -L "$ca" "$1/etc/host-ca.crt"; else cp -L "$1/etc/ssl/certs/ca-certificates.crt" "$1/etc/host-ca.crt"; fi
  [ -e /etc/resolv.conf ] && { rm -f "$1/etc/resolv.conf"; cp -L /etc/resolv.conf "$1/etc/resolv.conf"; } || true
}

build_root() {   # called with the lock held
  if [ -f "$ROOT/$STAMP" ]; then
    refresh_host_files "$ROOT"
    say "root ready: $ROOT ($(cat "$ROOT/$STAMP"))"
    return 0
  fi
  ensure_debootstrap
  # A root without the stamp is the leftover of an interrupted build (or a foreign directory): rebuild it.
  if [ -e "$ROOT" ]; then say "$ROOT is incomplete (no $STAMP); rebuilding it"; remove_tree "$ROOT"; fi
  local part="$ROOT.partial"
  if [ -e "$part" ]; then say "removing $part, left by an interrupted build"; remove_tree "$part"; fi
  local script
  script=$(debootstrap_script)
  say "debootstrap $SUITE into $part ($ABOUT; network-bound, several minutes)"
  local t0=$SECONDS
  debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$part" "$MIRROR" $script >"$ROOT.debootstrap.log" 2>&1 || {
    tail -n 20 "$ROOT.debootstrap.log" >&2; die "debootstrap failed (full log: $ROOT.debootstrap.log)"; }
  chroot "$part" apt-get clean
  refresh_host_files "$part"
  local versions
  versions=$(chroot "$part" env -i PATH=/usr/bin:/bin python3 -c \
    'import sys, torch, numpy; print(f"python {sys.version.split()[0]}, torch {torch.__version__}, numpy {numpy.__version__}")' \
    2>/dev/null | tail -n 1) || die "the new root's python3 cannot import torch and numpy"
  case "$versions" in
    "python $PY".*) ;;
    *) die "the new root ($part) has $versions, not Python $PY: $SUITE moved on; adapt this script's suite table" ;;
  esac
  echo "$versions; built $(date -u +%FT%TZ) from $MIRROR" >"$part/$STAMP"   # written last: marks the root complete
  mv "$part" "$ROOT"
  say "root built in $((SECONDS - t0)) s: $ROOT ($versions)"
}

# ---- test / shell: mounts, a fresh copy of the checkout, the venv ----------------------------------------------
MOUNTED=()
cleanup_mounts() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount -R "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" 2>/dev/null || say "warning: could not unmount ${MOUNTED[i]}"
  done
  MOUNTED=()
}

bind() {   # bind SRC DST [ro]: recursive, and a slave so unmounting never propagates back to the host's mounts
  mkdir -p "$2"
  mount --rbind "$1" "$2"
  MOUNTED+=("$2")
  mount --make-rslave "$2"
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

copy_checkout() {   # the checkout's files, as a fresh clone plus uncommitted work would have them
  local dst="$ROOT/work/repo"
  rm -rf --one-file-system "$dst"
  mkdir -p "$dst"
  if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done |
      tar --null -T - -cf -) | tar -xf - -C "$dst"
  else
    tar -C "$REPO" --exclude=./.git --exclude=./.venv --exclude='*.egg-info' --exclude=__pycache__ -cf - . | tar -xf - -C "$dst"
  fi
}

shared_dir() {
  if [ -n "${PARSNER_SHARED:-}" ]; then
    [ -d "$PARSNER_SHARED" ] || die "PARSNER_SHARED=$PARSNER_SHARED is not a folder"
    (cd "$PARSNER_SHARED" && pwd)
  elif [ -d "$REPO/../shared" ]; then
    (cd "$REPO/../shared" && pwd)
  fi
}

in_root() {   # run a bash script in the root, in a clean, offline-for-the-Hub environment
  local pass=() v
  for v in CI PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_DEFAULT_TIMEOUT http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!v:-}" ] && pass+=("$v=${!v}")
  done
  chroot "$ROOT" env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
    PATH="$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    PIP_CERT=/etc/host-ca.crt SSL_CERT_FILE=/etc/host-ca.crt REQUESTS_CA_BUNDLE=/etc/host-ca.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_CONSTRAINT="$VENV/debian-constraints.txt" \
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
    ${SHARED_IN:+PARSNER_SHARED=$SHARED_IN} ${ADDOPTS:+PYTEST_ADDOPTS=$ADDOPTS} "${pass[@]}" \
    bash -c "$@"
}

prepare() {   # mounts, copy, venv; leaves the mounts for the caller's command (undone by the EXIT trap)
  trap cleanup_mounts EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  unmount_stale "$ROOT"
  refresh_host_files "$ROOT"
  bind /proc "$ROOT/proc"
  bind /sys "$ROOT/sys" ro
  bind /dev "$ROOT/dev"
  local shared
  shared=$(shared_dir)
  SHARED_IN=
  if [ -n "$shared" ]; then bind "$shared" "$ROOT/work/shared" ro; SHARED_IN=/work/shared
  else say "no shared folder (set PARSNER_SHARED); tests that need the corpora will skip"; fi
  local t0=$SECONDS
  copy_checkout
  [ -f "$ROOT/work/repo/pyproject.toml" ] || die "no pyproject.toml in the copy of $REPO"

  local want have=
  want="recipe $RECIPE${NO_LOCK:+ unlocked}; extras $EXTRAS; spec $(cd "$ROOT/work/repo" && cat pyproject.toml $(ls setup.py setup.cfg $LOCK 2>/dev/null) | sha256sum | cut -d' ' -f1)"
  [ -f "$ROOT$VENV/.parsner-stamp" ] && have=$(cat "$ROOT$VENV/.parsner-stamp")
  if [ "$want" != "$have" ]; then
    say "creating $VENV in the root (pyproject.toml, extras or recipe changed) and installing .[$EXTRAS]"
    rm -rf --one-file-system "$ROOT$VENV"
    in_root '
      set -euo pipefail
      python3 -m venv --system-site-packages '"$VENV"'
      # Debian'"'"'s torch and numpy are what this run tests: pip may not replace them with the registry'"'"'s.
      python3 -c "from importlib.metadata import version as v; print(f\"torch=={v(\"torch\")}\nnumpy=={v(\"numpy\")}\")" \
        > '"$VENV"'/debian-constraints.txt
      # Debian'"'"'s pip needs a newer pip/setuptools/wheel before sdist-only packages (seqeval) build.
      PIP_CONSTRAINT= pip install -q -U pip setuptools wheel
      lock=; [ -f /work/repo/'"$LOCK"' ] && [ -z "'"$NO_LOCK"'" ] && lock="-c /work/repo/'"$LOCK"'"
      pip install -q $lock -e "/work/repo['"$EXTRAS"']"' ||
      die "installing the project in the root failed (a dependency not installable on Python $PY, or one that
  conflicts with Debian's torch/numpy: see $ROOT$VENV/debian-constraints.txt)"
    echo "$want" >"$ROOT$VENV/.parsner-stamp"
  else
    # Same dependency spec: only refresh the editable install's metadata for the new copy (no network).
    in_root 'pip install -q --no-deps --no-build-isolation -e /work/repo' || die "re-installing the project failed"
  fi
  say "venv + install: $((SECONDS - t0)) s"
}

cmd_test() {
  prepare
  local t0=$SECONDS rc=0
  in_root '
    cd /work/repo
    python -c "import sys, torch, numpy; print(\"Python\", sys.version); print(\"torch\", torch.__version__, \"numpy\", numpy.__version__)"
    python -m pytest -q "$@" 2>&1 | tee /tmp/pytest.log
    rc=${PIPESTATUS[0]}
    echo "'"$TAG"': pytest summary: $(grep -E "^=* ?[0-9]+ (passed|failed|error|skipped|deselected)|no tests ran" /tmp/pytest.log | tail -n 1 | tr -d "=" | sed "s/^ *//; s/ *$//")"
    exit "$rc"' bash "$@" || rc=$?
  say "suite: $((SECONDS - t0)) s (exit $rc)"
  return "$rc"
}

cmd_shell() {
  prepare
  if [ $# -eq 0 ]; then in_root 'cd /work/repo && exec bash -i'
  else in_root 'cd /work/repo && exec "$@"' bash "$@"; fi
}

cmd_lock() {   # resolve the ranges afresh (no lock) and write what pip picked to the checkout's LOCK
  NO_LOCK=1
  prepare
  { echo "# The exact set \`$WRAPPER test\` installs on Python $PY beside $RELEASE's torch and numpy (pip"
    echo "# constraints; users get the ranges in pyproject.toml). Regenerate after a range change: $WRAPPER lock"
    in_root 'pip freeze --local --exclude-editable | grep -vE "^(pip|parsner)==" | LC_ALL=C sort -f'
  } >"$REPO/$LOCK.new" && mv "$REPO/$LOCK.new" "$REPO/$LOCK"
  say "wrote $REPO/$LOCK"
}

verb=${1:-}
[ $# -gt 0 ] && shift
case "$verb" in
  build) need_root build; take_lock; build_root ;;
  test) need_root test; take_lock; build_root; cmd_test "$@" ;;
  shell) need_root shell; take_lock; build_root; cmd_shell "$@" ;;
  lock) need_root lock; take_lock; build_root; cmd_lock ;;
  clean) need_root clean; take_lock; remove_tree "$ROOT"; remove_tree "$ROOT.partial"; rm -f "$ROOT.debootstrap.log"; say "removed $ROOT" ;;
  *) usage ;;
esac
