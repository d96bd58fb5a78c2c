"""Smoke tests of the local servers and the fixtures: if these fail, nothing else can pass."""

import subprocess

import botocore.exceptions
import pytest


def test_put_get_roundtrip(s3, bucket):
    body = b"hello from s3vfs tests\n" * 100
    s3.put_object(Bucket=bucket, Key="dir/a.txt", Body=body, Metadata={"mode": "33188"})
    got = s3.get_object(Bucket=bucket, Key="dir/a.txt")
    assert got["Body"].read() == body
    assert got["Metadata"] == {"mode": "33188"}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["dir/a.txt"]


def test_bucket_is_fresh_per_test(s3, bucket):
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_bad_signature_rejected(rgw_server, bucket):
    bad = rgw_server.client(secret_key="not-the-secret-key-000000000000000000000",
                            retries={"max_attempts": 1})
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        bad.get_object(Bucket=bucket, Key="anything")
    err = ei.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err["Error"]["Code"] == "SignatureDoesNotMatch"


def test_conditional_get_304(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="k", IfNoneMatch=etag)
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304


def test_aws_env_for_child_process(aws_env, rgw_server, bucket):
    env = aws_env(EXTRA="1", HOME=None)
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["AWS_ACCESS_KEY_ID"] == rgw_server.access_key
    assert env["EXTRA"] == "1" and "HOME" not in env
    assert aws_env() is not aws_env()  # a fresh dict each call
    # a separate process with only the environment can reach the bucket
    code = ("import boto3, os; s3 = boto3.client('s3', endpoint_url=os.environ['S3VFS_TEST_S3_ENDPOINT']);"
            f"s3.put_object(Bucket='{bucket}', Key='from-child', Body=b'x')")
    subprocess.run(["/usr/bin/python3", "-c", code], env=env, check=True, timeout=60)


def test_servers_fixture(servers, rgw_server, ddb_server):
    assert servers.s3_endpoint == rgw_server.endpoint.rstrip("/")
    assert servers.ddb_endpoint == ddb_server.endpoint
    assert servers.s3_endpoint.startswith("http://127.0.0.1:")
    assert servers.ddb_endpoint.startswith("http://127.0.0.1:")


def test_ddb_conditional_put(ddb, ddb_table_name):
    ddb.create_table(
        TableName=ddb_table_name,
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST")
    ddb.get_waiter("table_exists").wait(TableName=ddb_table_name,
                                        WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    item = {"key": {"S": "bucket/chain"}, "version": {"N": "1"}}
    ddb.put_item(TableName=ddb_table_name, Item=item,
                 ConditionExpression="attribute_not_exists(#k)",
                 ExpressionAttributeNames={"#k": "key"})
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName=ddb_table_name, Item=item,
                     ConditionExpression="attribute_not_exists(#k)",
                     ExpressionAttributeNames={"#k": "key"})
    # and DynamoDB's rules hold: "key" is a reserved word in expressions
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        ddb.put_item(TableName=ddb_table_name, Item=item, ConditionExpression="attribute_not_exists(key)")
    assert ei.value.response["Error"]["Code"] == "ValidationException"
