# SPDX-License-Identifier: MIT
"""Smoke test of the benchmark (tests/bench/bench.py): a --quick run of three phases of
s3vfs against the session's RGW must finish, print its tables and write its JSON.

No timing is asserted (machines are noisy); only the request counts that the design fixes:
N small files cost N PUTs and nothing else, and stats within stat_ttl cost no request.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mountutil as mu

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "tests" / "bench" / "bench.py"
TIMEOUT = 110  # the run takes ~10 s; a hung one is killed (bench.py then cleans up)


def test_bench_quick_s3vfs(rgw_server, build_dir, s3vfs_bin, tmp_path):
    out_json = tmp_path / "bench.json"
    env = {**os.environ, "S3VFS_TEST_SERVERS": str(rgw_server.dir.parent),
           "S3VFS_BUILD": str(build_dir)}
    argv = [sys.executable, str(BENCH), "--quick", "--only", "s3vfs", "--phases", "1,4,6",
            "--json", str(out_json), "--workdir", str(tmp_path), "--keep"]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        stdout, stderr = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.terminate()  # bench.py unmounts and stops what it started on SIGTERM
        try:
            stdout, stderr = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
        raise AssertionError(f"bench.py ran over {TIMEOUT}s\n{stderr[-3000:]}")
    assert p.returncode == 0, f"bench.py exited {p.returncode}\n{stderr[-3000:]}"

    # the report: both tables, with a row per phase
    assert "| phase | s3vfs |" in stdout, stdout
    for label in ("| 1 write ", "| 4 create ", "| 6 100 stats "):
        assert stdout.count(label) == 2, f"{label!r} not in both tables:\n{stdout}"
    assert "ERROR" not in stdout, stdout

    doc = json.loads(out_json.read_text())
    res = {r["row"]: r for r in doc["results"] if r["target"] == "s3vfs"}
    for row in ("1", "4", "6"):
        assert not res[row].get("error"), res[row]
        assert res[row]["wall_s"] > 0

    n = doc["config"]["small"]
    for counts in (res["4"]["requests"], res["4"]["s3vfs_stats"]["requests"]):
        assert counts.get("put") == n, counts          # one PUT per small file ...
        assert counts["total"] - counts["put"] <= 2, counts  # ... and nothing else per file
    assert res["6"]["requests"]["total"] == 0, res["6"]       # within stat_ttl: no request
    assert res["6"]["s3vfs_stats"]["requests"]["total"] == 0, res["6"]

    # nothing left mounted under the run's directory, and a clean daemon log
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(tmp_path) not in mounts
    logs = list(tmp_path.glob("s3vfs-bench-*/s3vfs/daemon.log"))
    assert len(logs) == 1, logs
    mu.check_log(logs[0].read_text(errors="replace"), allow=[r" info: statistics: \{"],
                 what="s3vfs log of the benchmark", scrub=[str(tmp_path)])
