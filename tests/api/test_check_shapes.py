"""Tests for check_shapes.py.  Run:  python3 -m unittest -v test_check_shapes
(or python3 -m pytest test_check_shapes.py if pytest is installed)."""
import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_shapes as cs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ACCT = "123456789012"
REGION = "us-east-1"
T0 = 1718000000.123

BUILD_ID = "demo:6c1d2f0e-8f4b-4c8e-9a51-0d5a3f7e9b21"


def phase(ptype, status=None, start=None, end=None, dur=None, contexts=True):
    p = {"phaseType": ptype, "startTime": start}
    if status is not None:
        p["phaseStatus"] = status
    if end is not None:
        p["endTime"] = end
    if dur is not None:
        p["durationInSeconds"] = dur
    if contexts:
        p["contexts"] = [{"statusCode": "", "message": ""}]
    return p


def good_build():
    return {
        "id": BUILD_ID,
        "arn": f"arn:aws:codebuild:{REGION}:{ACCT}:build/{BUILD_ID}",
        "buildNumber": 7,
        "startTime": T0,
        "endTime": T0 + 42.5,
        "currentPhase": "COMPLETED",
        "buildStatus": "SUCCEEDED",
        "sourceVersion": "main",
        "resolvedSourceVersion": "3f2c1a9e0b7d4c6f8a1e2d3c4b5a69788f7e6d5c",
        "projectName": "demo",
        "phases": [
            phase("SUBMITTED", "SUCCEEDED", T0, T0 + 0.4, 0),
            phase("QUEUED", "SUCCEEDED", T0 + 0.4, T0 + 1.0, 0),
            phase("PROVISIONING", "SUCCEEDED", T0 + 1.0, T0 + 9.0, 8),
            phase("DOWNLOAD_SOURCE", "SUCCEEDED", T0 + 9.0, T0 + 11.0, 2),
            phase("INSTALL", "SUCCEEDED", T0 + 11.0, T0 + 20.0, 9),
            phase("PRE_BUILD", "SUCCEEDED", T0 + 20.0, T0 + 21.0, 1),
            phase("BUILD", "SUCCEEDED", T0 + 21.0, T0 + 40.0, 19),
            phase("POST_BUILD", "SUCCEEDED", T0 + 40.0, T0 + 41.0, 1),
            phase("UPLOAD_ARTIFACTS", "SUCCEEDED", T0 + 41.0, T0 + 41.5, 0),
            phase("FINALIZING", "SUCCEEDED", T0 + 41.5, T0 + 42.5, 1),
            phase("COMPLETED", start=T0 + 42.5, contexts=False),
        ],
        "source": {
            "type": "NO_SOURCE",
            "location": "",
            "buildspec": "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n",
            "insecureSsl": False,
        },
        "secondarySources": [],
        "secondarySourceVersions": [],
        "artifacts": {"location": ""},
        "cache": {"type": "NO_CACHE"},
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": [
                {"name": "STAGE", "value": "test", "type": "PLAINTEXT"},
                {"name": "DB_PASS", "value": "/demo/db", "type": "PARAMETER_STORE"},
            ],
            "privilegedMode": False,
            "imagePullCredentialsType": "CODEBUILD",
        },
        "serviceRole": f"arn:aws:iam::{ACCT}:role/service-role/codebuild-demo",
        "logs": {
            "groupName": "/aws/codebuild/demo",
            "streamName": "6c1d2f0e-8f4b-4c8e-9a51-0d5a3f7e9b21",
            "deepLink": "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEvent:"
                        "group=/aws/codebuild/demo;stream=6c1d2f0e-8f4b-4c8e-9a51-0d5a3f7e9b21",
            "cloudWatchLogsArn": f"arn:aws:logs:{REGION}:{ACCT}:log-group:/aws/codebuild/demo:"
                                 "log-stream:6c1d2f0e-8f4b-4c8e-9a51-0d5a3f7e9b21",
            "cloudWatchLogs": {"status": "ENABLED"},
            "s3Logs": {"status": "DISABLED", "encryptionDisabled": False},
        },
        "timeoutInMinutes": 60,
        "queuedTimeoutInMinutes": 480,
        "buildComplete": True,
        "initiator": "someuser",
        "encryptionKey": f"arn:aws:kms:{REGION}:{ACCT}:alias/aws/s3",
    }


def good_batch_get_builds():
    return {"builds": [good_build()], "buildsNotFound": ["demo:does-not-exist"]}


def good_get_log_events():
    return {
        "events": [
            {"timestamp": 1718000001123, "message": "[Container] 2024/06/10 06:13:21 Running command echo hi\n",
             "ingestionTime": 1718000001456},
            {"timestamp": 1718000001200, "message": "hi\n", "ingestionTime": 1718000001460},
        ],
        "nextForwardToken": "f/38345029948839471837465829384756201937465829384756/s",
        "nextBackwardToken": "b/38345029948839471837465829384756201937465829384755/s",
    }


def good_pipeline_state():
    exec_id = "0b6a4c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b"
    return {
        "pipelineName": "demo-pipeline",
        "pipelineVersion": 1,
        "stageStates": [
            {
                "stageName": "Source",
                "inboundTransitionState": {"enabled": True},
                "actionStates": [{
                    "actionName": "Source",
                    "currentRevision": {"revisionId": "3f2c1a9e", "revisionChangeId": "3f2c1a9e",
                                        "created": T0},
                    "latestExecution": {
                        "actionExecutionId": "a1b2c3d4-0000-1111-2222-333344445555",
                        "status": "Succeeded", "summary": "initial commit",
                        "lastStatusChange": T0 + 3, "externalExecutionId": "3f2c1a9e",
                    },
                    "entityUrl": "https://console.aws.amazon.com/s3/home?#",
                }],
                "latestExecution": {"pipelineExecutionId": exec_id, "status": "Succeeded"},
            },
            {
                "stageName": "Build",
                "inboundTransitionState": {"enabled": False, "lastChangedBy": "someuser",
                                           "lastChangedAt": T0 + 1, "disabledReason": "maintenance"},
                "actionStates": [{
                    "actionName": "Build",
                    "latestExecution": {
                        "actionExecutionId": "b1b2c3d4-0000-1111-2222-333344445555",
                        "status": "InProgress", "lastStatusChange": T0 + 5,
                        "externalExecutionId": BUILD_ID,
                        "externalExecutionUrl": "https://console.aws.amazon.com/codebuild/home",
                        "percentComplete": 40,
                    },
                    "entityUrl": "https://console.aws.amazon.com/codebuild/home",
                }],
                "inboundExecution": {"pipelineExecutionId": exec_id, "status": "InProgress",
                                     "type": "STANDARD"},
                "latestExecution": {"pipelineExecutionId": exec_id, "status": "InProgress"},
            },
        ],
        "created": T0 - 3600,
        "updated": T0 - 60,
    }


class ValidBodies(unittest.TestCase):
    def test_batch_get_builds_valid(self):
        self.assertEqual(cs.validate("codebuild", "BatchGetBuilds", good_batch_get_builds()), [])

    def test_batch_get_builds_valid_with_patterns(self):
        self.assertEqual(cs.validate("codebuild", "BatchGetBuilds", good_batch_get_builds(),
                                     patterns=True), [])

    def test_operation_name_forms(self):
        for name in ("BatchGetBuilds", "batch_get_builds", "CodeBuild_20161006.BatchGetBuilds"):
            self.assertEqual(cs.validate("codebuild", name, good_batch_get_builds()), [], name)
        with self.assertRaises(KeyError):
            cs.validate("codebuild", "NoSuchOperation", {})

    def test_get_log_events_valid(self):
        self.assertEqual(cs.validate("logs", "GetLogEvents", good_get_log_events(), patterns=True), [])

    def test_get_pipeline_state_valid(self):
        self.assertEqual(cs.validate("codepipeline", "GetPipelineState", good_pipeline_state(),
                                     patterns=True), [])

    def test_empty_output(self):
        self.assertEqual(cs.validate("codebuild", "DeleteProject", {}), [])

    def test_input_direction(self):
        req = {"projectName": "demo", "environmentVariablesOverride": [
            {"name": "A", "value": "1", "type": "PLAINTEXT"}], "timeoutInMinutesOverride": 30}
        self.assertEqual(cs.validate("codebuild", "StartBuild", req, direction="input"), [])
        bad = dict(req, projectNme="x")
        del bad["projectName"]
        probs = cs.validate("codebuild", "StartBuild", bad, direction="input")
        self.assertEqual(len(probs), 2, probs)
        self.assertTrue(any("missing required member 'projectName'" in p for p in probs))
        self.assertTrue(any(p.startswith("$.projectNme: unknown member") for p in probs))

    def test_all_models_load_and_use_supported_types(self):
        supported = {"structure", "list", "map", "string", "integer", "long", "short", "byte",
                     "boolean", "double", "float", "timestamp", "blob"}
        for svc in cs.SERVICES:
            model = cs.load_model(svc)
            types = {s["type"] for s in model["shapes"].values()}
            self.assertLessEqual(types, supported, svc)
            self.assertTrue(model["operations"], svc)


class CodeBuildMistakes(unittest.TestCase):
    def check(self, mutate, expected_path, expected_text, n=1):
        body = good_batch_get_builds()
        mutate(body["builds"][0])
        probs = cs.validate("codebuild", "BatchGetBuilds", body)
        self.assertEqual(len(probs), n, probs)
        self.assertTrue(probs[0].startswith(expected_path + ": "), probs)
        self.assertIn(expected_text, probs[0])
        return probs

    def test_unknown_field(self):
        self.check(lambda b: b.update(buildState="DONE"),
                   "$.builds[0].buildState", "unknown member 'buildState' of Build")

    def test_unknown_nested_field(self):
        self.check(lambda b: b["logs"]["cloudWatchLogs"].update(enabled=True),
                   "$.builds[0].logs.cloudWatchLogs.enabled", "unknown member")

    def test_bad_enum(self):
        p = self.check(lambda b: b["phases"][2].update(phaseStatus="DONE"),
                       "$.builds[0].phases[2].phaseStatus", "'DONE' is not one of [")
        self.assertIn("'SUCCEEDED'", p[0])

    def test_bad_enum_lowercase(self):
        self.check(lambda b: b.update(buildStatus="succeeded"),
                   "$.builds[0].buildStatus", "is not one of")

    def test_timestamp_iso_string(self):
        self.check(lambda b: b.update(startTime="2024-06-10T06:13:20Z"),
                   "$.builds[0].startTime", "must be epoch seconds as a JSON number")

    def test_timestamp_milliseconds(self):
        self.check(lambda b: b["phases"][0].update(endTime=1718000000123),
                   "$.builds[0].phases[0].endTime", "looks like epoch milliseconds")

    def test_missing_required(self):
        self.check(lambda b: b["environment"].pop("image"),
                   "$.builds[0].environment", "missing required member 'image'")

    def test_missing_required_nested_list(self):
        self.check(lambda b: b["environment"]["environmentVariables"][1].pop("value"),
                   "$.builds[0].environment.environmentVariables[1]", "missing required member 'value'")

    def test_wrong_type_string_for_long(self):
        self.check(lambda b: b.update(buildNumber="7"),
                   "$.builds[0].buildNumber", "expected long (WrapperLong), got string '7'")

    def test_wrong_type_number_for_string(self):
        self.check(lambda b: b.update(projectName=5),
                   "$.builds[0].projectName", "expected string")

    def test_wrong_type_object_for_list(self):
        self.check(lambda b: b.update(phases={}), "$.builds[0].phases", "expected array")

    def test_boolean_where_integer(self):
        self.check(lambda b: b.update(timeoutInMinutes=True),
                   "$.builds[0].timeoutInMinutes", "expected integer (WrapperInt), got boolean True")

    def test_float_where_integer(self):
        self.check(lambda b: b["phases"][1].update(durationInSeconds=0.6),
                   "$.builds[0].phases[1].durationInSeconds", "expected long")

    def test_string_where_boolean(self):
        self.check(lambda b: b.update(buildComplete="true"),
                   "$.builds[0].buildComplete", "expected boolean")

    def test_null_member(self):
        self.check(lambda b: b.update(endTime=None), "$.builds[0].endTime", "null is not allowed")
        body = good_batch_get_builds()
        body["builds"][0]["endTime"] = None
        self.assertEqual(cs.validate("codebuild", "BatchGetBuilds", body, allow_null=True), [])

    def test_min_length(self):
        self.check(lambda b: b.update(id=""), "$.builds[0].id", "length 0 is below min 1")

    def test_top_level_not_object(self):
        probs = cs.validate("codebuild", "BatchGetBuilds", [good_build()])
        self.assertEqual(len(probs), 1)
        self.assertTrue(probs[0].startswith("$: expected object"))

    def test_several_problems_reported(self):
        body = good_batch_get_builds()
        b = body["builds"][0]
        b["foo"] = 1
        b["phases"][2]["phaseStatus"] = "DONE"
        b["startTime"] = "2024-06-10T06:13:20Z"
        del b["source"]["type"]
        b["timeoutInMinutes"] = False
        self.assertEqual(len(cs.validate("codebuild", "BatchGetBuilds", body)), 5)


class OtherServicesMistakes(unittest.TestCase):
    def test_log_events_iso_timestamp_in_long(self):
        body = good_get_log_events()
        body["events"][0]["timestamp"] = "2024-06-10T06:13:21Z"
        probs = cs.validate("logs", "GetLogEvents", body)
        self.assertEqual(probs, ["$.events[0].timestamp: expected long (Timestamp), "
                                 "got string '2024-06-10T06:13:21Z'"])

    def test_log_events_empty_message_and_unknown(self):
        body = good_get_log_events()
        body["events"][1]["message"] = ""
        body["events"][1]["eventId"] = "x"
        probs = cs.validate("logs", "GetLogEvents", body)
        self.assertEqual(len(probs), 2, probs)

    def test_pipeline_state_mistakes(self):
        body = good_pipeline_state()
        body["stageStates"][1]["latestExecution"]["status"] = "IN_PROGRESS"
        body["stageStates"][1]["actionStates"][0]["latestExecution"]["percentComplete"] = 140
        del body["stageStates"][0]["actionStates"][0]["currentRevision"]["created"]
        body["created"] = "2024-06-10T05:13:20.123Z"
        probs = cs.validate("codepipeline", "GetPipelineState", body)
        self.assertEqual(len(probs), 4, probs)
        joined = "\n".join(probs)
        self.assertIn("$.stageStates[1].latestExecution.status: 'IN_PROGRESS' is not one of", joined)
        self.assertIn("$.stageStates[1].actionStates[0].latestExecution.percentComplete: "
                      "140 is above max 100", joined)
        self.assertIn("$.stageStates[0].actionStates[0].currentRevision: missing required "
                      "member 'created'", joined)
        self.assertIn("$.created: timestamp", joined)

    def test_pipeline_pattern_only_when_asked(self):
        body = good_pipeline_state()
        body["pipelineName"] = "bad name!"
        self.assertEqual(cs.validate("codepipeline", "GetPipelineState", body), [])
        probs = cs.validate("codepipeline", "GetPipelineState", body, patterns=True)
        self.assertEqual(len(probs), 1)
        self.assertIn("does not match pattern", probs[0])


class Errors(unittest.TestCase):
    def test_modeled_error_ok(self):
        body = {"__type": "ResourceNotFoundException", "message": "Build not found"}
        self.assertEqual(cs.validate_error("codebuild", body, 400), [])

    def test_namespaced_type_ok(self):
        body = {"__type": "com.amazonaws.codebuild#InvalidInputException", "message": "bad"}
        self.assertEqual(cs.validate_error("codebuild", body, 400), [])

    def test_common_error_ok(self):
        for code in ("UnrecognizedClientException", "InvalidSignatureException",
                     "MissingAuthenticationTokenException", "SerializationException",
                     "UnknownOperationException", "ValidationException", "ThrottlingException",
                     "AccessDeniedException", "IncompleteSignatureException"):
            self.assertEqual(cs.validate_error("codebuild", {"__type": code, "message": "m"}, 400), [],
                             code)

    def test_nope_fails(self):
        probs = cs.validate_error("codebuild", {"__type": "Nope"}, 400)
        self.assertTrue(any(p.startswith("$.__type: 'Nope' is not an error of codebuild") for p in probs),
                        probs)
        self.assertTrue(any("missing string 'message'" in p for p in probs), probs)

    def test_missing_type_and_bad_message(self):
        probs = cs.validate_error("codebuild", {"message": 5}, 400)
        self.assertEqual(len(probs), 2, probs)

    def test_extra_member_in_error(self):
        probs = cs.validate_error("codebuild", {"__type": "ResourceNotFoundException",
                                                "message": "x", "resource": "p"}, 400)
        self.assertEqual(len(probs), 1, probs)
        self.assertIn("$.resource: unknown member", probs[0])

    def test_modeled_error_member(self):
        body = {"__type": "InvalidSequenceTokenException", "message": "x",
                "expectedSequenceToken": "4963"}
        self.assertEqual(cs.validate_error("logs", body, 400), [])

    def test_codestar_capital_message(self):
        body = {"__type": "ResourceNotFoundException", "Message": "no connection"}
        self.assertEqual(cs.validate_error("codestar-connections", body, 400), [])
        # CodeConnections models ResourceNotFoundException with HTTP 404 (CodeStar's with none).
        self.assertEqual(cs.validate_error("codeconnections", body, 404), [])

    def test_status_checks(self):
        body = {"__type": "ResourceNotFoundException", "message": "x"}
        self.assertTrue(cs.validate_error("codebuild", body, 200))
        self.assertTrue(cs.validate_error("codebuild", body, 500))
        self.assertEqual(cs.validate_error("logs", {"__type": "ServiceUnavailableException",
                                                    "message": "x"}, 503), [])
        self.assertTrue(cs.validate_error("logs", {"__type": "ServiceUnavailableException",
                                                   "message": "x"}, 400))
        self.assertEqual(cs.validate_error("codebuild", body, None), [])

    def test_operation_errors(self):
        body = {"__type": "ResourceNotFoundException", "message": "x"}
        self.assertEqual(cs.validate_error("codebuild", body, 400, "StartBuild"), [])
        probs = cs.validate_error("codebuild", body, 400, "BatchGetBuilds")
        self.assertEqual(len(probs), 1)
        self.assertIn("not a modeled error of BatchGetBuilds", probs[0])


class RawAndWalker(unittest.TestCase):
    def test_parse_json_duplicates_and_nan(self):
        _, probs = cs.parse_json(b'{"a": 1, "a": 2, "b": NaN}')
        self.assertEqual(len(probs), 2, probs)
        self.assertIsNone(cs.parse_json(b"<html>")[0])

    def test_validate_raw(self):
        raw = json.dumps(good_batch_get_builds()).encode()
        self.assertEqual(cs.validate_raw("codebuild", "BatchGetBuilds", raw), [])
        self.assertTrue(cs.validate_raw("codebuild", "DeleteProject", b""))
        self.assertEqual(cs.validate_raw("codebuild", "StartBuild",
                                         b'{"__type":"ResourceNotFoundException","message":"m"}', 400), [])

    def test_java_patterns_are_translated(self):
        for svc in cs.SERVICES:
            for name, shape in cs.load_model(svc)["shapes"].items():
                if "pattern" in shape:
                    self.assertIsNotNone(cs._compile_pattern(shape["pattern"]), (svc, name))
        tag_key = cs._compile_pattern(r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]+)$")
        self.assertTrue(tag_key.fullmatch("Név 1:x"))
        self.assertFalse(tag_key.fullmatch("a#b"))

    def test_synthetic_blob_double_union_map(self):
        model = {"metadata": {"protocol": "json"}, "shapes": {
            "Top": {"type": "structure", "members": {
                "b": {"shape": "B"}, "d": {"shape": "D"}, "u": {"shape": "U"}, "m": {"shape": "M"},
                "iso": {"shape": "TS", "timestampFormat": "iso8601"}}},
            "B": {"type": "blob", "max": 3},
            "D": {"type": "double", "min": 0},
            "U": {"type": "structure", "union": True, "members": {"x": {"shape": "S"}, "y": {"shape": "S"}}},
            "M": {"type": "map", "key": {"shape": "K"}, "value": {"shape": "D"}},
            "K": {"type": "string", "enum": ["a", "b"]},
            "S": {"type": "string"},
            "TS": {"type": "timestamp"},
        }}

        def run(v):
            w = cs._Walker(model)
            w.walk({"shape": "Top"}, v, "$")
            return w.problems

        self.assertEqual(run({"b": "YWJj", "d": 1, "u": {"x": "1"}, "m": {"a": 1.5},
                              "iso": "2024-06-10T06:13:20Z"}), [])
        probs = run({"b": "YWJjZA==", "d": -1.0, "u": {"x": "1", "y": "2"}, "m": {"c": "z"},
                     "iso": 1718000000})
        self.assertEqual(len(probs), 6, probs)
        self.assertEqual(len(run({"b": "***"})), 1)
        self.assertEqual(len(run({"d": "NaN"})), 0)


class Cli(unittest.TestCase):
    def run_cli(self, *args, body=None):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(body, f)
        try:
            return subprocess.run([sys.executable, os.path.join(HERE, "check_shapes.py"),
                                   *[f.name if a == "FILE" else a for a in args]],
                                  capture_output=True, text=True)
        finally:
            os.unlink(f.name)

    def test_ok(self):
        r = self.run_cli("codebuild", "BatchGetBuilds", "FILE", body=good_batch_get_builds())
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)

    def test_problems(self):
        body = good_batch_get_builds()
        body["builds"][0]["phases"][2]["phaseStatus"] = "DONE"
        r = self.run_cli("codebuild", "BatchGetBuilds", "FILE", body=body)
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stdout.startswith("$.builds[0].phases[2].phaseStatus: 'DONE' is not one of"))

    def test_input_and_error_and_usage(self):
        r = self.run_cli("codebuild", "StartBuild", "FILE", "--input", body={"projectName": "p"})
        self.assertEqual(r.returncode, 0, r.stdout)
        r = self.run_cli("codebuild", "StartBuild", "FILE", "--input", body={})
        self.assertEqual(r.returncode, 1)
        r = self.run_cli("codebuild", "-", "FILE", "--error", "--status", "400", body={"__type": "Nope"})
        self.assertEqual(r.returncode, 1)
        r = self.run_cli("codebuild", "Nope", "FILE", body={})
        self.assertEqual(r.returncode, 2)
        r = self.run_cli("nosuchservice", "Nope", "FILE", body={})
        self.assertEqual(r.returncode, 2)


# ---------------------------------------------------------------------------
# Recorder end to end: real boto3 clients against a scripted local HTTP server
# ---------------------------------------------------------------------------
class _Server:
    """Serves scripted (status, body) replies keyed by X-Amz-Target operation name."""

    def __init__(self):
        self.script = {}
        srv = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                op = (self.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
                queue = srv.script.get(op) or [(400, {"__type": "UnknownOperationException",
                                                      "message": op})]
                status, body = queue.pop(0) if len(queue) > 1 else queue[0]
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@unittest.skipUnless(__import__("importlib").util.find_spec("boto3"), "boto3 not installed")
class RecorderEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
        os.environ["no_proxy"] = os.environ["NO_PROXY"]
        cls.server = _Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def clients(self, rec):
        from botocore.config import Config
        cfg = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=5)
        cb = rec.client("codebuild", endpoint_url=self.server.url, config=cfg)
        logs = rec.client("logs", endpoint_url=self.server.url, config=cfg)
        return cb, logs

    def test_all_good(self):
        self.server.script = {
            "BatchGetBuilds": [(200, good_batch_get_builds())],
            "GetLogEvents": [(200, good_get_log_events())],
            "StartBuild": [(400, {"__type": "ResourceNotFoundException", "message": "Project cannot be found"})],
            "ListProjects": [(400, {"__type": "ThrottlingException", "message": "Rate exceeded"}),
                             (200, {"projects": ["demo"]})],
        }
        with Recorder_(check_headers=True) as rec:
            cb, logs = self.clients(rec)
            resp = cb.batch_get_builds(ids=[BUILD_ID])
            self.assertEqual(resp["builds"][0]["phases"][2]["phaseType"], "PROVISIONING")
            logs.get_log_events(logGroupName="/aws/codebuild/demo", logStreamName="s")
            with self.assertRaises(cb.exceptions.ResourceNotFoundException):
                cb.start_build(projectName="nope")
            self.assertEqual(cb.list_projects()["projects"], ["demo"])  # one retry
            records = rec.check()
        self.assertEqual([(r.operation, r.status) for r in records],
                         [("BatchGetBuilds", 200), ("GetLogEvents", 200), ("StartBuild", 400),
                          ("ListProjects", 400), ("ListProjects", 200)])
        self.assertEqual(records[0].service, "codebuild")
        self.assertEqual(records[1].service, "logs")

    def test_problems_are_reported(self):
        bad = good_batch_get_builds()
        bad["builds"][0]["phases"][2]["phaseStatus"] = "DONE"
        bad["builds"][0]["startTime"] = "2024-06-10T06:13:20Z"  # botocore itself accepts this
        self.server.script = {
            "BatchGetBuilds": [(200, bad)],
            "StartBuild": [(400, {"__type": "Nope"})],
            "DeleteProject": [(200, b"")],
        }
        rec = Recorder_()
        cb, _ = self.clients(rec)
        cb.batch_get_builds(ids=[BUILD_ID])          # boto3 parses it happily...
        with self.assertRaises(Exception):
            cb.start_build(projectName="p")
        cb.delete_project(name="p")
        rec.detach()
        with self.assertRaises(AssertionError) as ctx:
            rec.check()
        msg = str(ctx.exception)
        self.assertIn("#0 codebuild BatchGetBuilds (HTTP 200) $.builds[0].phases[2].phaseStatus: "
                      "'DONE' is not one of", msg)
        self.assertIn("#0 codebuild BatchGetBuilds (HTTP 200) $.builds[0].startTime: timestamp", msg)
        self.assertIn("#1 codebuild StartBuild (HTTP 400) $.__type: 'Nope'", msg)
        self.assertIn("#2 codebuild DeleteProject (HTTP 200) $: empty body", msg)
        # detached: further calls are not recorded
        n = len(rec.records)
        cb.delete_project(name="p")
        self.assertEqual(len(rec.records), n)

    def test_no_records(self):
        with self.assertRaises(AssertionError):
            Recorder_().check()


IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
ROLE_XML = (
    f'<GetRoleResponse xmlns="{IAM_NS}"><GetRoleResult><Role><Path>/</Path>'
    "<RoleName>r</RoleName><RoleId>AROAAAAAAAAAAAAAAAAAA</RoleId>"
    "<Arn>arn:aws:iam::000000000000:role/r</Arn><CreateDate>2026-01-01T00:00:00.000Z</CreateDate>"
    "<MaxSessionDuration>3600</MaxSessionDuration><Tags><member><Key>k</Key><Value>v</Value>"
    "</member></Tags></Role></GetRoleResult><ResponseMetadata><RequestId>x</RequestId>"
    "</ResponseMetadata></GetRoleResponse>"
)


class QueryXml(unittest.TestCase):
    def test_a_modeled_answer_has_no_problems(self):
        self.assertEqual(cs.validate_xml("iam", "GetRole", ROLE_XML.encode()), [])

    def test_unknown_members_types_and_missing_required_members(self):
        bad = (ROLE_XML.replace("<RoleName>r</RoleName>", "<Bogus>1</Bogus>")
               .replace("3600", "an hour").replace("<CreateDate>2026-01-01T00:00:00.000Z",
                                                   "<CreateDate>1767225600"))
        probs = cs.validate_xml("iam", "GetRole", bad.encode())
        self.assertTrue(any("unknown member 'Bogus'" in p for p in probs), probs)
        self.assertTrue(any("MaxSessionDuration: 'an hour' is not an integer" in p for p in probs), probs)
        self.assertTrue(any("CreateDate: '1767225600' is not an ISO-8601" in p for p in probs), probs)
        self.assertTrue(any("missing required member 'RoleName'" in p for p in probs), probs)

    def test_the_namespace_and_wrapper(self):
        probs = cs.validate_xml("iam", "GetRole", ROLE_XML.replace(IAM_NS, "urn:x").encode())
        self.assertTrue(any("namespace" in p for p in probs), probs)
        probs = cs.validate_xml("iam", "ListRoles", ROLE_XML.encode())
        self.assertTrue(any("expected <ListRolesResponse>" in p for p in probs), probs)

    def test_errors_by_code_and_status(self):
        err = (f'<ErrorResponse xmlns="{IAM_NS}"><Error><Type>Sender</Type><Code>NoSuchEntity</Code>'
               "<Message>m</Message></Error><RequestId>1</RequestId></ErrorResponse>").encode()
        self.assertEqual(cs.validate_xml("iam", "GetRole", err, 404), [])
        self.assertTrue(cs.validate_xml("iam", "GetRole", err, 400))
        self.assertTrue(cs.validate_xml("iam", "ListRoles", err, 404))
        common = err.replace(b"NoSuchEntity", b"ValidationError")
        self.assertEqual(cs.validate_xml("iam", "ListRoles", common, 400), [])
        self.assertTrue(cs.validate_xml("iam", "ListRoles", err.replace(b"NoSuchEntity", b"Nope"), 400))


Recorder_ = cs.Recorder

if __name__ == "__main__":
    unittest.main()
