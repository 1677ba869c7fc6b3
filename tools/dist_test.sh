#!/usr/bin/env bash
# Usage: tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (see tools/dist_run.sh).
exec bash "$(dirname "$0")/dist_run.sh" test.py "$3" "$1" "$2" --launcher pytorch "${@:4}"
