#!/usr/bin/env bash
# Run ParsNER's test suite on Python 3.13: a Debian 13 (trixie) root with Debian's Python 3.13, numpy 2 and CPU
# torch 2.6 (python3-torch), built once outside the clone and reused. The recipe is tools/debian-py.sh (shared with
# tools/py314.sh); this is `tools/debian-py.sh trixie ...`.
#
#   tools/py313.sh build               # create the root (once; idempotent; root only; network-bound, minutes)
#   tools/py313.sh test [PYTEST ARGS]  # build if needed, install the project there, run `python -m pytest -q ARGS`
#   tools/py313.sh shell [CMD...]      # a shell (or CMD) in the root's venv, on a fresh copy of the checkout
#   tools/py313.sh lock                # re-resolve the ranges there and write requirements/py313-dev.txt
#   tools/py313.sh clean               # delete the root (and its venv)
#
# Environment:
#   PARSNER_PY313_ROOT    the root; default ${XDG_CACHE_HOME:-$HOME/.cache}/parsner/debian-trixie-py313
#   PARSNER_PY313_EXTRAS  extras installed with the project; default dev,hazm,onnx,serve,crf
#   PARSNER_PY313_MIRROR  Debian mirror for debootstrap; default http://deb.debian.org/debian
#   PARSNER_SHARED        the shared folder (corpora, tokenizers); default ../shared beside the checkout if present
case "${1:-}" in build | test | shell | lock | clean) exec bash "$(dirname "${BASH_SOURCE[0]}")/debian-py.sh" trixie "$@" ;; esac
sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
exit 2
