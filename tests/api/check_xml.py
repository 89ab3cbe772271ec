#!/usr/bin/env python3
"""check_xml -- validate REST-XML answers (S3) against botocore's model.

botocore's XML parsers drop elements the model does not name and accept some malformed values,
so a walk through boto3 alone would not see an element AWS never sends. check_shapes.Recorder
captures every raw answer and hands REST-XML ones to ``check_response`` (the query protocol's
answers, STS and IAM, are check_shapes.validate_xml's), which checks:

* the body's elements, recursively, against the operation's output shape: every element is a
  member (by its ``locationName``; flattened lists repeat the member's element, wrapped lists
  hold ``member`` or the list member's ``locationName``); the output's ``payload`` member is the
  root element;
* every member the model marks ``required`` is present;
* leaf values by type: integer/long (a decimal integer in range), boolean (``true``/``false``),
  timestamp (ISO 8601 in bodies, RFC 822 in headers unless ``timestampFormat`` says otherwise),
  enum strings in the enum;
* headers bound to output members (``location: header``) by the same value rules;
* error answers (status >= 300, with a body): S3's ``<Error>`` with ``Code`` and ``Message``.
"""
from __future__ import annotations

import email.utils
import re
import xml.etree.ElementTree as ET
from datetime import datetime

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
_RANGE = {"integer": (-2**31, 2**31 - 1), "long": (-2**63, 2**63 - 1)}
_S3_ERROR = {"Code", "Message", "RequestId", "HostId", "Resource", "BucketName", "Key",
             "Condition", "ArgumentName", "ArgumentValue", "UploadId", "PartNumber",
             "ETag", "ExpectedDigest", "CalculatedDigest", "ClientComputedContentSHA256",
             "S3ComputedContentSHA256", "MaxSizeAllowed", "ProposedSize", "MinSizeAllowed",
             "AWSAccessKeyId", "StringToSign", "SignatureProvided", "StringToSignBytes",
             "CanonicalRequest", "CanonicalRequestBytes", "Method", "ResourceType",
             "HeadersNotSigned", "ActualObjectSize", "RangeRequested", "Header"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _value_problem(shape, text: str, where: str, header: bool = False):
    t = shape.type_name
    if t in _RANGE:
        try:
            n = int(text)
        except ValueError:
            return f"{where}: {text!r} is not a valid {t}"
        lo, hi = _RANGE[t]
        if not lo <= n <= hi:
            return f"{where}: {n} is out of the {t} range"
    elif t == "boolean":
        if text not in ("true", "false"):
            return f"{where}: {text!r} is not a boolean"
    elif t == "timestamp":
        fmt = shape.serialization.get("timestampFormat") or ("rfc822" if header else "iso8601")
        if fmt == "iso8601" and not _ISO.match(text):
            return f"{where}: {text!r} is not an ISO 8601 timestamp"
        if fmt == "rfc822" and email.utils.parsedate_tz(text) is None:
            return f"{where}: {text!r} is not an RFC 822 date"
        if fmt == "unixTimestamp":
            try:
                float(text)
            except ValueError:
                return f"{where}: {text!r} is not epoch seconds"
    elif t == "string" and shape.enum and text not in shape.enum:
        return f"{where}: {text!r} is not one of {list(shape.enum)}"
    elif t in ("double", "float"):
        try:
            float(text)
        except ValueError:
            return f"{where}: {text!r} is not a {t}"
    return None


def _element_name(name: str, member) -> str:
    return member.serialization.get("name", name)


def _check_structure(shape, elem, where: str, out: list, skip=()):
    members = {}
    for name, m in shape.members.items():
        if m.serialization.get("location") in ("header", "headers", "statusCode", "uri",
                                              "querystring"):
            continue
        if name in skip:
            continue
        if m.type_name == "list" and m.serialization.get("flattened"):
            members[m.member.serialization.get("name", _element_name(name, m))] = (name, m)
        else:
            members[_element_name(name, m)] = (name, m)
    seen = set()
    for child in elem:
        tag = _local(child.tag)
        if tag not in members:
            out.append(f"{where}: element <{tag}> is not a member of {shape.name}")
            continue
        name, m = members[tag]
        seen.add(name)
        if m.type_name == "list" and m.serialization.get("flattened"):
            _check_value(m.member, child, f"{where}.{tag}[]", out)
        else:
            _check_value(m, child, f"{where}.{tag}", out)
    for name in shape.required_members:
        m = shape.members[name]
        if m.serialization.get("location") or name in skip:
            continue
        if name not in seen:
            out.append(f"{where}: required member {name} is missing")


def _check_value(shape, elem, where: str, out: list):
    t = shape.type_name
    if t == "structure":
        _check_structure(shape, elem, where, out)
    elif t == "list":
        item = shape.member.serialization.get("name", "member")
        for i, child in enumerate(elem):
            if _local(child.tag) != item:
                out.append(f"{where}: list item <{_local(child.tag)}>, expected <{item}>")
                continue
            _check_value(shape.member, child, f"{where}[{i}]", out)
    elif t == "map":
        out.append(f"{where}: maps are not expected in these answers")
    else:
        if len(elem):
            out.append(f"{where}: a {t} has child elements")
            return
        p = _value_problem(shape, (elem.text or "").strip() if t != "string" else (elem.text or ""),
                           where)
        if p:
            out.append(p)


def check_response(operation_model, status: int, headers: dict, body: bytes) -> list:
    """Every problem of one raw answer (an empty list when it is as the model says)."""
    out: list = []
    op = operation_model.name
    if status >= 300:
        if not body:
            return out
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            return [f"{op} error: not XML: {e}"]
        if _local(root.tag) != "Error":
            return [f"{op} error: root <{_local(root.tag)}>, expected <Error>"]
        names = [_local(c.tag) for c in root]
        for need in ("Code", "Message"):
            if need not in names:
                out.append(f"{op} error: <Error> has no <{need}>")
        for n in names:
            if n not in _S3_ERROR:
                out.append(f"{op} error: <{n}> is not an S3 error element")
        return out
    shape = operation_model.output_shape
    if shape is None:
        if body and body.strip():
            out.append(f"{op}: the model has no output, the answer has a body")
        return out
    lower = {k.lower(): v for k, v in headers.items()}
    for name, m in shape.members.items():
        if m.serialization.get("location") == "header":
            h = m.serialization.get("name", name).lower()
            if h in lower:
                p = _value_problem(m, lower[h], f"{op} header {h}", header=True)
                if p:
                    out.append(p)
    payload = shape.serialization.get("payload")
    if payload:
        m = shape.members[payload]
        if m.type_name in ("blob", "string") or operation_model.has_streaming_output:
            return out
        if not body:
            return out
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            return [f"{op}: not XML: {e}"]
        _check_value(m, root, f"{op}.{_local(root.tag)}", out)
        return out
    has_body_members = any(not m.serialization.get("location") for m in shape.members.values())
    if not body or not body.strip():
        if has_body_members and shape.required_members:
            out.append(f"{op}: empty body, the model has body members")
        return out
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        return [f"{op}: not XML: {e}"]
    _check_structure(shape, root, op, out)
    return out
