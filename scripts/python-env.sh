#!/usr/bin/env bash
# The API tests' real clients: a virtualenv at .venv with the aws CLI and boto3 from PyPI.
# Idempotent: does nothing when .venv already has both. The tests use .venv/bin/aws and
# .venv/bin/python3 when they exist (else whatever is on PATH).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

if [ -x .venv/bin/aws ] && .venv/bin/python3 -c 'import boto3, botocore' 2>/dev/null; then
    exit 0
fi
if ! python3 -m venv .venv 2>/dev/null; then
    # Debian's python3 needs its venv module from a package.
    apt-get update -q </dev/null
    apt-get install -y -q --no-install-recommends python3-venv python3-pip </dev/null
    rm -rf .venv
    python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check awscli boto3 </dev/null
.venv/bin/aws --version
