#!/usr/bin/env python3
"""Walk every CodeBuild and CloudWatch Logs operation localbuild serves through boto3 and check
every response (and error) body against botocore's own model (check_shapes.Recorder).

Usage: AWS_ENDPOINT_URL=http://127.0.0.1:PORT walk_codebuild.py IMAGE
Exits non-zero with every problem listed. Waits are bounded polls, never bare sleeps.
"""
import os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_shapes import Recorder  # noqa: E402
import botocore.exceptions  # noqa: E402

image = sys.argv[1]
endpoint = os.environ["AWS_ENDPOINT_URL"]
rec = Recorder()
cb = rec.client("codebuild", endpoint_url=endpoint)
logs = rec.client("logs", endpoint_url=endpoint)


def until(what, fn, secs=120):
    deadline = time.monotonic() + secs
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + what)
        time.sleep(0.2)


def expect_error(code, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == code, e.response
        return
    sys.exit("expected " + code)


spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo walk $MODE\n"
env = {"type": "LINUX_CONTAINER", "image": image, "computeType": "BUILD_GENERAL1_SMALL",
       "environmentVariables": [{"name": "MODE", "value": "plain", "type": "PLAINTEXT"}]}
cb.create_project(name="walk", source={"type": "NO_SOURCE", "buildspec": spec},
                  artifacts={"type": "NO_ARTIFACTS"}, environment=env, serviceRole="r",
                  timeoutInMinutes=10, tags=[{"key": "team", "value": "a"}])
cb.update_project(name="walk", description="walked")
cb.batch_get_projects(names=["walk", "missing"])
cb.list_projects(sortBy="NAME", sortOrder="ASCENDING")
first = cb.start_build(projectName="walk")["build"]["id"]
until("the build", lambda: cb.batch_get_builds(ids=[first])["builds"][0]["buildComplete"])
cb.batch_get_builds(ids=[first, "walk:00000000-0000-0000-0000-000000000000"])
expect_error("InvalidInputException", cb.batch_get_builds, ids=["no-colon"])
expect_error("InvalidInputException", cb.batch_get_projects, names=["not a name"])
cb.list_builds()
cb.list_builds_for_project(projectName="walk", sortOrder="ASCENDING")
stream = first.split(":", 1)[1]
logs.get_log_events(logGroupName="/aws/codebuild/walk", logStreamName=stream, startFromHead=True, limit=5)
logs.filter_log_events(logGroupName="/aws/codebuild/walk", filterPattern="walk")
logs.describe_log_groups(logGroupNamePrefix="/aws/codebuild/")
logs.describe_log_streams(logGroupName="/aws/codebuild/walk")
retried = cb.retry_build(id=first)["build"]["id"]
sleeper = cb.start_build(projectName="walk", buildspecOverride=spec.replace("echo walk $MODE", "sleep 300"))["build"]["id"]
until("the sleeper to run", lambda: cb.batch_get_builds(ids=[sleeper])["builds"][0]["currentPhase"] == "BUILD")
cb.stop_build(id=sleeper)
until("the retried build", lambda: cb.batch_get_builds(ids=[retried])["builds"][0]["buildComplete"])
cb.batch_delete_builds(ids=[retried, "walk:nope"])
expect_error("ResourceAlreadyExistsException", cb.create_project, name="walk",
             source={"type": "NO_SOURCE", "buildspec": spec}, artifacts={"type": "NO_ARTIFACTS"},
             environment=env, serviceRole="r")
expect_error("ResourceNotFoundException", cb.start_build, projectName="missing")
expect_error("ResourceNotFoundException", logs.get_log_events, logGroupName="/aws/codebuild/none", logStreamName="x")
# Batch builds: every batch response, and a task build's, against the model.
bspec = ("version: 0.2\nbatch:\n  build-list:\n    - identifier: a\n    - identifier: b\n"
         "      env:\n        variables:\n          MODE: b\n"
         "phases:\n  build:\n    commands:\n      - echo walk $MODE\n")
cb.update_project(name="walk", buildBatchConfig={"serviceRole": "r", "combineArtifacts": False,
                                                 "restrictions": {"maximumBuildsAllowed": 4}})
batch = cb.start_build_batch(projectName="walk", buildspecOverride=bspec, idempotencyToken="b1")["buildBatch"]["id"]
assert cb.start_build_batch(projectName="walk", buildspecOverride=bspec, idempotencyToken="b1")["buildBatch"]["id"] == batch
done = until("the batch", lambda: [b for b in cb.batch_get_build_batches(ids=[batch])["buildBatches"] if b["complete"]])[0]
assert done["buildBatchStatus"] == "SUCCEEDED", done
cb.batch_get_build_batches(ids=[batch, "walk:00000000-0000-0000-0000-000000000000"])
task_builds = [g["currentBuildSummary"]["arn"] for g in done["buildGroups"]]
cb.batch_get_builds(ids=task_builds)
cb.list_build_batches()
cb.list_build_batches(filter={"status": "SUCCEEDED"}, sortOrder="ASCENDING", maxResults=5)
cb.list_build_batches_for_project(projectName="walk")
sleepy = cb.start_build_batch(projectName="walk",
                              buildspecOverride=bspec.replace("echo walk $MODE", "sleep 300"))["buildBatch"]["id"]
until("a sleeping task", lambda: "arn" in cb.batch_get_build_batches(ids=[sleepy])["buildBatches"][0]
      ["buildGroups"][0].get("currentBuildSummary", {}))
cb.stop_build_batch(id=sleepy)
retried = cb.retry_build_batch(id=sleepy, retryType="RETRY_FAILED_BUILDS")["buildBatch"]["id"]
cb.stop_build_batch(id=retried)
cb.delete_build_batch(id=batch)
expect_error("ResourceNotFoundException", cb.start_build_batch, projectName="missing")
expect_error("ResourceNotFoundException", cb.stop_build_batch, id="walk:nope")
expect_error("InvalidInputException", cb.delete_build_batch, id="walk:nope")
expect_error("ResourceNotFoundException", cb.list_build_batches_for_project, projectName="missing")
expect_error("InvalidInputException", cb.start_build_batch, projectName="walk")
cb.delete_project(name="walk")
rec.check()
print("walked %d responses" % len(rec.records))
