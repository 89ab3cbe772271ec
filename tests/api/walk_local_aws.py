#!/usr/bin/env python3
"""Walk every operation of the local AWS services (SSM Parameter Store, Secrets Manager, STS,
IAM, S3) through boto3. Every answer and error is checked against botocore's own model by one
recorder (check_shapes.Recorder: JSON services member by member, the query services STS and IAM
and S3's REST XML element by element, since botocore's parsers alone would drop an element the
model lacks), and every service by the values read back.

Usage: AWS_ENDPOINT_URL=http://127.0.0.1:PORT walk_local_aws.py
Exits non-zero with every problem listed.
"""
import json, os, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_shapes import Recorder  # noqa: E402
import boto3  # noqa: E402
import botocore.exceptions  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402

endpoint = os.environ["AWS_ENDPOINT_URL"]
rec = Recorder()
ssm = rec.client("ssm", endpoint_url=endpoint)
sm = rec.client("secretsmanager", endpoint_url=endpoint)
# The same without botocore's own parameter checks: what the server says about bad input.
from botocore.config import Config  # noqa: E402
unchecked = Config(parameter_validation=False)
ssm_raw = rec.client("ssm", endpoint_url=endpoint, config=unchecked)
sm_raw = rec.client("secretsmanager", endpoint_url=endpoint, config=unchecked)
keys = dict(region_name="us-east-1", aws_access_key_id="AKIDLOCALBUILDTEST",
            aws_secret_access_key="localbuild-test-secret")
sts = rec.client("sts", endpoint_url=endpoint)
iam = rec.client("iam", endpoint_url=endpoint)
s3 = rec.client("s3", endpoint_url=endpoint)


def expect_error(code, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == code, e.response
        return e.response
    sys.exit("expected " + code + " from " + fn.__name__)


# --- SSM Parameter Store
assert ssm.put_parameter(Name="/walk/db/url", Value="pg://x", Type="String")["Version"] == 1
ssm.put_parameter(Name="/walk/db/pass", Value="s3cret", Type="SecureString", Description="pw")
ssm.put_parameter(Name="/walk/top", Value="a,b", Type="StringList")
assert ssm.put_parameter(Name="/walk/top", Value="c", Type="StringList", Overwrite=True)["Version"] == 2
expect_error("ParameterAlreadyExists", ssm.put_parameter, Name="/walk/top", Value="d", Type="String")
expect_error("ValidationException", ssm.put_parameter, Name="bad name", Value="d", Type="String")
p = ssm.get_parameter(Name="/walk/db/pass", WithDecryption=True)["Parameter"]
assert p["Value"] == "s3cret" and p["Type"] == "SecureString", p
assert p["ARN"] == "arn:aws:ssm:us-east-1:000000000000:parameter/walk/db/pass", p
expect_error("ParameterNotFound", ssm.get_parameter, Name="/walk/none")
got = ssm.get_parameters(Names=["/walk/db/url", "/walk/none"])
assert [x["Name"] for x in got["Parameters"]] == ["/walk/db/url"], got
assert got["InvalidParameters"] == ["/walk/none"], got
flat = ssm.get_parameters_by_path(Path="/walk")["Parameters"]
assert [x["Name"] for x in flat] == ["/walk/top"], flat
deep = ssm.get_parameters_by_path(Path="/walk", Recursive=True, WithDecryption=True)["Parameters"]
assert sorted(x["Name"] for x in deep) == ["/walk/db/pass", "/walk/db/url", "/walk/top"], deep
described = ssm.describe_parameters()["Parameters"]
assert any(d["Name"] == "/walk/db/pass" and d["Description"] == "pw" for d in described), described
ssm.put_parameter(Name="/walk/db/key", Value="k", Type="SecureString", KeyId="alias/walk-key")
keyed = {d["Name"]: d.get("KeyId") for d in ssm.describe_parameters()["Parameters"]}
assert keyed["/walk/db/key"] == "alias/walk-key" and keyed["/walk/db/pass"] == "alias/aws/ssm", keyed
assert keyed["/walk/top"] is None, keyed
# Pagination: pages of MaxResults, NextToken until the end, AWS's limits on MaxResults.
for n in range(12):
    ssm.put_parameter(Name=f"/walk/many/p{n:02}", Value=str(n), Type="String")
page1 = ssm.get_parameters_by_path(Path="/walk/many", MaxResults=5)
assert [x["Name"] for x in page1["Parameters"]] == [f"/walk/many/p{n:02}" for n in range(5)], page1
page2 = ssm.get_parameters_by_path(Path="/walk/many", MaxResults=5, NextToken=page1["NextToken"])
assert page2["Parameters"][0]["Name"] == "/walk/many/p05", page2
all_many = [x["Name"] for p in ssm.get_paginator("get_parameters_by_path").paginate(Path="/walk/many")
            for x in p["Parameters"]]
assert all_many == [f"/walk/many/p{n:02}" for n in range(12)], all_many
described = [d["Name"] for p in ssm.get_paginator("describe_parameters").paginate(
    PaginationConfig={"PageSize": 4}) for d in p["Parameters"]]
assert len(described) == 16 and described == sorted(described), described
last = ssm.describe_parameters(MaxResults=50)
assert "NextToken" not in last and len(last["Parameters"]) == 16, last
expect_error("ValidationException", ssm_raw.get_parameters_by_path, Path="/walk", MaxResults=11)
expect_error("ValidationException", ssm_raw.describe_parameters, MaxResults=51)
expect_error("ValidationException", ssm_raw.describe_parameters, MaxResults=0)
expect_error("InvalidNextToken", ssm.describe_parameters, NextToken="not-a-token")
ssm.delete_parameters(Names=[f"/walk/many/p{n:02}" for n in range(10)])
ssm.delete_parameters(Names=["/walk/many/p10", "/walk/many/p11", "/walk/db/key"])
ssm.delete_parameter(Name="/walk/top")
expect_error("ParameterNotFound", ssm.delete_parameter, Name="/walk/top")
gone = ssm.delete_parameters(Names=["/walk/db/url", "/walk/none"])
assert gone["DeletedParameters"] == ["/walk/db/url"] and gone["InvalidParameters"] == ["/walk/none"], gone

# --- Secrets Manager
made = sm.create_secret(Name="walk/api", SecretString='{"user":"u","key":"k1"}', Description="api")
assert made["ARN"].startswith("arn:aws:secretsmanager:us-east-1:000000000000:secret:walk/api-"), made
expect_error("ResourceExistsException", sm.create_secret, Name="walk/api", SecretString="x")
v = sm.get_secret_value(SecretId="walk/api")
assert v["SecretString"] == '{"user":"u","key":"k1"}' and v["VersionStages"] == ["AWSCURRENT"], v
assert sm.get_secret_value(SecretId=made["ARN"])["Name"] == "walk/api"
put = sm.put_secret_value(SecretId="walk/api", SecretString="k2")
assert put["VersionId"] != made["VersionId"], put
sm.update_secret(SecretId="walk/api", Description="api v2")
d = sm.describe_secret(SecretId="walk/api")
assert d["Description"] == "api v2" and put["VersionId"] in d["VersionIdsToStages"], d
assert [s["Name"] for s in sm.list_secrets()["SecretList"]] == ["walk/api"]
expect_error("ResourceNotFoundException", sm.get_secret_value, SecretId="walk/none")
# SecretBinary (base64 on the wire, bytes in boto3), KmsKeyId echoed; string or binary, not both.
blob = bytes(range(256))
made_bin = sm.create_secret(Name="walk/blob", SecretBinary=blob, KmsKeyId="alias/walk-key")
got = sm.get_secret_value(SecretId="walk/blob")
assert got["SecretBinary"] == blob and "SecretString" not in got, got
assert sm.describe_secret(SecretId="walk/blob")["KmsKeyId"] == "alias/walk-key"
put_bin = sm.put_secret_value(SecretId="walk/blob", SecretBinary=b"\x00v2")
assert put_bin["VersionId"] != made_bin["VersionId"], put_bin
assert sm.get_secret_value(SecretId="walk/blob")["SecretBinary"] == b"\x00v2"
sm.put_secret_value(SecretId="walk/blob", SecretString="now a string")
got = sm.get_secret_value(SecretId="walk/blob")
assert got["SecretString"] == "now a string" and "SecretBinary" not in got, got
sm.update_secret(SecretId="walk/blob", KmsKeyId="arn:aws:kms:us-east-1:000000000000:key/abc")
listed = {x["Name"]: x for x in sm.list_secrets()["SecretList"]}
assert listed["walk/blob"]["KmsKeyId"] == "arn:aws:kms:us-east-1:000000000000:key/abc", listed
expect_error("InvalidParameterException", sm.create_secret, Name="walk/both", SecretString="s",
             SecretBinary=b"b")
expect_error("ValidationException", sm_raw.create_secret, Name="walk/huge", SecretBinary=b"x" * 65537)
for n in range(5):
    sm.create_secret(Name=f"walk/page/{n}", SecretString=str(n))
first = sm.list_secrets(MaxResults=3)
assert len(first["SecretList"]) == 3 and first["NextToken"], first
rest = sm.list_secrets(MaxResults=3, NextToken=first["NextToken"])
names = [x["Name"] for x in first["SecretList"] + rest["SecretList"]]
assert names == ["walk/api", "walk/blob"] + [f"walk/page/{n}" for n in range(4)], names
everything = [x["Name"] for p in sm.get_paginator("list_secrets").paginate(PaginationConfig={"PageSize": 2})
              for x in p["SecretList"]]
assert len(everything) == 7 and len(set(everything)) == 7, everything
expect_error("ValidationException", sm_raw.list_secrets, MaxResults=101)
expect_error("InvalidNextTokenException", sm.list_secrets, NextToken="bogus")
for n in range(5):
    sm.delete_secret(SecretId=f"walk/page/{n}", ForceDeleteWithoutRecovery=True)
sm.delete_secret(SecretId="walk/blob", ForceDeleteWithoutRecovery=True)
deleted = sm.delete_secret(SecretId="walk/api", RecoveryWindowInDays=7)
assert deleted["Name"] == "walk/api", deleted
expect_error("InvalidRequestException", sm.get_secret_value, SecretId="walk/api")
sm.delete_secret(SecretId="walk/api", ForceDeleteWithoutRecovery=True)
expect_error("ResourceNotFoundException", sm.describe_secret, SecretId="walk/api")

rec.check()

# --- STS (query protocol, XML)
me = sts.get_caller_identity()
assert me["Account"] == "000000000000", me
role = sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/deployer", RoleSessionName="walk")
c = role["Credentials"]
assert c["AccessKeyId"].startswith("ASIA") and c["Expiration"].year >= 2024, role
assert role["AssumedRoleUser"]["Arn"] == "arn:aws:sts::000000000000:assumed-role/deployer/walk", role
as_role = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                       aws_session_token=c["SessionToken"])
assert as_role.get_caller_identity()["Arn"] == role["AssumedRoleUser"]["Arn"]
expect_error("ValidationError", sts.assume_role, RoleArn="arn:aws:iam::000000000000:user/not-a-role", RoleSessionName="walk")

# --- IAM (query protocol, XML): stored and shown, not enforced
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
         "Principal": {"Service": "codebuild.amazonaws.com"}}]}
made = iam.create_role(RoleName="walk-role", Path="/service-role/", AssumeRolePolicyDocument=json.dumps(trust),
                       Description="walk", Tags=[{"Key": "team", "Value": "ci"}])["Role"]
assert made["Arn"] == "arn:aws:iam::000000000000:role/service-role/walk-role", made
assert made["AssumeRolePolicyDocument"] == trust and made["RoleId"].startswith("AROA"), made
expect_error("EntityAlreadyExists", iam.create_role, RoleName="WALK-ROLE", AssumeRolePolicyDocument="{}")
expect_error("ValidationError", iam.create_role, RoleName="bad name", AssumeRolePolicyDocument="{}")
expect_error("MalformedPolicyDocument", iam.create_role, RoleName="r2", AssumeRolePolicyDocument="{nope")
got = iam.get_role(RoleName="walk-role")["Role"]
assert got["Tags"] == [{"Key": "team", "Value": "ci"}] and got["Description"] == "walk", got
expect_error("NoSuchEntity", iam.get_role, RoleName="none")
assert [r["RoleName"] for r in iam.list_roles(PathPrefix="/service-role/")["Roles"]] == ["walk-role"]
iam.create_role(RoleName="walk-other", AssumeRolePolicyDocument=json.dumps(trust))
page = iam.list_roles(MaxItems=1)
assert page["IsTruncated"] and len(page["Roles"]) == 1, page
rest = iam.list_roles(Marker=page["Marker"])
assert not rest["IsTruncated"] and len(rest["Roles"]) == 1, rest
iam.update_assume_role_policy(RoleName="walk-role", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
assert iam.get_role(RoleName="walk-role")["Role"]["AssumeRolePolicyDocument"]["Statement"] == []
inline = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
iam.put_role_policy(RoleName="walk-role", PolicyName="s3", PolicyDocument=json.dumps(inline))
assert iam.get_role_policy(RoleName="walk-role", PolicyName="s3")["PolicyDocument"] == inline
assert iam.list_role_policies(RoleName="walk-role")["PolicyNames"] == ["s3"]
expect_error("NoSuchEntity", iam.get_role_policy, RoleName="walk-role", PolicyName="none")
expect_error("DeleteConflict", iam.delete_role, RoleName="walk-role")
iam.delete_role_policy(RoleName="walk-role", PolicyName="s3")
policy = iam.create_policy(PolicyName="walk-policy", Path="/walk/", PolicyDocument=json.dumps(inline),
                           Description="d")["Policy"]
assert policy["Arn"] == "arn:aws:iam::000000000000:policy/walk/walk-policy", policy
expect_error("EntityAlreadyExists", iam.create_policy, PolicyName="walk-policy", PolicyDocument=json.dumps(inline))
admin = "arn:aws:iam::aws:policy/AdministratorAccess"
for arn in (policy["Arn"], admin):
    iam.attach_role_policy(RoleName="walk-role", PolicyArn=arn)
attached = iam.list_attached_role_policies(RoleName="walk-role")["AttachedPolicies"]
assert [a["PolicyArn"] for a in attached] == [policy["Arn"], admin], attached
assert iam.get_policy(PolicyArn=policy["Arn"])["Policy"]["AttachmentCount"] == 1
local = iam.list_policies(Scope="Local")["Policies"]
assert [p["PolicyName"] for p in local] == ["walk-policy"], local
assert any(p["Arn"] == admin for p in iam.list_policies(Scope="AWS", OnlyAttached=True)["Policies"])
expect_error("DeleteConflict", iam.delete_policy, PolicyArn=policy["Arn"])
expect_error("DeleteConflict", iam.delete_role, RoleName="walk-role")
expect_error("InvalidInput", iam.get_policy, PolicyArn="arn:aws:iam::aws:not-a-policy")
expect_error("NoSuchEntity", iam.get_policy, PolicyArn="arn:aws:iam::000000000000:policy/none")
for arn in (policy["Arn"], admin):
    iam.detach_role_policy(RoleName="walk-role", PolicyArn=arn)
expect_error("NoSuchEntity", iam.detach_role_policy, RoleName="walk-role", PolicyArn=admin)
iam.delete_policy(PolicyArn=policy["Arn"])
iam.tag_role(RoleName="walk-role", Tags=[{"Key": "env", "Value": "dev"}, {"Key": "TEAM", "Value": "cd"}])
assert iam.list_role_tags(RoleName="walk-role")["Tags"] == [{"Key": "TEAM", "Value": "cd"}, {"Key": "env", "Value": "dev"}]
iam.untag_role(RoleName="walk-role", TagKeys=["team"])
assert iam.list_role_tags(RoleName="walk-role")["Tags"] == [{"Key": "env", "Value": "dev"}]
profile = iam.create_instance_profile(InstanceProfileName="walk-profile")["InstanceProfile"]
assert profile["Arn"] == "arn:aws:iam::000000000000:instance-profile/walk-profile" and profile["Roles"] == [], profile
expect_error("EntityAlreadyExists", iam.create_instance_profile, InstanceProfileName="walk-profile")
iam.add_role_to_instance_profile(InstanceProfileName="walk-profile", RoleName="walk-role")
expect_error("LimitExceeded", iam.add_role_to_instance_profile, InstanceProfileName="walk-profile", RoleName="walk-other")
roles = iam.get_instance_profile(InstanceProfileName="walk-profile")["InstanceProfile"]["Roles"]
assert [r["RoleName"] for r in roles] == ["walk-role"], roles
expect_error("DeleteConflict", iam.delete_instance_profile, InstanceProfileName="walk-profile")
expect_error("DeleteConflict", iam.delete_role, RoleName="walk-role")
iam.remove_role_from_instance_profile(InstanceProfileName="walk-profile", RoleName="walk-role")
iam.delete_instance_profile(InstanceProfileName="walk-profile")
expect_error("NoSuchEntity", iam.get_instance_profile, InstanceProfileName="walk-profile")
# Hostile text: a path may hold XML's special characters (escaped in the answer); a name may not.
odd = iam.create_role(RoleName="walk-odd", Path="/a<&>'\"/", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
assert odd["Path"] == "/a<&>'\"/" and iam.get_role(RoleName="walk-odd")["Role"]["Path"] == odd["Path"], odd
e = expect_error("ValidationError", iam.create_role, RoleName="<x>", AssumeRolePolicyDocument="{}")
assert "'roleName'" in e["Error"]["Message"], e
expect_error("ValidationError", iam.create_role, RoleName="x" * 65, AssumeRolePolicyDocument="{}")
expect_error("ValidationError", iam.create_role, RoleName="r", Path="no-slashes", AssumeRolePolicyDocument="{}")
iam.delete_role(RoleName="walk-odd")
for name in ("walk-role", "walk-other"):
    iam.delete_role(RoleName=name)
expect_error("NoSuchEntity", iam.delete_role, RoleName="walk-role")

rec.check()

# An unsigned query call with IAM's Version is IAM's (answered, or refused with IAM's error
# document when the server wants signatures); an action IAM does not have is InvalidAction.
import urllib.error, urllib.request  # noqa: E402
for body, code in ((b"Action=ListRoles&Version=2010-05-08", None),
                   (b"Action=CreateUser&Version=2010-05-08&UserName=u", "InvalidAction")):
    req = urllib.request.Request(endpoint + "/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    try:
        text = urllib.request.urlopen(req, timeout=10).read().decode()
    except urllib.error.HTTPError as e:
        text = e.read().decode()
    assert 'xmlns="https://iam.amazonaws.com/doc/2010-05-08/"' in text, text
    assert code is None or "<ErrorResponse" in text, text
    assert code is None or f"<Code>{code}</Code>" in text or "<Code>InvalidClientTokenId</Code>" in text \
        or "<Code>MissingAuthenticationToken</Code>" in text, text

# --- S3 (REST, XML)
s3.create_bucket(Bucket="walk-bucket")
expect_error("BucketAlreadyOwnedByYou", s3.create_bucket, Bucket="walk-bucket")
assert "walk-bucket" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
s3.head_bucket(Bucket="walk-bucket")
s3.put_object(Bucket="walk-bucket", Key="docs/a b+c.txt", Body=b"hello world")
s3.put_object(Bucket="walk-bucket", Key="docs/sub/x.txt", Body=b"x")
s3.put_object(Bucket="walk-bucket", Key="root.txt", Body=b"r")
h = s3.head_object(Bucket="walk-bucket", Key="docs/a b+c.txt")
assert h["ContentLength"] == 11, h
part = s3.get_object(Bucket="walk-bucket", Key="docs/a b+c.txt", Range="bytes=6-")
assert part["Body"].read() == b"world" and part["ContentRange"] == "bytes 6-10/11", part
listed = s3.list_objects_v2(Bucket="walk-bucket", Delimiter="/")
assert [o["Key"] for o in listed["Contents"]] == ["root.txt"], listed
assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["docs/"], listed
pages = s3.get_paginator("list_objects_v2").paginate(Bucket="walk-bucket", PaginationConfig={"PageSize": 1})
assert [o["Key"] for p in pages for o in p.get("Contents", [])] == ["docs/a b+c.txt", "docs/sub/x.txt", "root.txt"]
v1 = s3.list_objects(Bucket="walk-bucket", Prefix="docs/")
assert [o["Key"] for o in v1["Contents"]] == ["docs/a b+c.txt", "docs/sub/x.txt"], v1
s3.copy_object(Bucket="walk-bucket", Key="copy.txt", CopySource={"Bucket": "walk-bucket", "Key": "docs/a b+c.txt"})
assert s3.get_object(Bucket="walk-bucket", Key="copy.txt")["Body"].read() == b"hello world"
expect_error("NoSuchKey", s3.get_object, Bucket="walk-bucket", Key="none")
expect_error("404", s3.head_object, Bucket="walk-bucket", Key="none")
expect_error("NoSuchBucket", s3.list_objects_v2, Bucket="no-such-walk")
expect_error("InvalidBucketName", s3.create_bucket, Bucket="Bad_Bucket")
with tempfile.TemporaryDirectory() as tmp:
    big = os.path.join(tmp, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(6 * 1024 * 1024 + 123))
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(big, "walk-bucket", "big/big.bin", Config=config)
    back = os.path.join(tmp, "back.bin")
    s3.download_file("walk-bucket", "big/big.bin", back, Config=config)
    assert open(big, "rb").read() == open(back, "rb").read()
s3.put_object(Bucket="walk-bucket", Key="single.txt", Body=b"1")
s3.delete_object(Bucket="walk-bucket", Key="single.txt")
expect_error("NoSuchKey", s3.get_object, Bucket="walk-bucket", Key="single.txt")
up = s3.create_multipart_upload(Bucket="walk-bucket", Key="aborted.bin")
s3.upload_part(Bucket="walk-bucket", Key="aborted.bin", UploadId=up["UploadId"], PartNumber=1, Body=b"p")
s3.abort_multipart_upload(Bucket="walk-bucket", Key="aborted.bin", UploadId=up["UploadId"])
expect_error("NoSuchKey", s3.get_object, Bucket="walk-bucket", Key="aborted.bin")
out = s3.delete_objects(Bucket="walk-bucket", Delete={"Objects": [{"Key": k} for k in
      ["docs/a b+c.txt", "docs/sub/x.txt", "root.txt", "copy.txt", "big/big.bin"]]})
assert len(out["Deleted"]) == 5, out
assert s3.list_objects_v2(Bucket="walk-bucket")["KeyCount"] == 0
s3.delete_bucket(Bucket="walk-bucket")
expect_error("404", s3.head_bucket, Bucket="walk-bucket")

rec.check(operations=["GetCallerIdentity", "AssumeRole", "CreateBucket", "ListBuckets",
                       "HeadBucket", "DeleteBucket", "PutObject", "GetObject", "HeadObject",
                       "DeleteObjects", "DeleteObject",
                       "ListObjectsV2", "ListObjects", "CopyObject", "CreateMultipartUpload",
                       "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload"])

print("walked")
