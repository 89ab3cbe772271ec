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
cb.delete_project(name="walk")
rec.check()
print("walked %d responses" % len(rec.records))
