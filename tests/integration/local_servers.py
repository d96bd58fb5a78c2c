"""The local test servers, driven from Python: Ceph RGW (S3) and DynamoDB Local.

Starting and stopping goes through tests/servers/rgw.sh and tests/servers/ddb.sh, so that a
session under pytest and a developer at a shell start them the same way. Everything a server
keeps (config, pid files, logs, data) lives in the directory it is given; servers are stopped
by their pid files, never by name.

Used by conftest.py; importable on its own (e.g. from a benchmark script).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVERS_DIR = REPO_ROOT / "tests" / "servers"
RGW_SH = SERVERS_DIR / "rgw.sh"
DDB_SH = SERVERS_DIR / "ddb.sh"
DDB_JAR = SERVERS_DIR / "node_modules" / "amplify-dynamodb-simulator" / "emulator" / "DynamoDBLocal.jar"
REGION = "us-east-1"
SETUP_HINT = "run packaging/setup.sh (as root) to install it"


class ServerError(RuntimeError):
    """A local server could not be started; the message names the piece and the log to read."""


def _tail(path: Path, lines: int = 20) -> str:
    """The lines of a log that look like errors (Ceph logs errors at level -1), else its end."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errs = [ln for ln in text
            if re.search(r"error|fail|abort|assert|exception|denied| -1 ", ln, re.I)]
    return "\n".join((errs or text)[-lines:])


def _parse_kv(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


def _run(cmd: list[str], what: str, logs: list[Path], timeout: float = 150) -> dict[str, str]:
    """Run a start script; return the key=value pairs of its last stdout line."""
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise ServerError(f"{what}: '{' '.join(cmd)}' did not finish in {timeout}s; "
                          f"logs: {', '.join(map(str, logs))}") from e
    if p.returncode != 0:
        # the scripts name the log to read in their error message; add the newest lines of it
        named = [Path(m) for m in re.findall(r"(/\S+\.log)", p.stderr)]
        shown = "".join(f"\n--- last lines of {f} ---\n{_tail(f)}" for f in named[:2] if f.exists())
        raise ServerError(f"{what} failed to start (exit {p.returncode}): {p.stderr.strip()}{shown}")
    lines = [ln for ln in p.stdout.splitlines() if "endpoint=" in ln]
    if not lines:
        raise ServerError(f"{what}: no endpoint line in the output of {' '.join(cmd)}: {p.stdout!r}")
    return _parse_kv(lines[-1])


def _need(programs: list[str], files: list[Path] = ()) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    missing += [str(f) for f in files if not f.exists()]
    if missing:
        raise ServerError(f"missing {', '.join(missing)} — {SETUP_HINT}")


def _client_config(**kw):
    import botocore.config
    base = dict(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=120,
                retries={"max_attempts": 3, "mode": "standard"})
    base.update(kw)
    return botocore.config.Config(**base)


@dataclass
class S3Server:
    """A running Ceph RGW: endpoint http://127.0.0.1:PORT, path-style, region us-east-1."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    dir: Path
    port: int = field(init=False)
    host: str = field(init=False)

    def __post_init__(self):
        m = re.match(r"http://([^:/]+):(\d+)", self.endpoint)
        self.host, self.port = m.group(1), int(m.group(2))

    @property
    def log_dir(self) -> Path:
        return self.dir / "log"

    @property
    def log(self) -> Path:
        return self.dir / "log" / "rgw.log"

    def client(self, access_key: str | None = None, secret_key: str | None = None, **config):
        """A boto3 S3 client on this endpoint (path-style). Override the keys to test auth."""
        import boto3
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=_client_config(**config))

    def mkbucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name


@dataclass
class DdbServer:
    """A running DynamoDB Local (in memory, shared DB: any keys and region see the same tables)."""

    endpoint: str
    dir: Path
    region: str = REGION
    access_key: str = "S3VFSTESTACCESSKEY00"
    secret_key: str = "s3vfsTestSecretKey0000000000000000000000"

    @property
    def log(self) -> Path:
        return self.dir / "ddb.log"

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def client(self, **config):
        import boto3
        return boto3.session.Session().client(
            "dynamodb", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=_client_config(**config))


def start_rgw(directory: Path, port: int | None = None) -> S3Server:
    """Start (or find running) the single-node Ceph cluster + RGW in directory."""
    _need(["ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool",
           "ceph-authtool", "curl"], [Path("/usr/bin/python3")])
    directory = Path(directory)
    cmd = [str(RGW_SH), "start", str(directory)] + ([str(port)] if port else [])
    kv = _run(cmd, "Ceph RGW (tests/servers/rgw.sh)", [directory / "log"])
    return S3Server(endpoint=kv["endpoint"], access_key=kv["access_key"],
                    secret_key=kv["secret_key"], region=kv.get("region", REGION), dir=directory)


def stop_rgw(directory: Path) -> None:
    subprocess.run([str(RGW_SH), "stop", str(directory)], stdin=subprocess.DEVNULL,
                   timeout=120, check=False)


def start_ddb(directory: Path, port: int | None = None) -> DdbServer:
    """Start (or find running) DynamoDB Local with its pid file and log in directory."""
    _need(["java", "curl"], [DDB_JAR])
    directory = Path(directory)
    cmd = [str(DDB_SH), "start", str(directory)] + ([str(port)] if port else [])
    kv = _run(cmd, "DynamoDB Local (tests/servers/ddb.sh)", [directory / "ddb.log"])
    return DdbServer(endpoint=kv["endpoint"], dir=directory)


def stop_ddb(directory: Path) -> None:
    subprocess.run([str(DDB_SH), "stop", str(directory)], stdin=subprocess.DEVNULL,
                   timeout=60, check=False)


def aws_env(s3: S3Server | None = None, ddb: DdbServer | None = None,
            base: dict | None = None) -> dict[str, str]:
    """Environment for a child process (s3vfs, s3fs, rclone, aws): the test keys and region,
    no instance metadata, no ~/.aws files, no proxy for loopback. The endpoints are only given
    for information, as S3VFS_TEST_S3_ENDPOINT / S3VFS_TEST_DDB_ENDPOINT (programs take them
    from their options: s3vfs -o endpoint=,dynamodb_endpoint=)."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.startswith("AWS_")}
    srv = s3 or ddb
    env.update({
        "AWS_ACCESS_KEY_ID": srv.access_key if srv else "S3VFSTESTACCESSKEY00",
        "AWS_SECRET_ACCESS_KEY": srv.secret_key if srv else "s3vfsTestSecretKey0000000000000000000000",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    })
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1,localhost"]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    if s3:
        env["S3VFS_TEST_S3_ENDPOINT"] = s3.endpoint
    if ddb:
        env["S3VFS_TEST_DDB_ENDPOINT"] = ddb.endpoint
    return env


def _slug(text: str, n: int) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:n].strip("-") or "t"


def unique_bucket_name(hint: str = "") -> str:
    """A valid, unique bucket name (3-63 chars, lowercase, digits, hyphens)."""
    return f"t-{_slug(hint, 36)}-{uuid.uuid4().hex[:12]}"


def unique_table_name(hint: str = "") -> str:
    return f"s3vfs-{_slug(hint, 60)}-{uuid.uuid4().hex[:12]}"


def empty_and_delete_bucket(s3, name: str) -> None:
    """Delete every object version, delete marker and open multipart upload, then the bucket."""
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
        for up in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        objs = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for i in range(0, len(objs), 1000):
            s3.delete_objects(Bucket=name, Delete={"Objects": objs[i:i + 1000], "Quiet": True})
    s3.delete_bucket(Bucket=name)


# --- sessions that died without stopping their servers ------------------------------------

def _proc_start(pid: int) -> str | None:
    """The start time of process pid (clock ticks since boot), None if it does not run."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else fields[19]


def claim(root: Path) -> None:
    """Mark root as belonging to this process (pid and start time), for reap_stale."""
    (root / "owner").write_text(f"{os.getpid()} {_proc_start(os.getpid())}\n")


def reap_stale(pattern: str = "/tmp/s3vfs-srv-*") -> list[Path]:
    """Stop the servers of session dirs whose owner process is gone (a killed pytest), by
    their pid files, and remove the dirs. Dirs without an owner file are left alone."""
    import glob
    reaped = []
    for d in map(Path, glob.glob(pattern)):
        try:
            pid, start = (d / "owner").read_text().split()
        except (OSError, ValueError):
            continue
        if _proc_start(int(pid)) == start:
            continue  # the owner still runs
        if (d / "rgw" / "ceph.conf").exists():
            stop_rgw(d / "rgw")
        if (d / "ddb").exists():
            stop_ddb(d / "ddb")
        shutil.rmtree(d, ignore_errors=True)
        reaped.append(d)
    return reaped
