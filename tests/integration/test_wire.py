# SPDX-License-Identifier: MIT
"""The wire layer (s3/) against real servers, through the s3vfs-ctl driver.

RGW for S3 and DynamoDB Local for DynamoDB; boto3 is the independent peer that
writes what we read and reads what we write. Request counts come from the
driver's --stats-file and are asserted exactly where they are deterministic.
"""
import concurrent.futures
import hashlib
import json
import os
import subprocess

import pytest


class Ctl:
    def __init__(self, binary, env, endpoint, ddb_endpoint, tmp_path):
        self.binary = binary
        self.env = env
        self.endpoint = endpoint
        self.ddb_endpoint = ddb_endpoint
        self.stats_path = tmp_path / "stats.json"
        self.last_stats = None

    def __call__(self, *args, check=True, input=None, env=None, endpoint=None, timeout=120):
        cmd = [self.binary, "--endpoint", endpoint or self.endpoint, "--path-style",
               "--ddb-endpoint", self.ddb_endpoint, "--stats-file", str(self.stats_path)]
        cmd += [str(a) for a in args]
        if self.stats_path.exists():
            self.stats_path.unlink()
        p = subprocess.run(cmd, env=env or self.env, input=input, capture_output=True,
                           timeout=timeout)
        self.last_stats = (json.loads(self.stats_path.read_text())
                           if self.stats_path.exists() else None)
        for stream in (p.stdout, p.stderr):
            assert b"==ERROR: AddressSanitizer" not in stream
            assert b"runtime error:" not in stream
        if check and p.returncode != 0:
            raise AssertionError(f"{cmd} -> {p.returncode}\nstderr: {p.stderr.decode()}")
        return p

    def requests(self, op=None):
        req = self.last_stats["requests"]
        return req["total"] if op is None else req[op]


@pytest.fixture
def ctl(servers, build_dir, tmp_path, aws_env):
    return Ctl(str(build_dir / "s3vfs-ctl"), aws_env(), servers.s3_endpoint,
               servers.ddb_endpoint, tmp_path)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_put_get_head_roundtrip(ctl, bucket, s3, tmp_path):
    src = tmp_path / "in.bin"
    data = os.urandom(100_000)
    src.write_bytes(data)
    p = ctl("put", f"s3://{bucket}/dir/obj.bin", src, "--meta", "mode=33188",
            "--meta", "mtime=1700000000", "--content-type", "application/octet-stream",
            "--md5")
    etag = p.stdout.decode().strip()
    assert etag.startswith('"') and len(etag) == 34
    assert ctl.requests("put") == 1 and ctl.requests() == 1

    got = s3.get_object(Bucket=bucket, Key="dir/obj.bin")
    assert got["Body"].read() == data
    assert got["Metadata"] == {"mode": "33188", "mtime": "1700000000"}

    info = json.loads(ctl("head", f"s3://{bucket}/dir/obj.bin").stdout)
    assert info["size"] == len(data)
    assert info["etag"] == etag
    assert info["meta"] == {"mode": "33188", "mtime": "1700000000"}
    assert info["content_type"] == "application/octet-stream"
    assert ctl.requests("head") == 1 and ctl.requests() == 1

    out = tmp_path / "out.bin"
    ctl("get", f"s3://{bucket}/dir/obj.bin", out)
    assert out.read_bytes() == data
    assert ctl.requests("get") == 1 and ctl.requests() == 1


def test_missing_key_is_enoent(ctl, bucket):
    p = ctl("head", f"s3://{bucket}/nope", check=False)
    assert p.returncode == 3
    assert b"No such file" in p.stderr
    p = ctl("get", f"s3://{bucket}/nope", check=False)
    assert p.returncode == 3
    assert b"NoSuchKey" in p.stderr
    assert ctl.last_stats["retries"] == 0  # a 404 is never retried


def test_range_get(ctl, bucket, s3):
    data = bytes(range(256)) * 40
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    p = ctl("get", f"s3://{bucket}/r", "-", "--range", "100-4195")
    assert p.stdout == data[100:4196]
    p = ctl("get", f"s3://{bucket}/r", "-", "--range", "10200-10239")
    assert p.stdout == data[10200:10240]


def test_conditional_get_304(ctl, bucket, s3):
    s3.put_object(Bucket=bucket, Key="c", Body=b"hello")
    etag = s3.head_object(Bucket=bucket, Key="c")["ETag"]
    p = ctl("get", f"s3://{bucket}/c", "-", "--if-none-match", etag)
    assert p.stdout == b""
    assert b"not modified" in p.stderr
    assert ctl.requests("get") == 1
    p = ctl("head", f"s3://{bucket}/c", "--if-none-match", etag)
    assert b"not modified" in p.stderr
    # A different ETag: the body comes back.
    p = ctl("get", f"s3://{bucket}/c", "-", "--if-none-match", '"0123"')
    assert p.stdout == b"hello"


def test_list_2500_keys_paginates(ctl, bucket, s3):
    keys = [f"many/k{i:05d}" for i in range(2500)]
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys))
    s3.put_object(Bucket=bucket, Key="many/sub/x", Body=b"x")
    p = ctl("ls", f"s3://{bucket}/many/")
    lines = p.stdout.decode().splitlines()
    assert [ln.split(" ", 3)[3] for ln in lines] == keys + ["many/sub/x"]
    size, etag, mtime, _ = lines[0].split(" ", 3)
    assert int(size) == len(keys[0]) and etag.startswith('"') and int(mtime) > 1600000000
    assert ctl.requests("list") == 3 and ctl.requests() == 3

    p = ctl("ls", f"s3://{bucket}/many/", "--delimiter", "/")
    lines = p.stdout.decode().splitlines()
    assert "PRE many/sub/" in lines
    assert len(lines) == 2501

    # Batch delete: 2501 keys in 3 DeleteObjects requests (plus the listing).
    ctl("rm", "-r", f"s3://{bucket}/many/")
    assert ctl.requests("delete_multi") == 3
    assert s3.list_objects_v2(Bucket=bucket, Prefix="many/")["KeyCount"] == 0


SPECIAL_KEYS = [
    "with space/a b.txt",
    "plus+sign",
    "per%cent%2F",
    "tilde~star*",
    "unicodé/文件/ключ.txt",
    "q?mark#hash&amp=x;y,z'\"",
    "dot/./seg/../x",
    "double//slash",
    "k" * 1024,
]


@pytest.mark.parametrize("key", SPECIAL_KEYS, ids=range(len(SPECIAL_KEYS)))
def test_special_keys_roundtrip(ctl, bucket, s3, key):
    p = ctl("put", f"s3://{bucket}/{key}", "-", input=b"payload:" + key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"payload:" + key.encode()
    p = ctl("get", f"s3://{bucket}/{key}", "-")
    assert p.stdout == b"payload:" + key.encode()
    p = ctl("ls", f"s3://{bucket}/{key[:3]}")
    assert key in [ln.split(" ", 3)[3] for ln in p.stdout.decode().splitlines()]


def test_key_over_1024_bytes_is_refused(ctl, bucket):
    p = ctl("put", f"s3://{bucket}/{'k' * 1025}", "-", input=b"x", check=False)
    assert p.returncode == 1
    assert b"File name too long" in p.stderr
    assert ctl.requests() == 0


def test_copy_with_metadata_replace(ctl, bucket, s3):
    s3.put_object(Bucket=bucket, Key="src", Body=b"content",
                  Metadata={"mode": "33188", "keep": "me"})
    ctl("cp", f"s3://{bucket}/src", f"s3://{bucket}/src", "--replace",
        "--meta", "mode=33261", "--meta", "keep=me")
    h = s3.head_object(Bucket=bucket, Key="src")
    assert h["Metadata"] == {"mode": "33261", "keep": "me"}
    assert ctl.requests("copy") == 1
    ctl("cp", f"s3://{bucket}/src", f"s3://{bucket}/dst")
    h = s3.head_object(Bucket=bucket, Key="dst")
    assert h["Metadata"] == {"mode": "33261", "keep": "me"}
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"content"


def test_multipart_40mib_in_8mib_parts(ctl, bucket, s3, tmp_path):
    src = tmp_path / "big.bin"
    data = os.urandom(40 * 1024 * 1024 + 12345)
    src.write_bytes(data)
    p = ctl("mpu-put", f"s3://{bucket}/big", src, "--part-size", "8M", "--jobs", "4", "--md5")
    assert p.stdout.decode().strip().endswith('-6"')
    assert ctl.requests("mpu_create") == 1
    assert ctl.requests("mpu_part") == 6
    assert ctl.requests("mpu_complete") == 1
    assert ctl.last_stats["bytes_up"] >= len(data)
    out = tmp_path / "big.out"
    ctl("get", f"s3://{bucket}/big", out)
    assert sha256(out.read_bytes()) == sha256(data)
    body = s3.get_object(Bucket=bucket, Key="big")["Body"].read()
    assert sha256(body) == sha256(data)
    # Nothing left in progress.
    p = ctl("mpu-ls", f"s3://{bucket}/")
    assert p.stdout == b""


def test_multipart_list_and_abort(ctl, bucket, s3):
    up = s3.create_multipart_upload(Bucket=bucket, Key="half")["UploadId"]
    p = ctl("mpu-ls", f"s3://{bucket}/")
    assert p.stdout.decode().split() [0] == up
    ctl("mpu-abort", f"s3://{bucket}/half", up)
    assert ctl("mpu-ls", f"s3://{bucket}/").stdout == b""


def test_part_size_below_minimum_is_usage_error(ctl, bucket, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(b"x")
    p = ctl("mpu-put", f"s3://{bucket}/f", src, "--part-size", "1M", check=False)
    assert p.returncode == 2


def test_bad_credentials_are_refused_without_leaking(ctl, bucket, aws_env):
    env = aws_env()
    env["AWS_SECRET_ACCESS_KEY"] = "WRONGsecretWRONGsecretWRONGsecret0000000"
    p = ctl("ls", f"s3://{bucket}/", "-d", env=env, check=False)
    assert p.returncode == 1
    assert b"SignatureDoesNotMatch" in p.stderr or b"Permission denied" in p.stderr
    assert env["AWS_SECRET_ACCESS_KEY"].encode() not in p.stderr + p.stdout
    assert ctl.last_stats["retries"] == 0  # 403 is not retried


def test_unreachable_endpoint_fails_bounded(ctl, bucket):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    p = ctl("head", f"s3://{bucket}/x", endpoint=f"http://127.0.0.1:{port}", check=False,
            timeout=60)
    assert p.returncode == 1
    assert b"Connection refused" in p.stderr
    # Retried with backoff, then given up: 8 attempts.
    assert ctl.requests("head") == 8
    assert ctl.last_stats["retries"] == 7


def test_dynamodb_conditional_update(ctl, ddb_table_name):
    t = ddb_table_name
    ctl("ddb-create", t, "pk")
    key = json.dumps({"pk": {"S": "chain-1"}})
    # Version 1: only if the item does not exist yet.
    ctl("ddb-put", t, json.dumps({"pk": {"S": "chain-1"}, "version": {"N": "1"}}),
        "--cond", "attribute_not_exists(pk)")
    p = ctl("ddb-put", t, json.dumps({"pk": {"S": "chain-1"}, "version": {"N": "1"}}),
            "--cond", "attribute_not_exists(pk)", check=False)
    assert p.returncode == 4
    assert b"ConditionalCheckFailedException" in p.stderr

    upd = ["ddb-update", t, key, "SET #v = :n", "--cond", "#v = :e",
           "--names", json.dumps({"#v": "version"}),
           "--values", json.dumps({":e": {"N": "1"}, ":n": {"N": "2"}})]
    p = ctl(*upd)
    assert json.loads(p.stdout)["version"] == {"N": "2"}
    assert ctl.requests("ddb_update_item") == 1
    p = ctl(*upd, check=False)
    assert p.returncode == 4
    assert b"ConditionalCheckFailedException" in p.stderr
    assert ctl.last_stats["retries"] == 0  # a failed condition is never retried

    p = ctl("ddb-get", t, key, "--consistent")
    assert json.loads(p.stdout) == {"pk": {"S": "chain-1"}, "version": {"N": "2"}}
    ctl("ddb-delete", t, key)
    p = ctl("ddb-get", t, key, check=False)
    assert p.returncode == 3


def test_dynamodb_missing_table(ctl, ddb_table_name):
    p = ctl("ddb-get", ddb_table_name, json.dumps({"pk": {"S": "x"}}), check=False)
    assert p.returncode == 3
    assert b"ResourceNotFoundException" in p.stderr
