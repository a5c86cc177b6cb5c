#!/usr/bin/env bash
# The suite on the declared lowest versions: a second environment in which every direct
# dependency with a ">=" bound is pinned to that bound (.ci/floors.py), torch and torchvision
# excepted (their old wheels are several GB; the README says so). Runs the README's test command
# against a database of its own, so no database service left by an earlier run is joined.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv-floor
# shellcheck disable=SC1091
. .venv-floor/bin/activate
python -m pip install -q --upgrade pip
python .ci/floors.py > .venv-floor/floors.txt
echo "lowest versions:"; sed 's/^/  /' .venv-floor/floors.txt
python -m pip install -q -e ".[test]" -c .venv-floor/floors.txt
python -m pip list 2>/dev/null | grep -iE "^(fiftyone|transformers|timm|tokenizers|huggingface.hub|safetensors|pillow|numpy|torch|torchvision) "

db=$(mktemp -d)
port=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
mongod=$(python -c "import importlib.util as u, os; print(os.path.join(os.path.dirname(u.find_spec('fiftyone').origin), 'db', 'bin', 'mongod'))")
"$mongod" --dbpath "$db" --port "$port" --bind_ip 127.0.0.1 --fork --logpath "$db/mongod.log" >/dev/null
# The environment goes too (about 7 GB): CI's disk holds two of them, not three.
trap '"$mongod" --dbpath "$db" --shutdown >/dev/null 2>&1 || true; rm -rf "$db" .venv-floor' EXIT
export FIFTYONE_DATABASE_URI="mongodb://127.0.0.1:$port"
export FIFTYONE_DO_NOT_TRACK=true

python -m pytest
