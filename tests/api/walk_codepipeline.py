#!/usr/bin/env python3
"""Walk every CodePipeline and CodeStar Connections / CodeConnections operation localbuild serves
through boto3 and check every response (and error) body against botocore's own model
(check_shapes.Recorder).

Usage: AWS_ENDPOINT_URL=http://127.0.0.1:PORT walk_codepipeline.py IMAGE GIT_ROOT
GIT_ROOT is the server's git root (a repository acme/walk is made there).
Exits non-zero with every problem listed. Waits are bounded polls, never bare sleeps.
"""
import os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_shapes import Recorder  # noqa: E402
import botocore.exceptions  # noqa: E402

image, git_root = sys.argv[1], sys.argv[2]
endpoint = os.environ["AWS_ENDPOINT_URL"]
rec = Recorder()
cp = rec.client("codepipeline", endpoint_url=endpoint)
cb = rec.client("codebuild", endpoint_url=endpoint)
cs = rec.client("codestar-connections", endpoint_url=endpoint)
cc = rec.client("codeconnections", endpoint_url=endpoint)


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


def git(*args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", repo, *args],
                   check=True, capture_output=True)


repo = os.path.join(git_root, "acme", "walk")
os.makedirs(repo)
git("init", "-q", "-b", "main")
with open(os.path.join(repo, "README"), "w") as f:
    f.write("walk\n")
git("add", "-A")
git("commit", "-q", "-m", "walk")

conn = cs.create_connection(ProviderType="GitHub", ConnectionName="walk")["ConnectionArn"]
cs.get_connection(ConnectionArn=conn)
cs.list_connections()
other = cc.create_connection(ProviderType="GitHub", ConnectionName="walk2")["ConnectionArn"]
cc.get_connection(ConnectionArn=other)
cc.list_connections(ProviderTypeFilter="GitHub")
cc.delete_connection(ConnectionArn=other)

spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo walked $COMMIT\n"
cb.create_project(name="pipewalk", source={"type": "CODEPIPELINE", "buildspec": spec},
                  artifacts={"type": "CODEPIPELINE"}, serviceRole="r",
                  environment={"type": "LINUX_CONTAINER", "image": image,
                               "computeType": "BUILD_GENERAL1_SMALL"})
pipeline = {
    "name": "walk", "roleArn": "arn:aws:iam::000000000000:role/p",
    "artifactStore": {"type": "S3", "location": "walk-artifacts"},
    "stages": [
        {"name": "Source", "actions": [{
            "name": "Source", "namespace": "SourceVariables",
            "actionTypeId": {"category": "Source", "owner": "AWS",
                             "provider": "CodeStarSourceConnection", "version": "1"},
            "configuration": {"ConnectionArn": conn, "FullRepositoryId": "acme/walk",
                              "BranchName": "main", "DetectChanges": "false"},
            "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Approve", "actions": [{
            "name": "Approval", "timeoutInMinutes": 60,
            "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual",
                             "version": "1"}}]},
        {"name": "Build", "actions": [{
            "name": "Build", "namespace": "BuildVariables",
            "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild",
                             "version": "1"},
            "configuration": {"ProjectName": "pipewalk", "EnvironmentVariables":
                              '[{"name":"COMMIT","value":"#{SourceVariables.CommitId}","type":"PLAINTEXT"}]'},
            "inputArtifacts": [{"name": "Src"}]}]}]}
cp.create_pipeline(pipeline=pipeline, tags=[{"key": "team", "value": "a"}])
cp.get_pipeline(name="walk")
cp.get_pipeline(name="walk", version=1)
cp.list_pipelines()
walk_arn = "arn:aws:codepipeline:us-east-1:000000000000:walk"
cp.tag_resource(resourceArn=walk_arn, tags=[{"key": "cost", "value": "1"}])
cp.list_tags_for_resource(resourceArn=walk_arn)
cp.untag_resource(resourceArn=walk_arn, tagKeys=["cost"])
expect_error("InvalidArnException", cp.list_tags_for_resource, resourceArn="not-an-arn")
expect_error("ResourceNotFoundException", cp.list_tags_for_resource,
             resourceArn="arn:aws:codepipeline:us-east-1:000000000000:missing")
expect_error("InvalidTagsException", cp.tag_resource, resourceArn=walk_arn,
             tags=[{"key": "aws:x", "value": "1"}])


def waiting_token():
    st = cp.get_pipeline_state(name="walk")["stageStates"][1]["actionStates"][0]
    latest = st.get("latestExecution", {})
    return latest.get("status") == "InProgress" and latest.get("token")


first = until("the first execution",
              lambda: cp.list_pipeline_executions(pipelineName="walk")["pipelineExecutionSummaries"])
first = first[0]["pipelineExecutionId"]
token = until("the approval", waiting_token)
expect_error("InvalidApprovalTokenException", cp.put_approval_result, pipelineName="walk",
             stageName="Approve", actionName="Approval", token="00000000-0000-0000-0000-000000000000",
             result={"summary": "x", "status": "Approved"})
cp.put_approval_result(pipelineName="walk", stageName="Approve", actionName="Approval",
                       token=token, result={"summary": "ok", "status": "Approved"})
done = until("the first execution to end", lambda: [
    e for e in [cp.get_pipeline_execution(pipelineName="walk", pipelineExecutionId=first)["pipelineExecution"]]
    if e["status"] != "InProgress"])[0]
assert done["status"] == "Succeeded", done
cp.get_pipeline_state(name="walk")
cp.list_pipeline_executions(pipelineName="walk", maxResults=1)
cp.list_action_executions(pipelineName="walk")
cp.list_action_executions(pipelineName="walk", filter={"pipelineExecutionId": first}, maxResults=2)

# Transitions, a second execution stopped (abandoned) at the approval, then retried.
cp.disable_stage_transition(pipelineName="walk", stageName="Build", transitionType="Inbound",
                            reason="walk")
cp.get_pipeline_state(name="walk")
cp.enable_stage_transition(pipelineName="walk", stageName="Build", transitionType="Inbound")
second = cp.start_pipeline_execution(name="walk")["pipelineExecutionId"]
until("the second approval", waiting_token)
cp.stop_pipeline_execution(pipelineName="walk", pipelineExecutionId=second, abandon=True, reason="walk")
until("the second execution to stop", lambda: cp.get_pipeline_execution(
    pipelineName="walk", pipelineExecutionId=second)["pipelineExecution"]["status"] == "Stopped")
cp.get_pipeline_state(name="walk")
expect_error("PipelineExecutionNotStoppableException", cp.stop_pipeline_execution,
             pipelineName="walk", pipelineExecutionId=second)
cp.retry_stage_execution(pipelineName="walk", stageName="Approve", pipelineExecutionId=second,
                         retryMode="FAILED_ACTIONS")
token = until("the retried approval", waiting_token)
cp.put_approval_result(pipelineName="walk", stageName="Approve", actionName="Approval",
                       token=token, result={"summary": "no", "status": "Rejected"})
until("the second execution to fail", lambda: cp.get_pipeline_execution(
    pipelineName="walk", pipelineExecutionId=second)["pipelineExecution"]["status"] == "Failed")
expect_error("ApprovalAlreadyCompletedException", cp.put_approval_result, pipelineName="walk",
             stageName="Approve", actionName="Approval", token=token,
             result={"summary": "x", "status": "Approved"})
expect_error("NotLatestPipelineExecutionException", cp.retry_stage_execution, pipelineName="walk",
             stageName="Source", pipelineExecutionId=first, retryMode="ALL_ACTIONS")
cp.get_pipeline_state(name="walk")
cp.list_action_executions(pipelineName="walk", filter={"pipelineExecutionId": second})

pipeline["stages"][2]["actions"][0]["configuration"]["ProjectName"] = "pipewalk"
cp.update_pipeline(pipeline=pipeline)
expect_error("StageNotRetryableException", cp.retry_stage_execution, pipelineName="walk",
             stageName="Approve", pipelineExecutionId=second, retryMode="FAILED_ACTIONS")
expect_error("PipelineNameInUseException", cp.create_pipeline, pipeline=pipeline)
expect_error("InvalidStructureException", cp.create_pipeline,
             pipeline=dict(pipeline, name="short", stages=pipeline["stages"][:1]))
expect_error("PipelineNotFoundException", cp.get_pipeline, name="missing")
expect_error("PipelineVersionNotFoundException", cp.get_pipeline, name="walk", version=9)
expect_error("PipelineNotFoundException", cp.get_pipeline_state, name="missing")
expect_error("PipelineExecutionNotFoundException", cp.get_pipeline_execution, pipelineName="walk",
             pipelineExecutionId="00000000-0000-0000-0000-000000000000")
expect_error("StageNotFoundException", cp.disable_stage_transition, pipelineName="walk",
             stageName="Nope", transitionType="Inbound", reason="x")
expect_error("ValidationException", cp.disable_stage_transition, pipelineName="walk",
             stageName="Build", transitionType="Sideways", reason="x")
cp.delete_pipeline(name="walk")
cs.delete_connection(ConnectionArn=conn)
rec.check()
print("walked %d responses" % len(rec.records))
