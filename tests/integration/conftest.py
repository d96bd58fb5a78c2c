"""pytest fixtures for the integration tests: real servers on loopback, fresh names per test.

Session scope (each server starts once, on first use, and is stopped by PID at the end):
  rgw_server   S3Server (Ceph RGW): .endpoint .access_key .secret_key .region .host .port
               .dir .log .log_dir, .client(access_key=None, secret_key=None, **botocore_config)
  ddb_server   DdbServer (DynamoDB Local): .endpoint .region .access_key .secret_key .port
               .dir .log, .client(**botocore_config)
  servers      both: .s3_endpoint .ddb_endpoint .access_key .secret_key .region .rgw .ddb .dir
  build_dir    Path of the meson build dir: env S3VFS_BUILD, default <repo>/build
  s3vfs_bin    Path of build_dir/s3vfs       (fails clearly if not built)
  ctl_bin      Path of build_dir/s3vfs-ctl   (fails clearly if not built)
Function scope:
  s3              boto3 S3 client on rgw_server (path-style, us-east-1)
  bucket          name of a fresh, empty bucket; emptied and deleted after the test
  ddb             boto3 DynamoDB client on ddb_server
  ddb_table_name  a unique table name (not created; deleted after the test if it exists)
  aws_env         callable: aws_env(**extra) -> a new dict, os.environ without AWS_* plus the
                  test keys and region, AWS_EC2_METADATA_DISABLED=true, AWS_CONFIG_FILE and
                  AWS_SHARED_CREDENTIALS_FILE=/dev/null, NO_PROXY for loopback,
                  S3VFS_TEST_S3_ENDPOINT; then extra (a value of None removes the variable)

The servers live in a fresh directory under /tmp, on free ports; servers that the collected
tests will need start in parallel. A server that cannot start fails each test that needs it
with the missing piece and the log to read (never a skip). After a session with failures the
logs are kept (the path is printed); otherwise the directory is removed. Servers left behind
by a session that was killed (its pytest process is gone) are stopped at the next session start.

S3VFS_TEST_SERVERS=DIR uses DIR instead and leaves the servers running after the session, so
the next run reuses them at once (stop with tests/servers/rgw.sh stop DIR/rgw and
tests/servers/ddb.sh stop DIR/ddb).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import local_servers as ls  # noqa: E402

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var), "127.0.0.1,localhost"]))

_NEEDS_RGW = {"rgw_server", "servers", "s3", "bucket", "aws_env"}
_NEEDS_DDB = {"ddb_server", "servers", "ddb", "ddb_table_name"}


class _Servers:
    """Lazily started servers, shared by the session; one start per kind, possibly parallel."""

    def __init__(self, root: Path, keep_running: bool):
        self.root = root
        self.keep_running = keep_running
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._result: dict[str, object] = {}
        self._start = {"rgw": lambda: ls.start_rgw(root / "rgw"),
                       "ddb": lambda: ls.start_ddb(root / "ddb")}
        self._stop = {"rgw": lambda: ls.stop_rgw(root / "rgw"),
                      "ddb": lambda: ls.stop_ddb(root / "ddb")}

    def prestart(self, kind: str) -> None:
        with self._lock:
            if kind in self._threads:
                return

            def run():
                try:
                    self._result[kind] = self._start[kind]()
                except BaseException as e:  # noqa: BLE001 — reported by get()
                    self._result[kind] = e

            t = threading.Thread(target=run, name=f"start-{kind}", daemon=True)
            self._threads[kind] = t
            t.start()

    def get(self, kind: str):
        self.prestart(kind)
        self._threads[kind].join()
        r = self._result[kind]
        if isinstance(r, BaseException):
            pytest.fail(str(r), pytrace=False)
        return r

    def stop(self) -> None:
        if self.keep_running:
            return
        for kind, t in self._threads.items():
            t.join()
            self._stop[kind]()  # also after a failed start: stops what did come up


@pytest.fixture(scope="session")
def _servers(request):
    env_dir = os.environ.get("S3VFS_TEST_SERVERS")
    if env_dir:
        root = Path(env_dir).resolve()
        root.mkdir(parents=True, exist_ok=True)
    else:
        # a short path under /tmp: Ceph's admin sockets must fit in 107 bytes, and pytest's
        # basetemp rotation must never delete the data of a running server
        ls.reap_stale("/tmp/s3vfs-srv-*")  # servers left by a session that was killed
        root = Path(tempfile.mkdtemp(prefix="s3vfs-srv-", dir="/tmp"))
        ls.claim(root)
    mgr = _Servers(root, keep_running=bool(env_dir))
    # start what the collected tests will need, in parallel
    for item in request.session.items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _NEEDS_RGW:
            mgr.prestart("rgw")
        if names & _NEEDS_DDB:
            mgr.prestart("ddb")
    yield mgr
    mgr.stop()
    if not env_dir:
        if request.session.testsfailed:
            # keep logs and conf for reading; drop the (sparse, possibly large) data
            for sub in ("rgw/osd", "rgw/mon"):
                shutil.rmtree(root / sub, ignore_errors=True)
            print(f"\ns3vfs test servers: logs kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def rgw_server(_servers) -> ls.S3Server:
    return _servers.get("rgw")


@pytest.fixture(scope="session")
def ddb_server(_servers) -> ls.DdbServer:
    return _servers.get("ddb")


@dataclass
class Servers:
    rgw: ls.S3Server
    ddb: ls.DdbServer

    s3_endpoint = property(lambda self: self.rgw.endpoint)
    ddb_endpoint = property(lambda self: self.ddb.endpoint)
    access_key = property(lambda self: self.rgw.access_key)
    secret_key = property(lambda self: self.rgw.secret_key)
    region = property(lambda self: self.rgw.region)
    dir = property(lambda self: self.rgw.dir.parent)


@pytest.fixture(scope="session")
def servers(rgw_server, ddb_server) -> Servers:
    return Servers(rgw_server, ddb_server)


@pytest.fixture(scope="session")
def _s3_client(rgw_server):
    return rgw_server.client()


@pytest.fixture(scope="session")
def _ddb_client(ddb_server):
    return ddb_server.client()


@pytest.fixture
def s3(_s3_client):
    return _s3_client


@pytest.fixture
def ddb(_ddb_client):
    return _ddb_client


@pytest.fixture
def bucket(request, _s3_client) -> str:
    name = ls.unique_bucket_name(request.node.name)
    _s3_client.create_bucket(Bucket=name)
    yield name
    try:
        ls.empty_and_delete_bucket(_s3_client, name)
    except Exception as e:  # noqa: BLE001 — best effort; the name is unique anyway
        warnings.warn(f"could not delete test bucket {name}: {e}")


@pytest.fixture
def ddb_table_name(request, _ddb_client) -> str:
    name = ls.unique_table_name(request.node.name)
    yield name
    try:
        _ddb_client.delete_table(TableName=name)
    except _ddb_client.exceptions.ResourceNotFoundException:
        pass
    except Exception as e:  # noqa: BLE001
        warnings.warn(f"could not delete test table {name}: {e}")


@pytest.fixture
def aws_env(rgw_server):
    def make(**extra) -> dict[str, str]:
        env = ls.aws_env(rgw_server)
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env
    return make


@pytest.fixture(scope="session")
def build_dir() -> Path:
    d = Path(os.environ.get("S3VFS_BUILD") or ls.REPO_ROOT / "build").resolve()
    if not (d / "build.ninja").is_file():
        pytest.fail(f"no meson build in {d}: build it with `meson setup {d} && ninja -C {d}` "
                    "(or set S3VFS_BUILD to the build dir)", pytrace=False)
    return d


def _binary(build_dir: Path, name: str) -> Path:
    b = build_dir / name
    if not os.access(b, os.X_OK):
        pytest.fail(f"{b} is not built: run `ninja -C {build_dir}`", pytrace=False)
    return b


@pytest.fixture(scope="session")
def s3vfs_bin(build_dir) -> Path:
    return _binary(build_dir, "s3vfs")


@pytest.fixture(scope="session")
def ctl_bin(build_dir) -> Path:
    return _binary(build_dir, "s3vfs-ctl")


# --- mounts: s3vfs and s3fs on the test's bucket -----------------------------------------------
#
# s3vfs_mount  factory: m = s3vfs_mount(bucket, prefix="", opts=None, cache_dir=None,
#              allow_log=(), env=None) mounts s3vfs (-f, a subprocess) on a fresh directory
#              under tmp_path, with endpoint, region, use_path_request_style, loglevel=warn and
#              the test keys (aws_env()) filled in; opts are merged over these ({"stat_ttl": 0},
#              {"ro": True} for a flag, {"loglevel": False} drops a default). Each mount gets
#              its own cache dir under tmp_path unless cache_dir (or opts["cache_dir"]) is
#              given.
#              m: mountutil.S3vfsMount — .path (Path), .stats() (the JSON of the xattr
#              user.s3vfs.stats), .requests(op="total"), .unmount() (clean: exit status 0 and
#              log scan), .remount() (clean unmount, then the same command and cache dir),
#              .cleanup(), .log (text), .log_path, .run_log (this start only), .cache_dir,
#              .argv, .proc.
# s3fs_mount   factory: m = s3fs_mount(bucket, prefix="", opts=None, allow_log=()) mounts
#              Debian's s3fs the same way: -o url=,use_path_request_style,passwd_file= (0600),
#              dbglevel=warn,use_xattr. Note s3fs's uid=, gid= and umask= override the
#              attributes of EVERY object (not only defaults): leave them out of compatibility
#              tests. s3fs caches stats for 900 s: mount the reader after the writer is done.
#              m: mountutil.Mount (.path, .unmount(), .remount(), .cleanup(), .log, ...).
# Both fixtures use the test's `bucket` fixture, so that the bucket outlives the mounts. At
# teardown, mounts still running are unmounted cleanly (in parallel; exit status 0 and a clean
# log are then required) if the test passed, and cleaned up (lazy unmount, kill) if it failed.

import re  # noqa: E402

import mountutil as mu  # noqa: E402

# Lines s3fs 1.90 writes at dbglevel=warn on every run, and are no problem.
S3FS_LOG_ALLOW = (
    r"\[CRT\] s3fs_logger\.cpp:LowSetLogLevel\(\d+\): change debug level from \[CRT\] to",
    r"\[INF\] s3fs version \S+ : s3fs ",  # echoes the command line
    # s3fs's XPath helper logs this whenever an optional element of a listing (Prefix,
    # NextMarker, ...) is absent: known s3fs noise, not a failure
    r"\[ERR\] s3fs_xml\.cpp:get_base_exp\(\d+\): marker_xp->nodesetval is empty\.",
)
# s3vfs's statistics line (loglevel=info and up) has an "errors" member.
S3VFS_LOG_ALLOW = (r" info: statistics: \{",)
# s3fs logs its errors as "[ERR]" and "[CRT]", which LOG_PATTERN does not see.
S3FS_LOG_PATTERN = re.compile(mu.LOG_PATTERN.pattern + r"|\[ERR\]|\[CRT\]", re.IGNORECASE)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item (item.rep_setup, .rep_call, .rep_teardown), so that
    a fixture's teardown can tell whether its test failed (as sshfs's conftest.py does)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _test_failed(request) -> bool:
    """Did the test fail, or not run to its end (a setup failure, a skip, an xfail)?"""
    rep = getattr(request.node, "rep_call", None)
    return rep is None or not rep.passed


def _mount_opts(defaults: dict, opts: dict | None) -> str:
    """-o's argument: opts merged over defaults; True (or None) is a bare flag, False drops."""
    merged = {**defaults, **(opts or {})}
    return ",".join(k if v is True or v is None else f"{k}={v}"
                    for k, v in merged.items() if v is not False)


def _source(bucket: str, prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{bucket}:/{prefix}" if prefix else bucket


@pytest.fixture
def s3vfs_mount(request, bucket, rgw_server, aws_env, tmp_path):
    mounts: list[mu.S3vfsMount] = []

    def mount(bucket_name: str, prefix: str = "", opts: dict | None = None,
              cache_dir: os.PathLike | str | None = None, allow_log=(),
              env: dict | None = None) -> mu.S3vfsMount:
        binary = request.getfixturevalue("s3vfs_bin")  # fails the test clearly if not built
        n = len(mounts) + 1
        mnt = tmp_path / f"s3vfs-{n}"
        if cache_dir is None:
            cache_dir = (opts or {}).get("cache_dir") or tmp_path / f"s3vfs-{n}.cache"
        cache = Path(cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        defaults = {"endpoint": rgw_server.endpoint, "region": rgw_server.region,
                    "use_path_request_style": True, "cache_dir": cache, "loglevel": "warn"}
        argv = [binary, _source(bucket_name, prefix), mnt, "-f", "-o",
                _mount_opts(defaults, opts)]
        m = mu.S3vfsMount(argv, mnt, tmp_path / f"s3vfs-{n}.log",
                          env=env if env is not None else aws_env(),
                          allow=[*S3VFS_LOG_ALLOW, *allow_log], name="s3vfs",
                          scrub=[bucket_name])
        m.cache_dir = cache
        mounts.append(m)
        return m.start()

    yield mount
    mu.unmount_all(mounts, failed=_test_failed(request))


@pytest.fixture
def s3fs_mount(request, bucket, rgw_server, aws_env, tmp_path):
    if shutil.which("s3fs") is None:
        pytest.fail(f"s3fs is not installed — {ls.SETUP_HINT}", pytrace=False)
    passwd = tmp_path / "s3fs.passwd"
    fd = os.open(passwd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{rgw_server.access_key}:{rgw_server.secret_key}\n")
    mounts: list[mu.Mount] = []

    def mount(bucket_name: str, prefix: str = "", opts: dict | None = None,
              allow_log=()) -> mu.Mount:
        n = len(mounts) + 1
        mnt = tmp_path / f"s3fs-{n}"
        defaults = {"url": rgw_server.endpoint, "use_path_request_style": True,
                    "passwd_file": passwd, "dbglevel": "warn", "use_xattr": True}
        argv = ["s3fs", _source(bucket_name, prefix), mnt, "-f", "-o",
                _mount_opts(defaults, opts)]
        m = mu.Mount(argv, mnt, tmp_path / f"s3fs-{n}.log", env=aws_env(),
                     allow=[*S3FS_LOG_ALLOW, *allow_log], pattern=S3FS_LOG_PATTERN,
                     name="s3fs", scrub=[bucket_name])
        mounts.append(m)
        return m.start()

    yield mount
    mu.unmount_all(mounts, failed=_test_failed(request))


def pytest_configure(config):
    config.addinivalue_line("markers", "nginx_allow(regex): nginx error-log lines a test expects "
                                       "(test_nginx.py), each one a known limitation")
