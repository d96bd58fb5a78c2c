"""The README's 5-minute tour, run as a new user would: the quickstart command (its own
servers, its demo bucket mounted), then the tour's block as it is written, with only the demo
paths and the nginx port moved so that the test can run beside anything else."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def tour_block() -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- tour -->\s*```sh\n(.*?)```\s*<!-- /tour -->", text, re.S)
    assert m, "README.md has no tour block between <!-- tour --> and <!-- /tour -->"
    return m.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quickstart(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "packaging" / "quickstart.sh"), *args], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def demo():
    # Under /var/tmp: the RGW data directory must not be on tmpfs and its path must be short.
    root = Path(tempfile.mkdtemp(prefix="tour-", dir="/var/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(S3VFS_DEMO_DIR=str(root / "d"), S3VFS_DEMO_MOUNT=str(root / "m"), CI="true")
    yield root, env
    r = quickstart(env, "stop", timeout=120)
    if r.returncode != 0:
        subprocess.run(["fusermount3", "-u", "-z", str(root / "m")], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def test_the_readme_tour_runs_as_written(demo):
    root, env = demo
    r = quickstart(env)
    assert r.returncode == 0, f"quickstart failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "Hello from s3vfs." not in r.stderr

    port = free_port()
    tmp = root / "t"
    tmp.mkdir()
    script = (tour_block()
              .replace("/var/tmp/s3vfs-demo", env["S3VFS_DEMO_DIR"])
              .replace("/mnt/s3vfs-demo", env["S3VFS_DEMO_MOUNT"])
              .replace("127.0.0.1:8089", f"127.0.0.1:{port}")
              .replace("/tmp/s3vfs-tour-nginx", str(tmp / "nginx")))
    try:
        t = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True,
                           timeout=180)
    finally:
        pid = tmp / "nginx.pid"
        if pid.exists():  # the tour stops its nginx; a failed run may not have
            subprocess.run(["kill", pid.read_text().strip()], capture_output=True)
    out = t.stdout
    assert t.returncode == 0, f"the tour failed (exit {t.returncode}):\n{out[-4000:]}\n" \
                              f"{t.stderr[-4000:]}"
    for want in ("Hello from s3vfs.",             # 1. a bucket as files
                 '"requests":',                   # the stats
                 "<h1>s3vfs demo</h1>",          # 2. nginx serving from the mount
                 "00000001-item-added.json",      # 3. the event stream
                 "00000002-paid.json",
                 '{"version":2,"id":"',
                 '"type":"ItemAdded"',
                 "1\n2\n",                        # 4. .versions after the deploy
                 "Only in"):                      # the diff names site.css
        assert want in out, f"{want!r} not in the tour's output:\n{out}"
    assert out.rstrip().endswith("<h1>version 1</h1>"), out[-500:]
