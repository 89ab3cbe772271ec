"""Produce fixture data for src/lib.rs tests (run once; output pasted into the tests).

1. Sign a CodeBuild ListProjects POST with botocore's SigV4Auth/AWSRequest, print the headers.
2. With --wire: capture what the real `aws` CLI sends to a throwaway server on 127.0.0.1:4566.
"""
import http.server
import os
import subprocess
import sys
import threading

import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed_by_botocore():
    req = AWSRequest(
        method="POST",
        url="http://127.0.0.1:4566/",
        data=b"{}",
        headers={
            "X-Amz-Target": "CodeBuild_20161006.ListProjects",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(Credentials("AKIDLOCAL", "secretlocal"), "codebuild", "us-east-1").add_auth(req)
    prepared = req.prepare()
    print("# botocore", botocore.__version__, prepared.method, prepared.url)
    for k, v in prepared.headers.items():
        print(f"{k}: {v}")
    print("body:", prepared.body)


def captured_from_cli():
    seen = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.update(line=self.requestline, headers=list(self.headers.items()), body=body)
            out = b'{"projects": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 4566), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDLOCAL", AWS_SECRET_ACCESS_KEY="secretlocal",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    subprocess.run(["aws", "--endpoint-url", "http://127.0.0.1:4566", "codebuild", "list-projects"],
                   env=env, check=True, capture_output=True)
    server.server_close()
    print("#", seen["line"])
    for k, v in seen["headers"]:
        print(f"{k}: {v}")
    print("body:", seen["body"])


signed_by_botocore()
if "--wire" in sys.argv:
    captured_from_cli()
