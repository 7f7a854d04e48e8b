#!/usr/bin/env bash
# The main job: sets everything up and runs the multi-cluster demo on this machine. See README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./setup.sh
exec bash demo/run.sh "$@"
