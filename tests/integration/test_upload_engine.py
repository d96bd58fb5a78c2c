# SPDX-License-Identifier: MIT
"""The upload engine (fs/upload.c) against RGW, through the C program tests/unit/test_upload.

The program (built by meson, not here) drives the engine with the real metadata cache: a small
PUT with metadata, a 40 MiB multipart upload (8 MiB parts, 4 in flight), permanent errors, the
failure path against a dead endpoint and its resumption by a second engine on the same cache,
the newer-write-wins rule, and many threads at once. It checks what it can from C and prints
"object KEY SIZE SHA256" for each object it left; boto3, the independent peer, reads them back
here, with their metadata, and checks that no multipart upload is left in progress.
"""
import hashlib
import os
import re
import subprocess

import pytest

# What the program leaves in the bucket; the metadata it set where it set some.
EXPECTED = {
    "small/obj.txt": {"meta": {"mode": "33188", "mtime": "1700000000"}, "type": "text/plain"},
    "small/empty": {},
    "mpu/big.bin": {"etag_parts": 5},
    "resume/small.bin": {"meta": {"mode": "33152"}, "type": "application/x-test"},
    "resume/big.bin": {"etag_parts": 3},
    "nww/a": {},
    "nww/b": {},
    "nww/c": {},
}


@pytest.fixture
def test_upload_bin(build_dir):
    b = build_dir / "tests" / "unit" / "test_upload"
    if not os.access(b, os.X_OK):
        pytest.fail(f"{b} is not built: run `ninja -C {build_dir}`", pytrace=False)
    return b


def test_upload_engine(test_upload_bin, bucket, aws_env, s3, tmp_path):
    env = aws_env(S3VFS_TEST_BUCKET=bucket,
                  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
                  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    p = subprocess.run([str(test_upload_bin)], env=env, cwd=tmp_path, capture_output=True,
                       timeout=600)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert marker not in out + err, err
    assert p.returncode == 0, f"test_upload exited {p.returncode}\n{out}\n{err}"
    assert re.search(r"^upload: \d+ passed, 0 failed$", out, re.M), out
    # The engine warns about the failures the program provokes; an error would be a surprise.
    assert not re.findall(r"^s3vfs\[\d+\] \S+ error: .*$", err, re.M), err

    reported = {}
    for line in out.splitlines():
        if line.startswith("object "):
            _, key, size, sha = line.split(" ")
            reported[key] = (int(size), sha)
    assert set(reported) == set(EXPECTED)

    for key, (size, sha) in reported.items():
        got = s3.get_object(Bucket=bucket, Key=key)
        body = got["Body"].read()
        assert len(body) == size, key
        assert hashlib.sha256(body).hexdigest() == sha, key
        want = EXPECTED[key]
        assert got["Metadata"] == want.get("meta", {}), key
        if "type" in want:
            assert got["ContentType"] == want["type"], key
        if "etag_parts" in want:
            assert got["ETag"].endswith(f'-{want["etag_parts"]}"'), key

    # Failed multipart uploads were aborted, the leftover of a "crash" too.
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
