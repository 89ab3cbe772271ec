#!/usr/bin/env bash
# The tutorial, end to end on this machine (the README's quick start):
#   1. `localbuild run` of buildspecs/hello.yml, as a CodeBuild build in Docker;
#   2. `localbuild serve`, then the tutorial's aws CLI commands against it: create-project,
#      start-build, batch-get-builds until the build completes, logs get-log-events.
# Needs scripts/setup.sh first (Docker, the aws CLI in .venv). The first build makes the
# default image localbuild/standard:1.0 (about a minute, offline).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --locked --quiet
LB=target/release/localbuild
AWS=aws
[ -x .venv/bin/aws ] && AWS=.venv/bin/aws
say() { printf '\n==> %s\n' "$*"; }

say "localbuild run -s buildspecs -b buildspecs/hello.yml"
"$LB" run -s buildspecs -b buildspecs/hello.yml </dev/null

say "localbuild serve (a local CodeBuild endpoint)"
serve_out=$(mktemp)
"$LB" serve --listen 127.0.0.1:0 >"$serve_out" 2>&1 </dev/null &
serve_pid=$!
trap 'kill -TERM $serve_pid 2>/dev/null; wait $serve_pid 2>/dev/null; rm -f "$serve_out"' EXIT
for _ in $(seq 100); do
    grep -q '^export AWS_ENDPOINT_URL=' "$serve_out" && break
    kill -0 $serve_pid 2>/dev/null || { cat "$serve_out"; exit 1; }
    sleep 0.1
done
line=$(grep '^export AWS_ENDPOINT_URL=' "$serve_out") || { cat "$serve_out"; exit 1; }
echo "$line"
export AWS_ENDPOINT_URL=${line#export AWS_ENDPOINT_URL=}
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

project=tutorial-hello
say "aws codebuild create-project --name $project"
"$AWS" codebuild delete-project --name "$project" >/dev/null 2>&1 || true
"$AWS" codebuild create-project --name "$project" \
    --source "$(python3 -c 'import json,sys; print(json.dumps({"type": "NO_SOURCE", "buildspec": open("buildspecs/hello.yml").read()}))')" \
    --artifacts type=NO_ARTIFACTS \
    --environment type=LINUX_CONTAINER,image=localbuild/standard:1.0,computeType=BUILD_GENERAL1_SMALL \
    --service-role arn:aws:iam::000000000000:role/local \
    --query 'project.arn' --output text

say "aws codebuild start-build --project-name $project"
id=$("$AWS" codebuild start-build --project-name "$project" --query 'build.id' --output text)
echo "$id"

say "aws codebuild batch-get-builds --ids $id   (until buildComplete)"
for _ in $(seq 600); do
    [ "$("$AWS" codebuild batch-get-builds --ids "$id" --query 'builds[0].buildComplete' --output text)" = True ] && break
    sleep 1
done
"$AWS" codebuild batch-get-builds --ids "$id" \
    --query 'builds[0].phases[].[phaseType,phaseStatus]' --output text
status=$("$AWS" codebuild batch-get-builds --ids "$id" --query 'builds[0].buildStatus' --output text)

say "aws logs get-log-events --log-group-name /aws/codebuild/$project --log-stream-name ${id#*:}"
"$AWS" logs get-log-events --log-group-name "/aws/codebuild/$project" \
    --log-stream-name "${id#*:}" --start-from-head --query 'events[].message' --output text

say "build $id: $status"
[ "$status" = SUCCEEDED ]
