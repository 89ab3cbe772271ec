#!/usr/bin/env bash
# The tutorial, end to end on this machine (the README's quick start):
#   1. `localbuild run` of buildspecs/hello.yml, as a CodeBuild build in Docker;
#   2. `localbuild serve`, then the tutorial's aws CLI commands against it: create-project,
#      start-build, batch-get-builds until the build completes, logs get-log-events;
#   3. the tutorial's pipeline: a local registry (docker-registry with htpasswd), a git
#      repository holding an app (Dockerfile, index.html, buildspec.yml), create-connection,
#      create-project (privileged, pushes app:latest), create-pipeline Source -> Build -> Deploy
#      (ECS as a local container); the first execution, then a commit that starts the second
#      one by itself, the registry's digest of app:latest moving and the new page served.
# Needs scripts/setup.sh first (Docker, test images, docker-registry, the aws CLI in .venv).
# The first build makes the default image localbuild/standard:1.0 (about a minute, offline).
# Everything it makes (builds, projects, the connection, the pipeline) goes to its own
# LOCALBUILD_HOME in a temporary folder, removed at the end: your own history is not touched.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf '\n==> %s\n' "$*"; }

say "cargo build --release (the first compile takes several minutes: about 10 on a 2-core machine, over 20 when it is busy; cargo shows its progress; later runs take seconds)"
cargo build --release --locked
LB=${CARGO_TARGET_DIR:-target}/release/localbuild
AWS=aws
[ -x .venv/bin/aws ] && AWS=.venv/bin/aws

work=$(mktemp -d)
export LOCALBUILD_HOME=$work/home
serve_pid=
registry_pid=
cleanup() {
    local status=$?
    set +e
    [ -n "$serve_pid" ] && { kill -TERM $serve_pid 2>/dev/null; wait $serve_pid 2>/dev/null; }
    [ -n "$registry_pid" ] && { kill $registry_pid 2>/dev/null; wait $registry_pid 2>/dev/null; }
    # The deployed app and the images the builds tagged in this daemon.
    docker ps -aq --filter label=localbuild.ecs-service=local/tutorial-web | xargs -r docker rm -f >/dev/null
    docker images -q --filter "reference=127.0.0.1:*/tutorial/app" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT

say "localbuild run -s buildspecs -b buildspecs/hello.yml   (LOCALBUILD_HOME=$LOCALBUILD_HOME)"
"$LB" run -s buildspecs -b buildspecs/hello.yml </dev/null

say "localbuild serve (a local CodeBuild endpoint; secrets from $work/secrets.yml)"
serve_out=$work/serve.log
# The registry's password, kept as a Secrets Manager secret (the build reads it through a
# SECRETS_MANAGER project variable), never as a plain project variable.
reg_password=pw-$RANDOM$RANDOM
python3 -c 'import json,sys; print(json.dumps({"secrets-manager": {"tutorial/registry": json.dumps({"password": sys.argv[1]})}}))' \
    "$reg_password" >"$work/secrets.yml"
chmod 600 "$work/secrets.yml"
"$LB" serve --listen 127.0.0.1:0 --git-root "$work/git" --secrets-file "$work/secrets.yml" >"$serve_out" 2>&1 </dev/null &
serve_pid=$!
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

# ---- 3. The pipeline: a commit goes to the registry and is deployed ----

say "a local registry: docker-registry with htpasswd (bcrypt)"
reg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REGISTRY=127.0.0.1:$reg_port
htpasswd -Bbn tutorial "$reg_password" >"$work/htpasswd"
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $REGISTRY
  secret: localbuild-tutorial
auth:
  htpasswd:
    realm: localbuild-tutorial
    path: $work/htpasswd
YAML
/usr/bin/docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://$REGISTRY/v2/" && break
    sleep 0.1
done
echo "$REGISTRY"
digest() { # the registry's digest of tutorial/app:latest
    curl -sI -u "tutorial:$reg_password" \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' \
        "http://$REGISTRY/v2/tutorial/app/manifests/latest" |
        tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}

say "a git repository acme/web (under serve's --git-root): Dockerfile, index.html, buildspec.yml"
repo=$work/git/acme/web
mkdir -p "$repo"
git -C "$repo" init -q -b main
cat >"$repo/Dockerfile" <<'EOF'
FROM localbuild-test/busybox:1
COPY index.html /www/index.html
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
EOF
echo "<h1>version one</h1>" >"$repo/index.html"
cat >"$repo/buildspec.yml" <<'EOF'
version: 0.2
phases:
  pre_build:
    commands:
      - echo "$REGISTRY_PASSWORD" | docker login -u "$REGISTRY_USER" --password-stdin "$REGISTRY"
      - IMAGE_URI="$REGISTRY/tutorial/app:latest"
  build:
    commands:
      - docker build -q -t "$IMAGE_URI" .
  post_build:
    commands:
      - docker push "$IMAGE_URI"
      - printf '[{"name":"app","imageUri":"%s"}]' "$IMAGE_URI" > imagedefinitions.json
artifacts:
  files:
    - imagedefinitions.json
EOF
git -C "$repo" add -A
git -C "$repo" -c user.name=tutorial -c user.email=tutorial@localhost commit -q -m "version one"

say "aws codestar-connections create-connection --provider-type GitHub --connection-name local"
conn=$("$AWS" codestar-connections create-connection --provider-type GitHub --connection-name local \
    --query ConnectionArn --output text)
"$AWS" codestar-connections get-connection --connection-arn "$conn" \
    --query 'Connection.[ConnectionName,ConnectionStatus]' --output text

say "aws codebuild create-project --name tutorial-web (privileged: docker build and push; the password from Secrets Manager)"
"$AWS" codebuild delete-project --name tutorial-web >/dev/null 2>&1 || true
"$AWS" codebuild create-project --name tutorial-web --source type=CODEPIPELINE --artifacts type=CODEPIPELINE \
    --environment "$(python3 -c 'import json,sys; print(json.dumps({"type": "LINUX_CONTAINER", "image": "localbuild-test/docker:1", "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": True, "environmentVariables": [{"name": "REGISTRY", "value": sys.argv[1]}, {"name": "REGISTRY_USER", "value": "tutorial"}, {"name": "REGISTRY_PASSWORD", "value": "tutorial/registry:password", "type": "SECRETS_MANAGER"}]}))' "$REGISTRY")" \
    --service-role arn:aws:iam::000000000000:role/local --query 'project.arn' --output text

say "aws codepipeline create-pipeline --cli-input-json file://pipeline.json (Source -> Build -> Deploy)"
cat >"$work/pipeline.json" <<EOF
{"pipeline": {
  "name": "tutorial-web",
  "roleArn": "arn:aws:iam::000000000000:role/pipeline",
  "artifactStore": {"type": "S3", "location": "tutorial-artifacts"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Source", "namespace": "SourceVariables",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
      "configuration": {"ConnectionArn": "$conn", "FullRepositoryId": "acme/web", "BranchName": "main"},
      "outputArtifacts": [{"name": "SourceOutput"}]}]},
    {"name": "Build", "actions": [{"name": "Build",
      "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
      "configuration": {"ProjectName": "tutorial-web"},
      "inputArtifacts": [{"name": "SourceOutput"}], "outputArtifacts": [{"name": "BuildOutput"}]}]},
    {"name": "Deploy", "actions": [{"name": "Deploy",
      "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
      "configuration": {"ClusterName": "local", "ServiceName": "tutorial-web", "FileName": "imagedefinitions.json"},
      "inputArtifacts": [{"name": "BuildOutput"}]}]}]}}
EOF
"$AWS" codepipeline delete-pipeline --name tutorial-web >/dev/null 2>&1 || true
"$AWS" codepipeline create-pipeline --cli-input-json "file://$work/pipeline.json" \
    --query 'pipeline.[name,version]' --output text

executions() { "$AWS" codepipeline list-pipeline-executions --pipeline-name tutorial-web \
    --query "pipelineExecutionSummaries[$1].status" --output text; }
wait_execution() { # wait_execution N: until N executions exist and the newest has ended
    for _ in $(seq 600); do
        n=$("$AWS" codepipeline list-pipeline-executions --pipeline-name tutorial-web \
            --query 'length(pipelineExecutionSummaries)' --output text)
        if [ "$n" -ge "$1" ]; then
            case $(executions 0) in Succeeded|Failed|Stopped|Superseded) break ;; esac
        fi
        sleep 1
    done
    "$AWS" codepipeline get-pipeline-state --name tutorial-web \
        --query 'stageStates[].[stageName,latestExecution.status]' --output text
    [ "$(executions 0)" = Succeeded ]
}
page() { # the deployed app's page, from the Deploy action's URL
    url=$("$AWS" codepipeline get-pipeline-state --name tutorial-web \
        --query 'stageStates[2].actionStates[0].latestExecution.externalExecutionUrl' --output text)
    for _ in $(seq 100); do curl -sf "$url/index.html" | grep -q "$1" && break; sleep 0.1; done
    echo "$url: $(curl -sf "$url/index.html")"
    curl -sf "$url/index.html" | grep -q "$1"
}

say "the first execution (started by create-pipeline)"
wait_execution 1
first_digest=$(digest)
echo "app:latest in the registry: $first_digest"
page "version one"

say "a commit to main starts the second execution by itself"
echo "<h1>version two</h1>" >"$repo/index.html"
git -C "$repo" -c user.name=tutorial -c user.email=tutorial@localhost commit -q -am "version two"
wait_execution 2
"$AWS" codepipeline list-pipeline-executions --pipeline-name tutorial-web \
    --query 'pipelineExecutionSummaries[].[status,trigger.triggerType,sourceRevisions[0].revisionSummary]' --output text
second_digest=$(digest)
echo "app:latest in the registry: $second_digest"
[ -n "$first_digest" ] && [ "$first_digest" != "$second_digest" ]
page "version two"

say "localbuild pipeline status tutorial-web"
"$LB" pipeline status tutorial-web
"$AWS" codepipeline delete-pipeline --name tutorial-web
say "the pipeline ran source -> build -> deploy twice; app:latest moved from $first_digest to $second_digest"
