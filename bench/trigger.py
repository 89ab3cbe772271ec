#!/usr/bin/env python3
"""Commit to pipeline execution: how long after `git commit` returns does `localbuild serve`
start the pipeline's next execution?

Usage: .venv/bin/python3 bench/trigger.py [--bin PATH] [--rounds R]

A repository under the server's git root, a pipeline CodeCommit source -> Manual approval (no
container runs), then R commits; for each, the time from the commit's return to the new
execution's `startTime` (the server's own clock, the same machine). Prints the median and the
worst. Needs boto3 (the repository's .venv) and a localbuild binary (default
target/debug/localbuild). Everything it starts is stopped and removed on exit.
"""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(k, None)
os.environ.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                  AWS_EC2_METADATA_DISABLED="true")
import boto3  # noqa: E402


def git(repo, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@x")
    subprocess.run(["git", "-C", repo, *args], check=True, env=env, capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "debug", "localbuild"))
    ap.add_argument("--rounds", type=int, default=10)
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="bench-trigger-")
    server = None
    try:
        repo = os.path.join(home, "git", "app")
        os.makedirs(repo)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "commit", "-q", "--allow-empty", "-m", "first")
        server = subprocess.Popen([a.bin, "serve", "--listen", "127.0.0.1:0"],
                                  env={**os.environ, "LOCALBUILD_HOME": home},
                                  stdout=subprocess.PIPE, text=True)
        url = None
        for line in server.stdout:
            if line.startswith("export AWS_ENDPOINT_URL="):
                url = line.strip().split("=", 1)[1]
                break
        cp = boto3.client("codepipeline", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
        cp.create_pipeline(pipeline={
            "name": "bench", "roleArn": "arn:aws:iam::000000000000:role/p",
            "artifactStore": {"type": "S3", "location": "artifacts"},
            "stages": [
                {"name": "Source", "actions": [{"name": "Source", "actionTypeId": {
                    "category": "Source", "owner": "AWS", "provider": "CodeCommit",
                    "version": "1"}, "configuration": {"RepositoryName": "app",
                    "BranchName": "main"}, "outputArtifacts": [{"name": "Src"}]}]},
                {"name": "Approve", "actions": [{"name": "Ok", "actionTypeId": {
                    "category": "Approval", "owner": "AWS", "provider": "Manual",
                    "version": "1"}}]}]})
        known = set()
        deadline = time.time() + 30
        while not known and time.time() < deadline:  # the first execution (create starts one)
            known = {e["pipelineExecutionId"] for e in
                     cp.list_pipeline_executions(pipelineName="bench")["pipelineExecutionSummaries"]}
            time.sleep(0.05)
        # Let the watcher take its first look before the first measured commit.
        time.sleep(1)
        delays = []
        for i in range(a.rounds):
            git(repo, "commit", "-q", "--allow-empty", "-m", f"round {i}")
            committed = time.time()
            new = None
            deadline = committed + 30
            while new is None and time.time() < deadline:
                for e in cp.list_pipeline_executions(pipelineName="bench")["pipelineExecutionSummaries"]:
                    if e["pipelineExecutionId"] not in known:
                        new = e
                time.sleep(0.01)
            if new is None:
                sys.exit(f"round {i}: no execution within 30 s")
            known.add(new["pipelineExecutionId"])
            delays.append(new["startTime"].timestamp() - committed)
            time.sleep(0.3)
        print(json.dumps({"rounds": a.rounds,
                          "median_s": round(statistics.median(delays), 3),
                          "max_s": round(max(delays), 3),
                          "min_s": round(min(delays), 3),
                          "all_s": [round(d, 3) for d in delays]}))
    finally:
        if server:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
