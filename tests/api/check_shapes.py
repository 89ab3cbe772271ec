#!/usr/bin/env python3
"""check_shapes -- validate JSON bodies against botocore's own service models.

A strict checker for localbuild (local CodeBuild / CloudWatch Logs /
CodePipeline / CodeStar Connections / CodeConnections emulator).  It walks
the botocore service model (``botocore/data/<service>/<version>/service-2``)
and reports anything that a real AWS JSON 1.0/1.1 endpoint would not send:

* structures: unknown member names, missing ``required`` members,
  ``union`` structures without exactly one member set;
* lists / maps: JSON type, ``min``/``max`` element counts, map keys;
* strings: JSON type, ``enum`` membership, ``min``/``max`` length
  (and ``pattern`` if you ask for it with ``patterns=True`` / ``--patterns``;
  applied as a full match, like AWS's Java validators; patterns Python's
  ``re`` cannot compile are skipped);
* integer / long: must be a JSON integer (not a float, not a bool), 32/64-bit
  range, ``min``/``max``;
* boolean: must be ``true``/``false``;
* double / float: JSON number (or the strings "NaN", "Infinity", "-Infinity");
* timestamp: for the JSON protocols epoch *seconds* as a JSON number
  (an ISO-8601 string is a problem; a value > 1e11 looks like milliseconds);
  an explicit ``timestampFormat`` trait (iso8601 / rfc822) is honoured;
* blob: base64 string (length limits apply to the decoded bytes);
* ``null`` anywhere is a problem (AWS omits absent members) unless
  ``allow_null=True`` / ``--allow-null``;
* duplicate keys and NaN/Infinity literals in the raw JSON text are problems.

Every problem is a string that starts with a JSON path, e.g.::

    $.builds[0].phases[2].phaseStatus: 'DONE' is not one of ['SUCCEEDED', ...]

Library use
-----------
    from check_shapes import validate, validate_error, validate_raw, Recorder

    problems = validate("codebuild", "BatchGetBuilds", body_dict)          # output
    problems = validate("codebuild", "StartBuild", req_dict, direction="input")
    problems = validate_error("codebuild", {"__type": "ResourceNotFoundException",
                                            "message": "x"}, 400)
    problems = validate_raw("codebuild", "BatchGetBuilds", raw_bytes, status=200)

``operation`` may be the model name (``BatchGetBuilds``), the snake_case
method name (``batch_get_builds``) or an X-Amz-Target value
(``CodeBuild_20161006.BatchGetBuilds``).

End-to-end tests (boto3 / botocore client against a running server)::

    rec = Recorder()
    cb = rec.client("codebuild", endpoint_url="http://127.0.0.1:4566")  # boto3, lazily imported
    logs = rec.attach(my_existing_botocore_client)                      # or attach your own
    cb.start_build(projectName="p"); ...
    rec.check()          # AssertionError listing every problem in every captured body

The recorder hooks the client's ``before-parse`` event, which botocore emits
once per HTTP *attempt* (so retried throttles / 5xx are captured too) with the
raw ``response_dict`` (status, headers, body bytes).  Success bodies are checked
with :func:`validate`, error bodies (status >= 300) with :func:`validate_error`.
``with Recorder(client) as rec: ...`` detaches the hooks on exit.

CLI
---
    python3 check_shapes.py SERVICE OPERATION FILE.json [--input]
    python3 check_shapes.py SERVICE OPERATION FILE.json --error [--status 400]
    options: --patterns  --allow-null      (FILE may be '-' for stdin)

Prints one problem per line; exit status 1 if there are problems, 0 if none,
2 on usage errors (unknown service/operation, unreadable file).

Query-protocol services (IAM, STS) answer in XML; :func:`validate_xml` checks
those bodies the same way against the same model: the ``<OpResponse>`` /
``<OpResult>`` wrapper in the service's namespace, every element a modeled member
(lists as ``<member>``), required members, enums, lengths, integers, booleans and
ISO-8601 timestamps; errors as ``<ErrorResponse>`` with a modeled or common code
and its HTTP status.  The recorder picks JSON or XML by the model's protocol.

Only botocore is required (boto3 only for ``Recorder.client``).  Supported
services: codebuild, logs, codepipeline, codestar-connections, codeconnections,
iam, sts (any other JSON- or query-protocol botocore service works too).
"""
from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import sys
from datetime import datetime

__all__ = [
    "validate", "validate_error", "validate_raw", "validate_xml", "parse_json",
    "load_model", "resolve_operation", "Recorder", "Record", "COMMON_ERRORS",
]

SERVICES = ("codebuild", "logs", "codepipeline", "codestar-connections", "codeconnections",
            "iam", "sts")

# Errors any AWS JSON endpoint may return although the service model does not
# list them, with the HTTP statuses AWS uses for them.
COMMON_ERRORS = {
    "UnrecognizedClientException": {400, 403},
    "InvalidSignatureException": {400, 403},
    "MissingAuthenticationTokenException": {400, 403},
    "IncompleteSignatureException": {400, 403},
    "InvalidClientTokenId": {400, 403},
    "ExpiredTokenException": {400, 403},
    "SerializationException": {400},
    "UnknownOperationException": {400},
    "ValidationException": {400},
    "AccessDeniedException": {400, 403},
    "ThrottlingException": {400, 429},
    "InternalFailure": {500},
    "ServiceUnavailable": {503},
}

_INT_RANGE = {
    "byte": (-2**7, 2**7 - 1),
    "short": (-2**15, 2**15 - 1),
    "integer": (-2**31, 2**31 - 1),
    "long": (-2**63, 2**63 - 1),
}
_MS_THRESHOLD = 1e11  # epoch seconds above this is year > 5000: surely milliseconds
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MEMBER_ONLY = {"shape", "documentation"}


# --------------------------------------------------------------------------
# model access
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def load_model(service: str) -> dict:
    """The raw service-2 model dict, loaded by botocore's own Loader."""
    import botocore.loaders
    return botocore.loaders.Loader().load_service_model(service, "service-2")


def _norm(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def resolve_operation(service: str, operation: str) -> dict:
    """Operation dict for ``operation`` (model name, snake_case or X-Amz-Target)."""
    ops = load_model(service)["operations"]
    if operation in ops:
        return ops[operation]
    if "." in operation:  # X-Amz-Target: Prefix.OperationName
        tail = operation.rsplit(".", 1)[1]
        if tail in ops:
            return ops[tail]
        operation = tail
    wanted = _norm(operation)
    for name, op in ops.items():
        if _norm(name) == wanted:
            return op
    raise KeyError(f"{service} has no operation {operation!r}")


def _error_shape_names(model: dict) -> set:
    return {n for n, s in model["shapes"].items() if s.get("exception")}


# --------------------------------------------------------------------------
# raw JSON parsing (catches what json.loads silently accepts)
# --------------------------------------------------------------------------
def parse_json(raw) -> tuple:
    """Parse bytes/str strictly.  Returns ``(obj, problems)``; obj is None if unparsable."""
    problems = []
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return None, [f"$: body is not UTF-8: {e}"]

    def pairs(items):
        d = {}
        for k, v in items:
            if k in d:
                problems.append(f"$: duplicate key {k!r} in a JSON object")
            d[k] = v
        return d

    def constant(name):
        problems.append(f"$: non-standard JSON literal {name}")
        return float(name.replace("Infinity", "inf"))

    try:
        obj = json.loads(raw, object_pairs_hook=pairs, parse_constant=constant)
    except ValueError as e:
        return None, [f"$: body is not valid JSON: {e}"]
    return obj, problems


# --------------------------------------------------------------------------
# the walker
# --------------------------------------------------------------------------
def _jtype(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _show(v, limit=80) -> str:
    s = repr(v)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _member_path(path: str, name: str) -> str:
    return f"{path}.{name}" if _IDENT.match(name) else f"{path}[{json.dumps(name)}]"


@functools.lru_cache(maxsize=None)
def _compile_pattern(pattern: str):
    """Compile a model (Java/ECMA) regex for Python ``re``; None if impossible.

    ``\\p{L}``/``\\p{N}``/``\\p{Z}`` become ``\\w``/``\\d``/``\\s`` (slightly broader, so
    never a false problem) and ``[\\w-_]`` style ranges get their '-' escaped.
    """
    for candidate in (pattern,
                      pattern.replace(r"\p{L}", r"\w").replace(r"\p{N}", r"\d")
                             .replace(r"\p{Z}", r"\s")):
        for c in (candidate, re.sub(r"(\\[wdsWDS])-", r"\1\\-", candidate)):
            try:
                return re.compile(c)
            except re.error:
                pass
    return None


class _Walker:
    def __init__(self, model, allow_null=False, patterns=False):
        self.model = model
        self.shapes = model["shapes"]
        # Newer models list several protocols (e.g. smithy-rpc-v2-cbor first, then json); the
        # bodies checked here are JSON, so JSON's rules apply whenever the service speaks it.
        meta = model["metadata"]
        protocols = meta.get("protocols") or [meta.get("protocol", "json")]
        self.protocol = "json" if "json" in protocols else protocols[0]
        self.allow_null = allow_null
        self.patterns = patterns
        self.problems = []

    def add(self, path, msg):
        self.problems.append(f"{path}: {msg}")

    def _traits(self, ref):
        """Shape dict with member-level traits (ref) layered on top, as botocore does."""
        shape = self.shapes[ref["shape"]]
        extra = {k: v for k, v in ref.items() if k not in _MEMBER_ONLY}
        if extra:
            shape = {**shape, **extra}
        return ref["shape"], shape

    def walk(self, ref, value, path):
        name, shape = self._traits(ref)
        if value is None:
            if not self.allow_null:
                self.add(path, f"null is not allowed ({name}); AWS omits absent members")
            return
        t = shape["type"]
        shown = "<sensitive>" if shape.get("sensitive") else _show(value)
        handler = getattr(self, "_" + t, None)
        if handler is None:
            self.add(path, f"shape {name} has unsupported type {t!r}")
            return
        handler(name, shape, value, path, shown)

    # ---- aggregates
    def _structure(self, name, shape, value, path, shown):
        if shape.get("document"):  # document type: any JSON
            return
        if shape.get("eventstream"):
            self.add(path, f"{name} is an event stream; not checkable as a JSON body")
            return
        if not isinstance(value, dict):
            self.add(path, f"expected object ({name}), got {_jtype(value)} {shown}")
            return
        members = shape.get("members", {})
        wire = {}
        for mname, mref in members.items():
            if mref.get("location") in ("header", "headers", "uri", "querystring", "statusCode"):
                continue
            wire[mref.get("locationName", mname)] = (mname, mref)
        for key in value:
            if key not in wire:
                self.add(_member_path(path, key),
                         f"unknown member {key!r} of {name} (known: {sorted(wire)})")
        for req in shape.get("required", []):
            mref = members.get(req)
            if mref is None:
                continue
            key = mref.get("locationName", req)
            if key not in value:
                self.add(path, f"missing required member {key!r} of {name}")
        for key, (mname, mref) in wire.items():
            if key in value:
                self.walk(mref, value[key], _member_path(path, key))
        if shape.get("union"):
            present = [k for k in value if k in wire and value[k] is not None]
            if len(present) != 1:
                self.add(path, f"union {name} must have exactly one member set, got {present}")

    def _list(self, name, shape, value, path, shown):
        if not isinstance(value, list):
            self.add(path, f"expected array ({name}), got {_jtype(value)} {shown}")
            return
        self._bounds(name, shape, len(value), path, "items")
        for i, item in enumerate(value):
            self.walk(shape["member"], item, f"{path}[{i}]")

    def _map(self, name, shape, value, path, shown):
        if not isinstance(value, dict):
            self.add(path, f"expected object ({name}), got {_jtype(value)} {shown}")
            return
        self._bounds(name, shape, len(value), path, "entries")
        for k, v in value.items():
            p = f"{path}[{json.dumps(k)}]"
            self.walk(shape["key"], k, p + " (map key)")
            self.walk(shape["value"], v, p)

    # ---- scalars
    def _string(self, name, shape, value, path, shown):
        if not isinstance(value, str):
            self.add(path, f"expected string ({name}), got {_jtype(value)} {shown}")
            return
        enum = shape.get("enum")
        if enum is not None and value not in enum:
            self.add(path, f"{shown} is not one of {list(enum)} ({name})")
        self._bounds(name, shape, len(value), path, "characters")
        if self.patterns and "pattern" in shape:
            rx = _compile_pattern(shape["pattern"])
            if rx is None:
                return
            if not rx.fullmatch(value):
                self.add(path, f"{shown} does not match pattern {shape['pattern']!r} ({name})")

    def _integral(self, name, shape, value, path, shown):
        t = shape["type"]
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"expected {t} ({name}), got {_jtype(value)} {shown}")
            return
        lo, hi = _INT_RANGE[t]
        if not lo <= value <= hi:
            self.add(path, f"{value} is out of range for {t} ({name})")
        self._range(name, shape, value, path)

    _integer = _long = _short = _byte = _integral

    def _float(self, name, shape, value, path, shown):
        if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(path, f"expected number ({name}), got {_jtype(value)} {shown}")
            return
        self._range(name, shape, value, path)

    _double = _float

    def _boolean(self, name, shape, value, path, shown):
        if not isinstance(value, bool):
            self.add(path, f"expected boolean ({name}), got {_jtype(value)} {shown}")

    def _timestamp(self, name, shape, value, path, shown):
        fmt = shape.get("timestampFormat")
        if fmt is None:
            fmt = "unixTimestamp" if self.protocol in ("json", "rest-json") else "iso8601"
        if fmt == "unixTimestamp":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.add(path, f"timestamp ({name}) must be epoch seconds as a JSON number "
                               f"for the {self.protocol} protocol, got {_jtype(value)} {shown}")
                return
            if not math.isfinite(value) or value < 0:
                self.add(path, f"timestamp ({name}) {value!r} is not a valid epoch time")
            elif value > _MS_THRESHOLD:
                self.add(path, f"timestamp ({name}) {value!r} looks like epoch milliseconds; "
                               f"the JSON protocol uses epoch seconds")
            return
        if not isinstance(value, str):
            self.add(path, f"timestamp ({name}) must be a {fmt} string, got {_jtype(value)} {shown}")
            return
        try:
            if fmt == "iso8601":
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            else:
                from email.utils import parsedate_to_datetime
                parsedate_to_datetime(value)
        except (ValueError, TypeError):
            self.add(path, f"timestamp ({name}) {shown} is not a valid {fmt} string")

    def _blob(self, name, shape, value, path, shown):
        if not isinstance(value, str):
            self.add(path, f"expected base64 string ({name}), got {_jtype(value)} {shown}")
            return
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.add(path, f"{shown} is not valid base64 ({name})")
            return
        self._bounds(name, shape, len(data), path, "bytes")

    # ---- constraints
    def _bounds(self, name, shape, n, path, unit):
        if "min" in shape and n < shape["min"]:
            self.add(path, f"length {n} is below min {shape['min']} {unit} ({name})")
        if "max" in shape and n > shape["max"]:
            self.add(path, f"length {n} is above max {shape['max']} {unit} ({name})")

    def _range(self, name, shape, value, path):
        if "min" in shape and value < shape["min"]:
            self.add(path, f"{value} is below min {shape['min']} ({name})")
        if "max" in shape and value > shape["max"]:
            self.add(path, f"{value} is above max {shape['max']} ({name})")


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------
def validate(service: str, operation: str, body, direction: str = "output",
             *, allow_null: bool = False, patterns: bool = False) -> list:
    """Problems of ``body`` (parsed JSON) against the operation's output/input shape."""
    if direction not in ("output", "input"):
        raise ValueError("direction must be 'output' or 'input'")
    model = load_model(service)
    op = resolve_operation(service, operation)
    w = _Walker(model, allow_null=allow_null, patterns=patterns)
    ref = op.get(direction)
    if ref is None:
        if body not in ({}, None):
            w.add("$", f"{op['name']} has no {direction} shape; body must be {{}}, "
                       f"got {_show(body)}")
        return w.problems
    if not isinstance(body, dict):
        w.add("$", f"expected object ({ref['shape']}), got {_jtype(body)} {_show(body)}")
        return w.problems
    w.walk(ref, body, "$")
    return w.problems


def _error_code(type_value: str) -> str:
    # same normalisation as botocore.parsers.BaseJSONParser._do_error_parse
    code = type_value
    if ":" in code:
        code = code.split(":", 1)[0]
    if "#" in code:
        code = code.rsplit("#", 1)[1]
    return code


def validate_error(service: str, body, status=None, operation: str | None = None,
                   *, allow_null: bool = False, patterns: bool = False) -> list:
    """Problems of an error response body (and its HTTP status, if given).

    The body needs a string ``__type`` naming an error shape of the service (or
    one of :data:`COMMON_ERRORS`) and a string ``message`` (``Message`` is
    accepted too: botocore reads either, and CodeStar Connections models it so).
    Other keys must be modeled members of the error shape.  If ``operation`` is
    given, a service error that the operation does not list is a problem.
    """
    model = load_model(service)
    w = _Walker(model, allow_null=allow_null, patterns=patterns)
    if not isinstance(body, dict):
        w.add("$", f"error body must be an object, got {_jtype(body)} {_show(body)}")
        return w.problems
    if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
        w.add("$", f"HTTP status {status!r} is not an error status (4xx/5xx)")

    errors = _error_shape_names(model)
    tv = body.get("__type")
    code = shape = None
    if tv is None:
        w.add("$", "missing '__type' (botocore would fall back to the HTTP status as the code)")
    elif not isinstance(tv, str):
        w.add("$.__type", f"expected string, got {_jtype(tv)} {_show(tv)}")
    else:
        code = _error_code(tv)
        if code in errors:
            shape = model["shapes"][code]
        elif code not in COMMON_ERRORS:
            w.add("$.__type", f"{tv!r} is not an error of {service} "
                              f"(modeled: {sorted(errors)}; common: {sorted(COMMON_ERRORS)})")
            code = None

    # message
    members = shape.get("members", {}) if shape else {}
    wire = {m.get("locationName", n): n for n, m in members.items()}
    msg_keys = [k for k in ("message", "Message") if k in body]
    if not msg_keys:
        w.add("$", "missing string 'message'")
    for k in msg_keys:
        if k not in wire and not isinstance(body[k], str):
            w.add(f"$.{k}", f"expected string, got {_jtype(body[k])} {_show(body[k])}")

    # status vs. error kind
    if code is not None and isinstance(status, int) and 400 <= status <= 599:
        if shape is not None:
            want = (shape.get("error") or {}).get("httpStatusCode")
            if want is not None and status != want:
                w.add("$", f"{code} is modeled with HTTP {want}, got {status}")
            elif want is None and shape.get("fault") and status < 500:
                w.add("$", f"{code} is a server fault; expected 5xx, got {status}")
            elif want is None and not shape.get("fault") and status >= 500:
                w.add("$", f"{code} is a client error; expected 4xx, got {status}")
        elif status not in COMMON_ERRORS[code]:
            w.add("$", f"{code} is sent with HTTP {sorted(COMMON_ERRORS[code])}, got {status}")

    # operation's modeled errors
    if operation is not None and shape is not None and code not in COMMON_ERRORS:
        op = resolve_operation(service, operation)
        listed = {e["shape"] for e in op.get("errors", [])}
        if code not in listed:
            w.add("$.__type", f"{code} is not a modeled error of {op['name']} "
                              f"(modeled: {sorted(listed)})")

    # remaining members against the error shape
    rest = {k: v for k, v in body.items()
            if k != "__type" and not (k in ("message", "Message") and k not in wire)}
    if shape is not None:
        w.walk({"shape": code}, rest, "$")
    else:
        for k in rest:
            w.add(_member_path("$", k), f"unknown member {k!r} in error body")
    return w.problems


def validate_raw(service: str, operation: str, raw, status: int = 200,
                 direction: str = "output", **kw) -> list:
    """Parse raw bytes strictly, then validate as success (status < 300) or error body."""
    if raw is None or (isinstance(raw, (bytes, str)) and not raw.strip()):
        if status is not None and status >= 300:
            return ["$: empty error body (AWS sends {\"__type\": ..., \"message\": ...})"]
        return ["$: empty body (AWS JSON endpoints send at least {})"]
    body, problems = parse_json(raw)
    if body is None:
        return problems
    if status is not None and status >= 300:
        return problems + validate_error(service, body, status, operation, **kw)
    return problems + validate(service, operation, body, direction, **kw)


# --------------------------------------------------------------------------
# query protocol (XML answers: IAM, STS)
# --------------------------------------------------------------------------
# Errors any query endpoint may return although the model does not list them.
QUERY_COMMON_ERRORS = {
    "ValidationError": {400},
    "InvalidAction": {400},
    "InvalidClientTokenId": {400, 403},
    "SignatureDoesNotMatch": {400, 403},
    "MissingAuthenticationToken": {400, 403},
    "IncompleteSignature": {400, 403},
    "ExpiredToken": {400, 403},
    "AccessDenied": {400, 403},
    "Throttling": {400},
    "InternalFailure": {500},
    "ServiceUnavailable": {503},
}

_ISO8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _XmlWalker:
    def __init__(self, model):
        self.model = model
        self.problems = []

    def add(self, path, msg):
        self.problems.append(f"{path}: {msg}")

    def walk(self, shape_name, el, path):
        shape = self.model["shapes"][shape_name]
        kind = shape["type"]
        if kind == "structure":
            members = shape.get("members", {})
            wire = {m.get("locationName", n): n for n, m in members.items()}
            seen = set()
            for child in el:
                name = _local(child.tag)
                cpath = f"{path}.{name}"
                if name not in wire:
                    self.add(cpath, f"unknown member {name!r} of {shape_name} "
                                    f"(modeled: {sorted(wire)})")
                    continue
                if name in seen:
                    self.add(cpath, "member given twice")
                seen.add(name)
                self.walk(members[wire[name]]["shape"], child, cpath)
            for req in shape.get("required", []):
                if members[req].get("locationName", req) not in seen:
                    self.add(path, f"missing required member {req!r} of {shape_name}")
            if (el.text or "").strip():
                self.add(path, f"text {el.text.strip()!r} in structure {shape_name}")
            return
        if kind == "list":
            member = shape["member"]
            tag = member.get("locationName", "member")
            items = list(el)
            for i, child in enumerate(items):
                if _local(child.tag) != tag:
                    self.add(f"{path}[{i}]", f"list item <{_local(child.tag)}>, expected <{tag}>")
                self.walk(member["shape"], child, f"{path}[{i}]")
            self._bounds(shape, len(items), path, "items")
            return
        if kind == "map":
            for i, entry in enumerate(el):
                kv = {_local(c.tag): c for c in entry}
                for part in ("key", "value"):
                    if part not in kv:
                        self.add(f"{path}[{i}]", f"map entry without <{part}>")
                    else:
                        self.walk(shape[part]["shape"], kv[part], f"{path}[{i}].{part}")
            return
        if len(el):
            self.add(path, f"elements inside a {kind} ({shape_name})")
            return
        text = el.text or ""
        if kind == "string":
            if "enum" in shape and text not in shape["enum"]:
                self.add(path, f"{text!r} is not one of {shape['enum']}")
            self._bounds(shape, len(text), path, "characters")
        elif kind in ("integer", "long", "short", "byte"):
            if not re.fullmatch(r"-?\d+", text):
                self.add(path, f"{text!r} is not an {kind}")
            else:
                lo, hi = _INT_RANGE[kind]
                if not lo <= int(text) <= hi:
                    self.add(path, f"{text} is out of the {kind} range")
        elif kind == "boolean":
            if text not in ("true", "false"):
                self.add(path, f"{text!r} is not a boolean (true/false)")
        elif kind == "timestamp":
            if not _ISO8601.match(text):
                self.add(path, f"{text!r} is not an ISO-8601 timestamp")
        elif kind in ("double", "float"):
            try:
                float(text)
            except ValueError:
                self.add(path, f"{text!r} is not a {kind}")
        elif kind == "blob":
            try:
                base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                self.add(path, "not base64")

    def _bounds(self, shape, n, path, unit):
        if "min" in shape and n < shape["min"]:
            self.add(path, f"{n} {unit}, the model's minimum is {shape['min']}")
        if "max" in shape and n > shape["max"]:
            self.add(path, f"{n} {unit}, the model's maximum is {shape['max']}")


def validate_xml(service: str, operation: str, raw, status: int = 200) -> list:
    """Problems of a query-protocol (XML) answer: success (status < 300) or error."""
    import xml.etree.ElementTree as ET
    model = load_model(service)
    op = resolve_operation(service, operation)
    ns = model["metadata"].get("xmlNamespace")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as e:
        return [f"$: not XML ({e})"]
    w = _XmlWalker(model)
    if ns and root.tag != f"{{{ns}}}{_local(root.tag)}":
        w.add("$", f"root <{root.tag}> is not in {service}'s namespace {ns}")
    children = {_local(c.tag): c for c in root}
    if status is not None and status >= 300:
        if _local(root.tag) != "ErrorResponse":
            return w.problems + [f"$: error root <{_local(root.tag)}>, expected <ErrorResponse>"]
        error = children.get("Error")
        if error is None:
            return w.problems + ["$: <ErrorResponse> without <Error>"]
        if "RequestId" not in children:
            w.add("$", "<ErrorResponse> without <RequestId>")
        fields = {_local(c.tag): (c.text or "") for c in error}
        code = fields.get("Code", "")
        if fields.get("Type") not in ("Sender", "Receiver"):
            w.add("$.Error.Type", f"{fields.get('Type')!r}, expected Sender or Receiver")
        if not fields.get("Message"):
            w.add("$.Error", "no <Message>")
        by_code = {}
        for name, shape in model["shapes"].items():
            if shape.get("exception"):
                by_code[(shape.get("error") or {}).get("code", name)] = (name, shape)
        if code in by_code:
            name, shape = by_code[code]
            want = (shape.get("error") or {}).get("httpStatusCode")
            if want is not None and status != want:
                w.add("$.Error.Code", f"{code} is modeled with HTTP {want}, got {status}")
            listed = {e["shape"] for e in op.get("errors", [])}
            if name not in listed:
                w.add("$.Error.Code", f"{code} is not a modeled error of {op['name']} "
                                      f"(modeled: {sorted(listed)})")
        elif code in QUERY_COMMON_ERRORS:
            if status not in QUERY_COMMON_ERRORS[code]:
                w.add("$.Error.Code", f"{code} is sent with HTTP "
                                      f"{sorted(QUERY_COMMON_ERRORS[code])}, got {status}")
        else:
            w.add("$.Error.Code", f"{code!r} is not an error of {service}")
        return w.problems
    name = op["name"]
    if _local(root.tag) != f"{name}Response":
        w.add("$", f"root <{_local(root.tag)}>, expected <{name}Response>")
    meta = children.get("ResponseMetadata")
    if meta is None or not [c for c in meta if _local(c.tag) == "RequestId"]:
        w.add("$", "no <ResponseMetadata><RequestId>")
    out = op.get("output")
    wrapper = out.get("resultWrapper") if out else None
    for tag in children:
        if tag not in ("ResponseMetadata", wrapper):
            w.add(f"$.{tag}", f"unexpected element in <{name}Response>")
    if out is not None and wrapper:
        if wrapper not in children:
            w.add("$", f"no <{wrapper}>")
        else:
            w.walk(out["shape"], children[wrapper], f"$.{wrapper}")
    return w.problems


# --------------------------------------------------------------------------
# Recorder for end-to-end tests
# --------------------------------------------------------------------------
class Record:
    """One captured HTTP response (one attempt)."""

    __slots__ = ("index", "service", "operation", "status", "headers", "body", "streaming")

    def __init__(self, index, service, operation, status, headers, body, streaming=False):
        self.index, self.service, self.operation = index, service, operation
        self.status, self.headers, self.body, self.streaming = status, headers, body, streaming

    def __repr__(self):
        return f"<Record #{self.index} {self.service} {self.operation} HTTP {self.status}>"

    @property
    def json(self):
        return parse_json(self.body)[0] if self.body is not None else None

    def problems(self, *, check_operation_errors=True, check_headers=False, **kw) -> list:
        protocol = load_model(self.service)["metadata"].get("protocol")
        if protocol == "rest-xml":
            import botocore.session
            from check_xml import check_response
            model = botocore.session.get_session().get_service_model(self.service)
            return check_response(model.operation_model(self.operation), self.status,
                                  self.headers, b"" if self.streaming else (self.body or b""))
        if self.streaming:
            return []
        if protocol == "query":
            return validate_xml(self.service, self.operation, self.body, self.status)
        if self.status < 300:
            probs = validate_raw(self.service, self.operation, self.body, self.status, **kw)
        else:
            op = self.operation if check_operation_errors else None
            probs = _validate_raw_error(self.service, op, self.body, self.status, **kw)
        if check_headers:
            probs += _header_problems(self.service, self.headers)
        return probs


def _validate_raw_error(service, operation, raw, status, **kw):
    if raw is None or not raw.strip():
        return ["$: empty error body (AWS sends {\"__type\": ..., \"message\": ...})"]
    body, problems = parse_json(raw)
    if body is None:
        return problems
    return problems + validate_error(service, body, status, operation, **kw)


def _header_problems(service, headers):
    probs = []
    h = {k.lower(): v for k, v in (headers or {}).items()}
    ver = load_model(service)["metadata"].get("jsonVersion", "1.1")
    ct = h.get("content-type", "")
    if ct.split(";")[0].strip() != f"application/x-amz-json-{ver}":
        probs.append(f"header Content-Type: {ct!r}, AWS sends 'application/x-amz-json-{ver}'")
    if not h.get("x-amzn-requestid"):
        probs.append("header x-amzn-RequestId missing")
    return probs


class Recorder:
    """Capture every raw HTTP response of botocore clients and validate them.

    >>> rec = Recorder(client1, client2)        # or rec.attach(c) / rec.client(...)
    >>> ... make calls (errors may be raised; they are captured anyway) ...
    >>> rec.check()                              # AssertionError with all problems
    """

    def __init__(self, *clients, check_operation_errors=True, check_headers=False,
                 allow_null=False, patterns=False, check_on_exit=False):
        self.records = []
        self.check_operation_errors = check_operation_errors
        self.check_headers = check_headers
        self.allow_null = allow_null
        self.patterns = patterns
        self.check_on_exit = check_on_exit
        self._uid = f"check_shapes.Recorder.{id(self)}"
        self._clients = []
        for c in clients:
            self.attach(c)

    # ---- hooking
    def attach(self, client):
        """Hook ``client`` (boto3/botocore client); returns the client."""
        client.meta.events.register("before-parse", self._on_before_parse, unique_id=self._uid)
        self._clients.append(client)
        return client

    def detach(self):
        for c in self._clients:
            c.meta.events.unregister("before-parse", unique_id=self._uid)
        self._clients = []

    def client(self, service, **kwargs):
        """Create a boto3 client (dummy credentials/region unless given) and attach it."""
        import boto3  # lazy: only needed here
        kwargs.setdefault("region_name", "us-east-1")
        kwargs.setdefault("aws_access_key_id", "AKIDLOCALBUILDTEST")
        kwargs.setdefault("aws_secret_access_key", "localbuild-test-secret")
        return self.attach(boto3.client(service, **kwargs))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.detach()
        if exc_type is None and self.check_on_exit:
            self.check()
        return False

    def _on_before_parse(self, operation_model, response_dict, **kwargs):
        status = response_dict.get("status_code")
        streaming = bool(operation_model.has_event_stream_output or
                         (operation_model.has_streaming_output and status < 300))
        body = None if streaming else response_dict.get("body")
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.records.append(Record(
            len(self.records), operation_model.service_model.service_name,
            operation_model.name, status, dict(response_dict.get("headers") or {}),
            body, streaming))

    # ---- checking
    def clear(self):
        self.records = []

    def problems(self) -> list:
        out = []
        for r in self.records:
            for p in r.problems(check_operation_errors=self.check_operation_errors,
                                check_headers=self.check_headers,
                                allow_null=self.allow_null, patterns=self.patterns):
                out.append(f"#{r.index} {r.service} {r.operation} (HTTP {r.status}) {p}")
        return out

    def check(self, require_any: bool = True, operations=()) -> list:
        """Validate all captured bodies; raise AssertionError listing problems (and naming any
        of ``operations`` never answered)."""
        if require_any and not self.records:
            raise AssertionError("Recorder captured no HTTP responses (client not attached?)")
        problems = self.problems()
        seen = {r.operation for r in self.records}
        missing = [o for o in operations if o not in seen]
        if missing:
            problems.append(f"never checked: {missing}")
        if problems:
            raise AssertionError(f"{len(problems)} shape problem(s) in "
                                 f"{len(self.records)} captured response(s):\n  "
                                 + "\n  ".join(problems))
        return self.records


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(
        description="Validate a JSON request/response body against botocore's service model.")
    ap.add_argument("service", help=f"botocore service name, e.g. {', '.join(SERVICES)}")
    ap.add_argument("operation", help="operation, e.g. BatchGetBuilds (or batch_get_builds)")
    ap.add_argument("file", help="JSON file ('-' for stdin)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--input", action="store_true", help="validate as a request (input shape)")
    g.add_argument("--error", action="store_true", help="validate as an error response body")
    ap.add_argument("--status", type=int, default=None, help="HTTP status (with --error)")
    ap.add_argument("--patterns", action="store_true", help="also check string 'pattern' traits")
    ap.add_argument("--allow-null", action="store_true", help="tolerate JSON null members")
    a = ap.parse_args(argv)
    try:
        if a.file == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(a.file, "rb") as f:
                raw = f.read()
        load_model(a.service)
        op = None if a.error and a.operation in ("-", "") else a.operation
        if op is not None:
            resolve_operation(a.service, op)
    except (OSError, KeyError) as e:
        print(f"check_shapes: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # botocore UnknownServiceError etc.
        print(f"check_shapes: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    kw = dict(allow_null=a.allow_null, patterns=a.patterns)
    body, problems = parse_json(raw) if raw.strip() else (None, ["$: empty body"])
    if body is not None:
        if a.error:
            problems += validate_error(a.service, body, a.status, op, **kw)
        else:
            problems += validate(a.service, op, body, "input" if a.input else "output", **kw)
    for p in problems:
        print(p)
    what = "error body" if a.error else ("input" if a.input else "output")
    print(f"{a.service} {a.operation} {what}: "
          f"{len(problems) if problems else 'no'} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
