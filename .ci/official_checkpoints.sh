#!/usr/bin/env bash
# CI step: the official-checkpoint conversion against all four official packages, in a virtual
# environment of its own. rf-groundingdino (the official Grounding DINO code) calls BertModel
# methods that transformers 5 removed, so this environment has transformers 4 (the project allows
# >= 4.46). The SAM-family packages also share the main environment: .ci/run installs them there,
# so their parity tests run with transformers 5 in the main test run as well.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv-official
# shellcheck disable=SC1091
. .venv-official/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test]" "transformers>=4.57,<5"
.ci/official_packages.sh --with-grounding-dino

# A database folder of its own, so no database service left by .ci/run's test run is joined. Both
# it and the environment (about 7 GB) go at the end.
FIFTYONE_DATABASE_DIR=$(mktemp -d)
trap 'rm -rf "$FIFTYONE_DATABASE_DIR" .venv-official' EXIT
export FIFTYONE_DATABASE_DIR
export FIFTYONE_DO_NOT_TRACK=true
# The README's test command on the parity tests (-s prints the differences measured); -rs lists
# skips: none is expected here.
python -m pytest -n 0 tests/official tests/models/test_official_formats.py -q -s -rs
