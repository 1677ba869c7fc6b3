#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG GPUS [train.py options]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. On CPU-only machines it runs gloo processes.
exec bash "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" --launcher pytorch "${@:3}"
