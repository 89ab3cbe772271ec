#!/usr/bin/env bash
# End-to-end checks of the CodeBuild-like image localbuild/codebuild-standard:1.0 through the AWS
# name it stands in for. Not part of `cargo test`: the image's first build takes about 10
# minutes and 1.9 GB (README, "Build images"), more than CI's budget; run it after changing
# crates/docker/codebuild-standard/ or the runtime-versions code:
#
#   cargo build && scripts/check-standard-image.sh      # builds the image first if missing
#
# Checks: `-i aws/codebuild/standard:7.0` runs on the stand-in with its log line; `python: 3.11`
# selects the image's Python (python3 --version, pip3 install of a package already present);
# AWS's pytest example (test reports doc, placeholders filled) passes and its JUnit report is
# summarised; the other runtimes answer; an unknown version fails as CodeBuild does.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LB=${LOCALBUILD:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/localbuild}
[ -x "$LB" ] || { echo "check-standard-image: $LB missing; run cargo build (or set LOCALBUILD)" >&2; exit 2; }
TMP=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
export LOCALBUILD_HOME="$TMP/home"
fails=0
say() { printf 'check-standard-image: %s\n' "$*" >&2; }
expect() { # expect NAME FILE PATTERN: the fixed string PATTERN is in FILE
    if grep -qF -- "$3" "$2"; then say "ok: $1"; else say "FAILED: $1 (no '$3' in $2)"; fails=$((fails + 1)); fi
}

say "image: $("$LB" image ls | grep codebuild-standard || true)"

# 1. Python 3.11 through the AWS image name.
mkdir -p "$TMP/py"
cat > "$TMP/py/buildspec.yml" <<'YAML'
version: 0.2
phases:
  install:
    runtime-versions:
      python: 3.11
  build:
    commands:
      - python3 --version
      - pip3 install pytest
      - node --version && npm --version && java -version && mvn -v && gradle --version && go version && ruby --version && bundle --version && php --version && composer --version && docker --version && gcc --version && aws --version
YAML
code=0
"$LB" run -s "$TMP/py" -i aws/codebuild/standard:7.0 > "$TMP/py.log" 2>&1 || code=$?
expect "python build exits 0 (got $code)" <(echo "exit $code") "exit 0"
expect "stand-in line" "$TMP/py.log" "Image aws/codebuild/standard:7.0 is not on this machine and cannot be pulled: the local stand-in localbuild/codebuild-standard:1.0 runs this build"
expect "python selected" "$TMP/py.log" "Selecting 'python' runtime version '3.11' based on manual selections..."
expect "python install command" "$TMP/py.log" "Installing Python version 3.11 ..."
expect "python3 --version" "$TMP/py.log" "Python 3.11."
expect "pip3 install of a present package" "$TMP/py.log" "Requirement already satisfied: pytest"
expect "node 18" "$TMP/py.log" "v18."
expect "go 1.19" "$TMP/py.log" "go version go1.19"
expect "composer" "$TMP/py.log" "Composer version"
expect "aws CLI (Debian's awscli)" "$TMP/py.log" "aws-cli/2."

# 2. AWS's pytest example (CodeBuild docs, "Set up test reporting with pytest").
mkdir -p "$TMP/pytest"
cat > "$TMP/pytest/buildspec.yml" <<'YAML'
version: 0.2

phases:
  install:
    runtime-versions:
      python: 3.11
    commands:
      - pip3 install pytest
  build:
    commands:
      - python -m pytest --junitxml=test-reports/report.xml

reports:
  pytest_reports:
    files:
      - report.xml
    base-directory: test-reports
    file-format: JUNITXML
YAML
cat > "$TMP/pytest/test_sample.py" <<'PY'
def inc(x):
    return x + 1


def test_inc():
    assert inc(3) == 4


def test_inc_zero():
    assert inc(0) == 1
PY
code=0
"$LB" run -s "$TMP/pytest" -i aws/codebuild/standard:7.0 -r "$TMP/reports" > "$TMP/pytest.log" 2>&1 || code=$?
expect "pytest build exits 0 (got $code)" <(echo "exit $code") "exit 0"
expect "pytest ran" "$TMP/pytest.log" "2 passed"
expect "JUnit report summarised" "$TMP/pytest.log" "Report pytest_reports: "

# 3. Java by CodeBuild's name, and an unknown version.
mkdir -p "$TMP/java"
printf 'version: 0.2\nphases:\n  install:\n    runtime-versions:\n      java: corretto17\n  build:\n    commands:\n      - echo "JAVA_HOME=$JAVA_HOME"\n' > "$TMP/java/buildspec.yml"
"$LB" run -s "$TMP/java" -i aws/codebuild/standard:7.0 > "$TMP/java.log" 2>&1 || true
expect "corretto17 served by OpenJDK 17" "$TMP/java.log" "corretto17 is served by Debian's OpenJDK 17"
expect "JAVA_HOME exported" "$TMP/java.log" "JAVA_HOME=/usr/lib/jvm/default-java"
printf 'version: 0.2\nphases:\n  install:\n    runtime-versions:\n      nodejs: 20\n' > "$TMP/java/buildspec.yml"
code=0
"$LB" run -s "$TMP/java" -i aws/codebuild/standard:7.0 > "$TMP/unknown.log" 2>&1 || code=$?
expect "unknown version exits 1 (got $code)" <(echo "exit $code") "exit 1"
expect "unknown version message" "$TMP/unknown.log" "Unknown runtime version named '20' of nodejs. This build image has the following versions: 18"

if [ "$fails" -gt 0 ]; then
    say "$fails check(s) failed; logs:"; tail -n 40 "$TMP"/*.log >&2; exit 1
fi
say "all checks passed"
