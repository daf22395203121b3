#!/usr/bin/env bash
# Run ParsNER's test suite on Python 3.14: a Debian 14 (forky, testing) root with Debian's Python 3.14, numpy 2.4
# and CPU torch 2.14 (python3-torch), built once outside the clone and reused. The recipe is tools/debian-py.sh
# (shared with tools/py313.sh); this is `tools/debian-py.sh forky ...`.
#
#   tools/py314.sh build               # create the root (once; idempotent; root only; network-bound, minutes)
#   tools/py314.sh test [PYTEST ARGS]  # build if needed, install the project there, run `python -m pytest -q ARGS`
#   tools/py314.sh shell [CMD...]      # a shell (or CMD) in the root's venv, on a fresh copy of the checkout
#   tools/py314.sh lock                # re-resolve the ranges there and write requirements/py314-dev.txt
#   tools/py314.sh clean               # delete the root (and its venv)
#
# Environment:
#   PARSNER_PY314_ROOT    the root; default ${XDG_CACHE_HOME:-$HOME/.cache}/parsner/debian-forky-py314
#   PARSNER_PY314_EXTRAS  extras installed with the project; default dev,hazm,onnx,serve,crf,ray,browser (hazm's
#                         markers leave it out on 3.14; the browser test skips: the root has no Chromium)
#   PARSNER_PY314_MIRROR  Debian mirror for debootstrap; default http://deb.debian.org/debian
#   PARSNER_SHARED        the shared folder (corpora, tokenizers); default ../shared beside the checkout if present
#
# Forky is Debian's testing suite: a root is a snapshot of the day it was built (its stamp says which);
# `tools/py314.sh clean` and a new build take a newer one.
case "${1:-}" in build | test | shell | lock | clean) exec bash "$(dirname "${BASH_SOURCE[0]}")/debian-py.sh" forky "$@" ;; esac
sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
exit 2
