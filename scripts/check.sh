#!/usr/bin/env bash
# The whole test suite, as CI runs it: install with test extras, make sure PostgreSQL answers,
# lint (ruff), type-check (mypy), then pytest over SQLite and PostgreSQL, one worker per core (pytest-xdist;
# every test has its own store: a temporary folder, or a PostgreSQL schema of its own; `-n 0` runs it in one process).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "Running pip as the 'root' user" || true

export TRIALFLOW_TEST_PG_URL="${TRIALFLOW_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432; trying to start it"
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
fi

python3 -m ruff check .
# mypy sees the four folders under their installed names (trialflow.*) through a tree of symlinks,
# so cross-package imports are checked too (the editable install's import hook is invisible to it).
root=build/mypy/trialflow
mkdir -p "$root"
for pkg in documents protocol engine rules cli exchange web; do ln -sfn "$PWD/$pkg" "$root/$pkg"; done
(cd build/mypy && python3 -m mypy --config-file ../../pyproject.toml --explicit-package-bases -p trialflow)
python3 -m pytest -q -n auto "$@"
