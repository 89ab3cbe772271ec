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
# summarised; the other runtimes answer; a version standard:7.0 lacks fails with the cloud's
# message; and every version AWS's standard:7.0 runtimes.yml lists (crates/buildspec/data/
# cloud-runtimes.yml) either runs with that version (its own --version output) or stops saying
# the cloud image has it and this machine cannot get it offline; a version neither lists is
# installed by the `default` entry when the build reaches Debian's mirror. ONLY=versions runs
# only the per-version checks (about 4 minutes); ONLY=other skips them.
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

# run_on_7_0 NAME BUILDSPEC-TEXT: run it on -i aws/codebuild/standard:7.0; log in $TMP/NAME.log
run_on_7_0() {
    mkdir -p "$TMP/$1"
    printf '%s\n' "$2" > "$TMP/$1/buildspec.yml"
    "$LB" run -s "$TMP/$1" -i aws/codebuild/standard:7.0 > "$TMP/$1.log" 2>&1 || true
}

# The version's own answer, for each runtime (a fixed string in the output).
check_of() { # check_of RUNTIME VERSION -> "COMMAND=>EXPECTED"
    case $1 in
        java) echo "java -version 2>&1 | head -n 1; javac -version; echo JAVA_HOME=\$JAVA_HOME=>version \"${2#corretto}" ;;
        python) echo "python --version; pip --version=>Python $2." ;;
        nodejs) echo "node --version; npm --version=>v$2." ;;
        golang) echo "go version=>go$2" ;;
        ruby) echo "ruby --version=>ruby $2." ;;
        php) echo "php --version=>PHP $2." ;;
        dotnet) echo "dotnet --version=>$2" ;;
    esac
}

if [ "${ONLY:-}" != "" ] && [ "${ONLY:-}" != versions ]; then :; else
# 0. Every version standard:7.0 lists: runs, or says the cloud has it and it is not here.
DATA="$ROOT/crates/buildspec/data/cloud-runtimes.yml"
awk '/file: ubuntu\/standard\/7.0\// { on = 1; next } /- file:/ { on = 0 } on && /^      [a-z]+: \[/ { print }' "$DATA" |
while IFS= read -r line; do
    rt=$(echo "$line" | sed 's/^ *\([a-z]*\):.*/\1/')
    for v in $(echo "$line" | sed 's/.*\[\(.*\)\]/\1/; s/,/ /g'); do
        [ "$v" = default ] && continue
        c=$(check_of "$rt" "$v"); cmd=${c%%=>*}; want=${c#*=>}; name="v-$rt-$(echo "$v" | tr . _)"
        run_on_7_0 "$name" "version: 0.2
phases:
  install:
    runtime-versions:
      $rt: $v
  build:
    commands:
      - $cmd"
        log="$TMP/$name.log"
        if grep -qF -- "$want" "$log" && grep -q "Phase complete: BUILD State: SUCCEEDED" "$log"; then
            say "ok: $rt $v runs ($(grep -F -- "$want" "$log" | head -n 1 | sed 's/^.*] //'))"
            echo "runs $rt $v" >> "$TMP/versions.txt"
        elif grep -qF "aws/codebuild/standard:7.0 has $rt $v; the local image localbuild/codebuild-standard:1.0 does not have it and cannot get it offline" "$log"; then
            say "ok: $rt $v is not here, and the build says so"
            echo "absent $rt $v" >> "$TMP/versions.txt"
        else
            say "FAILED: $rt $v neither runs nor says why (log $log)"
            echo "FAILED $rt $v" >> "$TMP/versions.txt"
        fi
    done
done
say "versions of standard:7.0: $(grep -c '^runs' "$TMP/versions.txt") run here, $(grep -c '^absent' "$TMP/versions.txt") are not here: $(grep '^absent' "$TMP/versions.txt" | cut -d' ' -f2- | tr '\n' ',' | sed 's/,$//')"
fails=$((fails + $(grep -c '^FAILED' "$TMP/versions.txt" || true)))
fi
[ "${ONLY:-}" = versions ] && { [ "$fails" -eq 0 ] && say "all checks passed" && exit 0; say "$fails check(s) failed"; exit 1; }

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
      - node --version && npm --version && yarn --version && java -version && mvn -v && gradle --version && go version && ruby --version && bundle --version && php --version && composer --version && docker --version && gcc --version && gpg --version && sudo --version && command -v xvfb-run && test -d /root/.m2 && aws --version
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
expect "corretto17 selected" "$TMP/java.log" "Installing Java version 17 ..."
expect "JAVA_HOME exported" "$TMP/java.log" "JAVA_HOME=/opt/localbuild/java/corretto17"
printf 'version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 2.x\n' > "$TMP/java/buildspec.yml"
code=0
"$LB" run -s "$TMP/java" -i aws/codebuild/standard:7.0 > "$TMP/unknown.log" 2>&1 || code=$?
expect "unknown version exits 1 (got $code)" <(echo "exit $code") "exit 1"
expect "unknown version message" "$TMP/unknown.log" "Unknown runtime version named '2.x' of python. This build image has the following versions: 3.9, 3.10, 3.11, 3.12, 3.13, 3.14"

# 4. A version neither image lists: the cloud's `default` entry would install it, and so does the
# stand-in's when the build reaches Debian's mirror (Go 1.15 is bullseye's).
run_on_7_0 default "version: 0.2
phases:
  install:
    runtime-versions:
      golang: 1.15
  build:
    commands:
      - go version"
expect "default entry installs golang 1.15 at build time" "$TMP/default.log" "go version go1.15."

if [ "$fails" -gt 0 ]; then
    say "$fails check(s) failed; logs:"; tail -n 40 "$TMP"/*.log >&2; exit 1
fi
say "all checks passed"
