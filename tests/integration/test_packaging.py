# SPDX-License-Identifier: MIT
"""s3vfs as the other file systems on a server: the man pages, the mount(8) helper with fstab
and `mount -t`, the systemd units, the Debian package.

- Man pages: every option and flag of `s3vfs --help` is in s3vfs(1); the pages render with no
  groff warning; the version is the same in meson.build, the man pages and debian/changelog.
- mount.s3vfs: the options it drops and keeps, its flags, where it finds the binary (a fake
  s3vfs records what it was given); then for real, as /sbin/mount.s3vfs for the duration of
  a test (a symlink, or a bind mount over an installed one, removed at the end): `mount -a`
  and `mount MOUNTPOINT` from a test fstab (-T), `mount -t s3vfs`, an error through mount(8),
  and type fuse.s3vfs through mount.fuse3.
- systemd: `systemd-analyze verify` of the units; s3vfs@.service run by hand the way systemd
  runs it (unitfile.py): it is mounted when ExecStart returns, ExecStop alone ends the daemon
  with status 0, a busy mount stops on SIGTERM with status 0, a daemon that died is replaced
  after ExecStartPre detaches its dead mount.
- Debian: packaging/build-deb.sh builds the .deb (dpkg-buildpackage -us -uc -b), lintian finds
  no error, `dpkg -x` into a directory, and the binary, helper and unit found there work.

The daemons that mount(8) or a unit start fork into the background; this process is made
their subreaper (unitfile.subreaper) so that their exit status is collected and checked.
They log to syslog, so there is no log to scan: their exit status is the check.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import local_servers as ls
import mountutil as mu
import unitfile as uf

REPO = ls.REPO_ROOT
PKG = REPO / "packaging"
HELPER = PKG / "mount.s3vfs"
SERVICE_IN = PKG / "systemd" / "s3vfs@.service.in"
MOUNT_UNIT = PKG / "systemd" / "srv-data.mount"
MAN_PAGES = [PKG / "s3vfs.1", PKG / "s3vfs-ctl.1", PKG / "mount.s3vfs.8"]
SBIN_HELPER = Path("/sbin/mount.s3vfs")
EXIT_TIMEOUT = 30.0  # unmount until the daemon has exited


def need(*programs: str, pkgs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: apt-get install {pkgs} "
                    f"(packaging/setup.sh installs it)", pytrace=False)


def run(argv, env=None, timeout=60, check=False, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in argv], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}",
                    pytrace=False)
    return r


def meson_version() -> str:
    m = re.search(r"version\s*:\s*'([^']+)'", (REPO / "meson.build").read_text())
    assert m, "no version in meson.build"
    return m.group(1)


# --- man pages ---------------------------------------------------------------------------------

def render(page: Path, width: int = 80, env_extra=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": str(width), **(env_extra or {})}
    return run(["man", "-l", "--warnings=w", page], env=env)


def rendered_text(page: Path) -> str:
    """The page as a reader sees it, one paragraph per line (no hyphenation, no formatting),
    with the Unicode hyphens and minus signs of some groff setups made ASCII."""
    r = run(["groff", "-man", "-Tutf8", "-P-cbou", "-rLL=250n", page], check=True)
    return r.stdout.translate({0x2010: "-", 0x2011: "-", 0x2212: "-"})


_ITEM = r"(?:--?[A-Za-z][\w-]*(?: [a-z][a-z0-9_]*(?:=[^\s,]+)?)?|[a-z][a-z0-9_]*(?:=[^\s,]+)?|\.\.\.)"
_SPEC = re.compile(rf"^  ({_ITEM}(?:, {_ITEM})*)")


def help_options(text: str) -> tuple[set[str], set[str]]:
    """(flags, option names) of `s3vfs --help`: flags like -f and --help; names like
    "endpoint=" (takes a value) or "use_path_request_style" (a bare option). An option line
    starts with its spec: items such as "-o uid=N", "gid=N", "-d", "--help", separated by
    ", " (the description follows after a space)."""
    flags, names = set(), set()
    for line in text.splitlines():
        m = _SPEC.match(line)
        if not m:
            continue
        for item in m.group(1).split(", "):
            if item == "...":
                continue
            if item.startswith("-"):
                flag, _, item = item.partition(" ")
                flags.add(flag)
                if not item:
                    continue
            name, eq, _ = item.partition("=")
            names.add(name + eq)
    # names in the descriptions, such as "url=URL is accepted too"
    names.update(re.findall(r"\b([a-z][a-z0-9_]*=)[A-Z]", text))
    return flags, names


def test_help_options_are_all_in_the_man_page(s3vfs_bin):
    need("groff", pkgs="groff-base")
    r = run([s3vfs_bin, "--help"], check=True)
    flags, names = help_options(r.stdout)
    # the extraction itself: a few that must be there
    assert {"-f", "-d", "-o", "--help", "--version"} <= flags, flags
    assert {"endpoint=", "url=", "uid=", "gid=", "use_path_request_style", "debug",
            "allow_other"} <= names, names
    man = rendered_text(PKG / "s3vfs.1")
    missing = []
    for f in sorted(flags):
        if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", man):
            missing.append(f)
    for n in sorted(names):
        tail = "" if n.endswith("=") else r"(?![\w])"
        if not re.search(rf"(?<![\w.-]){re.escape(n)}{tail}", man):
            missing.append(n)
    # the extended attributes and commands the help names
    for x in set(re.findall(r"user\.s3vfs[\w.]*\w", r.stdout)) | {"getfattr", "setfattr"}:
        if x not in man:
            missing.append(x)
    assert not missing, f"in `s3vfs --help` but not in packaging/s3vfs.1: {missing}"


def test_man_page_sections():
    need("groff", pkgs="groff-base")
    man = rendered_text(PKG / "s3vfs.1")
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "CREDENTIALS",
                    "OBJECT LAYOUT AND S3FS COMPATIBILITY", "CONSISTENCY", "DURABILITY",
                    "EVENT STREAMS", "EXTENDED ATTRIBUTES", "STATISTICS", "MOUNTING AT BOOT",
                    "FILES", "EXAMPLES", "LIMITATIONS", "SEE ALSO"):
        assert re.search(rf"^{section}$", man, re.M), f"no section {section}"
    for words in ("x-amz-meta-xattr", "x-amz-meta-mode", ".head", "EEXIST", "stat_cache_expire=",
                  "dbglevel=", "url=", "hard links", "not atomic", "5 GiB", "/etc/fstab",
                  "s3vfs@.service", "fuse.s3vfs", "If-None-Match", "cache_dir="):
        assert words in man, words


@pytest.mark.parametrize("page", MAN_PAGES, ids=lambda p: p.name)
def test_man_page_renders_without_warnings(page):
    need("groff", "man", pkgs="groff-base man-db")
    r = run(["groff", "-man", "-ww", "-z", "-Tutf8", page])
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = run(["groff", "-man", "-ww", "-z", page])  # the PostScript device: a second opinion
    assert r.returncode == 0 and r.stderr == "", r.stderr
    for width in (80, 120):
        r = render(page, width)
        assert r.returncode == 0 and r.stderr == "", f"man -l at {width} columns:\n{r.stderr}"
        assert r.stdout.count("\n") > 20


def test_versions_agree():
    v = meson_version()
    for page in MAN_PAGES:
        th = next(ln for ln in page.read_text().splitlines() if ln.startswith(".TH "))
        assert f'"s3vfs {v}"' in th, (page.name, th, v)
    first = (PKG / "debian" / "changelog").read_text().splitlines()[0]
    assert first.startswith(f"s3vfs ({v}-"), (first, v)


# --- mount.s3vfs without a mount: what it runs --------------------------------------------------

FAKE_S3VFS = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_S3VFS_OUT"], "w") as f:
    json.dump({"argv": sys.argv, "home": os.environ.get("HOME"),
               "key": os.environ.get("AWS_ACCESS_KEY_ID")}, f)
sys.exit(int(os.environ.get("FAKE_S3VFS_RC", "0")))
"""


@pytest.fixture
def fake_s3vfs(tmp_path):
    """A directory with mount.s3vfs and a fake s3vfs next to it; run(args, **env) runs the
    helper and returns (CompletedProcess, what the fake was given or None)."""
    d = tmp_path / "sbin"
    d.mkdir()
    shutil.copy2(HELPER, d / "mount.s3vfs")
    fake = d / "s3vfs"
    fake.write_text(FAKE_S3VFS)
    fake.chmod(0o755)
    out = tmp_path / "fake.json"

    def go(*args, env_extra=None, helper=d / "mount.s3vfs"):
        out.unlink(missing_ok=True)
        env = {"PATH": "/usr/bin:/bin", "HOME": "/home/x", "FAKE_S3VFS_OUT": str(out),
               **(env_extra or {})}
        env = {k: v for k, v in env.items() if v is not None}
        r = run([helper, *args], env=env, timeout=20)
        got = json.loads(out.read_text()) if out.exists() else None
        return r, got
    go.dir = d
    go.fake = fake
    return go


def test_helper_drops_mount_only_options(fake_s3vfs):
    opts = ("_netdev,nofail,noauto,auto,user,users,nouser,owner,group,defaults,rw,user=bob,"
            "x-systemd.automount,x-systemd.mount-timeout=30,X-mount.mkdir,comment=systemd.foo,"
            "allow_other,endpoint=http://h:1,profile=p,ro,uid=5,stat_ttl=0,noexec,nosuid")
    r, got = fake_s3vfs("b:/p/q", "/srv/my data", "-o", opts, "-t", "s3vfs")
    assert r.returncode == 0, r.stderr
    assert got["argv"][1:] == ["b:/p/q", "/srv/my data", "-o",
                               "allow_other,endpoint=http://h:1,profile=p,ro,uid=5,stat_ttl=0,"
                               "noexec,nosuid"], got
    assert Path(got["argv"][0]).resolve() == fake_s3vfs.fake.resolve()
    # only mount-only options: no -o at all
    r, got = fake_s3vfs("b", "/mnt", "-o", "_netdev,defaults,rw")
    assert r.returncode == 0 and got["argv"][1:] == ["b", "/mnt"], (r.stderr, got)
    # -oOPTS, several -o, the flags mount(8) may pass, -t with a subtype
    r, got = fake_s3vfs("b", "/mnt", "-s", "-n", "-oro", "-o", "nofail,allow_other",
                        "-t", "fuse.s3vfs")
    assert r.returncode == 0 and got["argv"][1:] == ["b", "/mnt", "-o", "ro,allow_other"], got


def test_helper_flags_environment_and_errors(fake_s3vfs, tmp_path):
    # -f: fake, prints the command and runs nothing; -v prints it and runs it
    r, got = fake_s3vfs("b", "/mnt", "-f", "-o", "_netdev,ro")
    assert r.returncode == 0 and got is None
    assert re.search(r"mount\.s3vfs: \S*s3vfs b /mnt -o ro$", r.stderr.strip()), r.stderr
    r, got = fake_s3vfs("b", "/mnt", "-sv", "-o", "ro")
    assert r.returncode == 0 and got is not None and "s3vfs b /mnt -o ro" in r.stderr
    # the environment goes through; HOME comes from the password database when unset
    r, got = fake_s3vfs("b", "/mnt", env_extra={"AWS_ACCESS_KEY_ID": "AKIDX", "HOME": None})
    assert r.returncode == 0 and got["key"] == "AKIDX" and got["home"] == "/root", got
    # the exit status is s3vfs's
    r, got = fake_s3vfs("b", "/mnt", env_extra={"FAKE_S3VFS_RC": "1"})
    assert r.returncode == 1 and got is not None
    # S3VFS_BIN overrides; a bad one is an error
    other = tmp_path / "other-s3vfs"
    shutil.copy2(fake_s3vfs.fake, other)
    r, got = fake_s3vfs("b", "/mnt", env_extra={"S3VFS_BIN": str(other)})
    assert r.returncode == 0 and got["argv"][0] == str(other), got
    r, got = fake_s3vfs("b", "/mnt", env_extra={"S3VFS_BIN": str(tmp_path / "nope")})
    assert r.returncode == 1 and got is None and "S3VFS_BIN" in r.stderr
    # usage errors
    for args in ([], ["b"], ["b", "/mnt", "-o"], ["b", "/mnt", "extra"], ["b", "/mnt", "-x"]):
        r, got = fake_s3vfs(*args)
        assert r.returncode == 1 and got is None and r.stderr.strip(), (args, r.stderr)


def test_helper_finds_the_binary_in_bin_beside_sbin_and_on_path(fake_s3vfs, tmp_path):
    root = tmp_path / "usr"
    (root / "sbin").mkdir(parents=True)
    (root / "bin").mkdir()
    shutil.copy2(HELPER, root / "sbin" / "mount.s3vfs")
    shutil.copy2(fake_s3vfs.fake, root / "bin" / "s3vfs")
    r, got = fake_s3vfs("b", "/mnt", helper=root / "sbin" / "mount.s3vfs")
    assert r.returncode == 0 and Path(got["argv"][0]).resolve() == root / "bin" / "s3vfs"
    # a link to the helper (as /sbin/mount.s3vfs -> .../packaging/mount.s3vfs) looks beside
    # where the link points too; with nothing there, PATH
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy2(HELPER, lonely / "mount.s3vfs")
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "mount.s3vfs").symlink_to(root / "sbin" / "mount.s3vfs")
    r, got = fake_s3vfs("b", "/mnt", helper=tmp_path / "link" / "mount.s3vfs")
    assert r.returncode == 0 and Path(got["argv"][0]).resolve() == root / "bin" / "s3vfs"
    r, got = fake_s3vfs("b", "/mnt", helper=lonely / "mount.s3vfs",
                        env_extra={"PATH": f"{fake_s3vfs.dir}:/usr/bin:/bin"})
    assert r.returncode == 0 and Path(got["argv"][0]).resolve() == fake_s3vfs.fake.resolve()
    r, got = fake_s3vfs("b", "/mnt", helper=lonely / "mount.s3vfs")
    installed = shutil.which("s3vfs", path="/usr/bin:/bin:/usr/local/bin")
    if installed is None:
        assert r.returncode == 1 and got is None and "cannot find" in r.stderr, r.stderr
    else:  # an s3vfs installed on this machine is the last resort
        assert f"{installed} b /mnt" in run([lonely / "mount.s3vfs", "b", "/mnt", "-f"],
                                           env={"PATH": "/usr/bin:/bin"}).stderr


def test_helper_is_posix_sh():
    shell = shutil.which("dash") or "/bin/sh"
    r = run([shell, "-n", HELPER])
    assert r.returncode == 0, r.stderr
    r = run(["bash", "-n", PKG / "build-deb.sh"])
    assert r.returncode == 0, r.stderr
    if shutil.which("shellcheck"):  # where it is installed (not by setup.sh)
        for script, shell in ((HELPER, "sh"), (PKG / "build-deb.sh", "bash")):
            r = run(["shellcheck", "-s", shell, script])
            assert r.returncode == 0, r.stdout


# --- real mounts through mount(8) ----------------------------------------------------------------

class Daemons:
    """The s3vfs daemons of one test, started through mount(8) or a unit and reparented to
    this process (a subreaper for the test's duration)."""

    def __init__(self):
        self.live: dict[Path, int] = {}

    def adopt(self, mnt: Path) -> int:
        """The daemon serving mnt, which must be mounted."""
        assert mu.is_mounted(mnt), f"{mnt} is not mounted"
        pids = uf.children_with_arg(str(mnt))
        assert len(pids) == 1, f"want one s3vfs daemon for {mnt} among our children: {pids}"
        self.live[mnt] = pids[0]
        return pids[0]

    def unmount(self, mnt: Path, how: tuple) -> None:
        """Unmount with `how MNT`; the daemon must then exit with status 0. What mount(8)
        mounted, umount(8) unmounts: libmount then drops what it recorded in /run/mount/utab
        (fusermount3 would leave that behind)."""
        pid = self.live[mnt]
        deadline = time.monotonic() + mu.BUSY_TIMEOUT
        while True:
            r = run([*how, mnt], timeout=30)
            if r.returncode == 0 or "busy" not in r.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.returncode == 0, f"{' '.join(how)} {mnt}: {r.stderr}"
        status = uf.wait_pid(pid, EXIT_TIMEOUT)
        if status is None:
            pytest.fail(f"the daemon of {mnt} (pid {pid}) still runs {EXIT_TIMEOUT:.0f}s after "
                        f"{' '.join(how)}", pytrace=False)
        del self.live[mnt]
        assert status == 0, f"the daemon of {mnt} {uf.status_text(status)} (want exit 0)"
        assert not mu.is_mounted(mnt)

    def cleanup(self) -> None:
        """The failure path: lazy unmount (umount(8), so that libmount forgets the userspace
        options it recorded in /run/mount/utab too), SIGTERM, SIGKILL."""
        for mnt, pid in list(self.live.items()):
            run(["umount", "-l", mnt], timeout=10)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
                with contextlib.suppress(uf.UnitError):
                    if uf.wait_pid(pid, 5) is not None:
                        break
            del self.live[mnt]


@pytest.fixture
def daemons(request):
    d = Daemons()
    with uf.subreaper():
        try:
            yield d
        finally:
            left = sorted(map(str, d.live))
            d.cleanup()
    rep = getattr(request.node, "rep_call", None)  # conftest.py keeps the reports
    if rep is not None and rep.passed and left:
        pytest.fail(f"the test left these mounted: {left}", pytrace=False)


@pytest.fixture
def sbin_helper():
    """packaging/mount.s3vfs as /sbin/mount.s3vfs (where mount(8) looks) for the test: a
    symlink, or a bind mount over a helper that is installed; undone at the end."""
    target = SBIN_HELPER
    if target.is_symlink() and target.resolve() == HELPER.resolve():
        target.unlink()  # left behind by a run that was killed
    if target.exists() or target.is_symlink():
        run(["mount", "--bind", HELPER, target], check=True)
        try:
            yield target
        finally:
            run(["umount", target], timeout=10)
    else:
        target.symlink_to(HELPER)
        try:
            yield target
        finally:
            target.unlink(missing_ok=True)


def mount_opts(rgw, cache: Path, *extra: str) -> str:
    return ",".join([f"endpoint={rgw.endpoint}", f"region={rgw.region}",
                     "use_path_request_style", f"cache_dir={cache}", *extra])


def mountinfo_count(mnt: Path) -> int:
    target = os.path.realpath(mnt)
    with open("/proc/self/mountinfo") as f:
        return sum(1 for ln in f if mu._unescape_mountinfo(ln.split(" ")[4]) == target)


def mountinfo_line(mnt: Path) -> str:
    target = os.path.realpath(mnt)
    with open("/proc/self/mountinfo") as f:
        return next(ln for ln in f if mu._unescape_mountinfo(ln.split(" ")[4]) == target)


def test_fstab_mount_a_and_mount_mountpoint(sbin_helper, daemons, rgw_server, bucket, s3,
                                            aws_env, s3vfs_bin, tmp_path):
    need("mount", "umount", pkgs="mount")
    m1, m2, m3 = tmp_path / "data", tmp_path / "pre", tmp_path / "later"
    for m in (m1, m2, m3):
        m.mkdir()
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "# a test fstab\n"
        f"{bucket} {m1} s3vfs _netdev,nofail,x-systemd.automount,x-systemd.mount-timeout=30,"
        f"allow_other,{mount_opts(rgw_server, tmp_path / 'c1')} 0 0\n"
        f"{bucket}:/pre {m2} s3vfs _netdev,noauto,"
        f"{mount_opts(rgw_server, tmp_path / 'c2', 'stat_ttl=0')} 0 0\n"
        f"{bucket} {m3} s3vfs defaults,noauto,comment=x,{mount_opts(rgw_server, tmp_path / 'c3')}"
        " 0 0\n")
    env = aws_env(S3VFS_BIN=s3vfs_bin)

    # mount -a: the line without noauto
    r = run(["mount", "-a", "-T", fstab], env=env)
    assert r.returncode == 0, r.stderr
    daemons.adopt(m1)
    assert not mu.is_mounted(m2) and not mu.is_mounted(m3)
    line = mountinfo_line(m1)
    assert " - fuse.s3vfs " in line and "allow_other" in line, line
    # ... again: already mounted, nothing happens
    r = run(["mount", "-a", "-T", fstab], env=env)
    assert r.returncode == 0, r.stderr
    assert mountinfo_count(m1) == 1

    # mount MOUNTPOINT: a noauto line, with a prefix
    r = run(["mount", "-T", fstab, m2], env=env)
    assert r.returncode == 0, r.stderr
    daemons.adopt(m2)

    (m1 / "a.txt").write_bytes(b"through fstab")
    (m2 / "b.txt").write_bytes(b"under the prefix")
    assert s3.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"through fstab"
    assert s3.get_object(Bucket=bucket, Key="pre/b.txt")["Body"].read() == b"under the prefix"
    assert (m1 / "pre" / "b.txt").read_bytes() == b"under the prefix"
    assert sorted(os.listdir(m2)) == ["b.txt"]

    daemons.unmount(m1, ("umount",))
    daemons.unmount(m2, ("umount",))
    # and mount MOUNTPOINT for the defaults,comment= line
    r = run(["mount", "-T", fstab, m3], env=env)
    assert r.returncode == 0, r.stderr
    daemons.adopt(m3)
    assert sorted(os.listdir(m3)) == ["a.txt", "pre"]
    daemons.unmount(m3, ("umount",))


def test_mount_a_twice_with_a_prefix_mounts_once(sbin_helper, daemons, rgw_server, bucket,
                                                 aws_env, s3vfs_bin, tmp_path):
    mnt = tmp_path / "p"
    mnt.mkdir()
    fstab = tmp_path / "fstab"
    fstab.write_text(f"{bucket}:/pre {mnt} s3vfs _netdev,{mount_opts(rgw_server, tmp_path / 'c')}"
                     " 0 0\n")
    env = aws_env(S3VFS_BIN=s3vfs_bin)
    assert run(["mount", "-a", "-T", fstab], env=env).returncode == 0
    daemons.adopt(mnt)
    r = run(["mount", "-a", "-T", fstab], env=env)
    assert (r.returncode, mountinfo_count(mnt)) == (0, 1), r.stderr
    daemons.unmount(mnt, ("umount",))


def test_mount_t_s3vfs(sbin_helper, daemons, rgw_server, bucket, s3, aws_env, s3vfs_bin,
                       tmp_path):
    need("mount", pkgs="mount")
    mnt = tmp_path / "m"
    mnt.mkdir()
    env = aws_env(S3VFS_BIN=s3vfs_bin)
    opts = ("nofail,_netdev,rw,defaults,x-systemd.automount,comment=test,"
            + mount_opts(rgw_server, tmp_path / "c"))
    r = run(["mount", "-t", "s3vfs", f"{bucket}:/t", mnt, "-o", opts], env=env)
    assert r.returncode == 0, r.stderr
    daemons.adopt(mnt)
    (mnt / "f").write_bytes(b"mount -t")
    assert s3.get_object(Bucket=bucket, Key="t/f")["Body"].read() == b"mount -t"
    daemons.unmount(mnt, ("umount",))

    # s3vfs's one-line error comes back through mount(8), and nothing is mounted
    r = run(["mount", "-t", "s3vfs", bucket, mnt, "-o", opts + ",umask=99x"], env=env)
    assert r.returncode != 0 and "umask" in r.stderr, (r.returncode, r.stderr)
    assert not mu.is_mounted(mnt) and uf.children_with_arg(str(mnt)) == []
    # credentials come from the environment mount(8) passes on
    r = run(["mount", "-t", "s3vfs", bucket, mnt, "-o", opts],
            env=aws_env(S3VFS_BIN=s3vfs_bin, AWS_ACCESS_KEY_ID=None))
    assert r.returncode != 0 and "credentials" in r.stderr, r.stderr
    assert not mu.is_mounted(mnt)


def test_fuse_s3vfs_type_through_mount_fuse3(daemons, rgw_server, bucket, s3, aws_env, s3vfs_bin,
                                             tmp_path):
    """Type fuse.s3vfs: mount(8) runs mount.fuse3, which runs `s3vfs` from PATH (mount(8)
    resets PATH to the system's, so here mount.fuse3 is run directly, with the build's s3vfs
    on PATH); mount.fuse3 drops _netdev, nofail, noauto, users by itself."""
    need("mount.fuse3", pkgs="fuse3")
    mnt = tmp_path / "m"
    mnt.mkdir()
    env = aws_env()
    env["PATH"] = f"{s3vfs_bin.parent}:{env.get('PATH', '/usr/bin:/bin')}"
    opts = "rw,nosuid,nodev,_netdev,nofail,noauto,users," + mount_opts(rgw_server, tmp_path / "c")
    r = run([shutil.which("mount.fuse3"), f"{bucket}:/ff", mnt, "-t", "fuse.s3vfs", "-o", opts],
            env=env)
    assert r.returncode == 0, r.stderr
    daemons.adopt(mnt)
    (mnt / "f").write_bytes(b"fuse.s3vfs")
    assert s3.get_object(Bucket=bucket, Key="ff/f")["Body"].read() == b"fuse.s3vfs"
    daemons.unmount(mnt, (mu.FUSERMOUNT, "-u"))


# --- systemd -------------------------------------------------------------------------------------

def configured_service(bindir: Path) -> str:
    """s3vfs@.service as meson configures it, with bindir for @BINDIR@."""
    text = SERVICE_IN.read_text()
    assert "@BINDIR@" in text
    out = text.replace("@BINDIR@", str(bindir))
    assert "@" not in re.sub(r"s3vfs@|%i|@\.service", "", out.split("[Unit]", 1)[1]), \
        "an unconfigured @VAR@ is left"
    return out


def test_systemd_units_verify(s3vfs_bin, tmp_path):
    need("systemd-analyze", pkgs="systemd")
    d = tmp_path / "units"
    d.mkdir()
    text = configured_service(s3vfs_bin.parent)
    (d / "s3vfs@.service").write_text(text)
    (d / "s3vfs@srv-data.service").write_text(text)
    shutil.copy2(MOUNT_UNIT, d / "srv-data.mount")
    r = run(["systemd-analyze", "verify", "--man=no", *(d / n for n in (
        "s3vfs@.service", "s3vfs@srv-data.service", "srv-data.mount"))],
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"})
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    # what the unit promises, read back
    svc = uf.parse_unit(text)
    s, u = svc["Service"], svc["Unit"]
    assert s["Type"] == ["forking"] and s["Restart"] == ["on-failure"]
    assert "network-online.target" in u["After"] and "network-online.target" in u["Wants"]
    assert float(s["TimeoutStopSec"][0]) > 30, "must be above the default unmount_timeout"
    mount = uf.parse_unit(MOUNT_UNIT.read_text())
    assert mount["Mount"]["Type"] == ["s3vfs"] and mount["Mount"]["Where"] == ["/srv/data"]
    assert "_netdev" in mount["Mount"]["Options"][0]


@pytest.fixture
def service(rgw_server, aws_env, s3vfs_bin, bucket, tmp_path):
    """s3vfs@pkgtest.service for this test: the unit as meson configures it for the build's
    binary, /etc/s3vfs/pkgtest.conf and .env written under tmp_path. Returns (unit, mnt)."""
    etc = tmp_path / "etc-s3vfs"
    etc.mkdir()
    mnt = tmp_path / "svc" / "mnt"  # missing: ExecStartPre makes it
    (etc / "pkgtest.conf").write_text(
        "# written by test_packaging.py\n"
        f"BUCKET={bucket}:/svc\n"
        f"MOUNTPOINT={mnt}\n"
        f"OPTIONS={mount_opts(rgw_server, tmp_path / 'cache', 'loglevel=warn')}\n")
    env = aws_env()
    secrets = {k: v for k, v in env.items()
               if k.startswith(("AWS_", "ASAN_", "UBSAN_", "LSAN_")) or k in ("NO_PROXY",)}
    (etc / "pkgtest.env").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    (etc / "pkgtest.env").chmod(0o600)
    unit_path = tmp_path / "s3vfs@.service"
    unit_path.write_text(configured_service(s3vfs_bin.parent))
    unit = uf.ServiceUnit.load(unit_path, "pkgtest", etc_dir=etc)
    return unit, mnt


def test_service_start_stop_restart_by_hand(service, bucket, s3):
    need("fusermount3", pkgs="fuse3")
    unit, mnt = service
    with uf.subreaper():
        try:
            # start: Type=forking, so the mount answers as soon as ExecStart returns
            unit.start(main_hint=str(mnt))
            assert mu.is_mounted(mnt), "ExecStart returned before the mount was there"
            (mnt / "one.txt").write_bytes(b"service")
            assert s3.get_object(Bucket=bucket, Key="svc/one.txt")["Body"].read() == b"service"

            # stop with ExecStop alone (no signal): exit status 0
            status = unit.stop(kill=False)
            assert status == 0, f"after ExecStop the daemon {uf.status_text(status)}\n" + \
                "\n".join(unit.log)
            assert not mu.is_mounted(mnt)

            # start again; the daemon dies (SIGKILL): its dead mount is left behind
            pid = unit.start(main_hint=str(mnt))
            assert (mnt / "one.txt").read_bytes() == b"service"
            os.kill(pid, signal.SIGKILL)
            assert uf.wait_pid(pid, 10) is not None
            unit.main_pid = None
            assert mu.is_mounted(mnt)
            with pytest.raises(OSError):
                os.stat(mnt / "one.txt")
            # Restart=on-failure starts it again: ExecStartPre detaches the dead mount
            unit.start(main_hint=str(mnt))
            assert mountinfo_count(mnt) == 1
            assert (mnt / "one.txt").read_bytes() == b"service"

            # a busy mount: fusermount3 -u fails (ignored, "-"), SIGTERM follows, exit 0,
            # the mount detached, what was written is on S3
            (mnt / "two.txt").write_bytes(b"written before the stop")
            fd = os.open(mnt / "one.txt", os.O_RDONLY)
            try:
                status = unit.stop()
            finally:
                with contextlib.suppress(OSError):
                    os.close(fd)
            assert status == 0, f"the daemon {uf.status_text(status)}\n" + "\n".join(unit.log)
            assert any("ExecStop" in ln and "-> 1" in ln for ln in unit.log), unit.log
            assert not mu.is_mounted(mnt)
            assert s3.get_object(Bucket=bucket, Key="svc/two.txt")["Body"].read() == \
                b"written before the stop"
        finally:
            unit.kill()
            run([mu.FUSERMOUNT, "-u", "-z", mnt], timeout=10)


def test_service_with_a_bad_setting_fails_to_start(service, tmp_path):
    unit, mnt = service
    unit.env["OPTIONS"] += ",umask=99x"
    with uf.subreaper():
        try:
            with pytest.raises(uf.UnitError, match="umask"):
                unit.start(main_hint=str(mnt))
            assert not mu.is_mounted(mnt) and uf.children_with_arg(str(mnt)) == []
        finally:
            unit.kill()


# --- Debian package ------------------------------------------------------------------------------

def test_debian_package(tmp_path, daemons, rgw_server, bucket, s3, aws_env):
    need("dpkg-buildpackage", "dh", "fakeroot", "lintian", "dpkg-deb",
         pkgs="dpkg-dev debhelper fakeroot lintian")
    out = tmp_path / "deb"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ASAN_", "UBSAN_", "LSAN_", "S3VFS_", "MESON"))
           and k not in ("CC", "CFLAGS", "LDFLAGS", "CPPFLAGS", "DEB_BUILD_OPTIONS")}
    t0 = time.monotonic()
    r = run(["bash", PKG / "build-deb.sh", out], env=env, timeout=600)
    took = time.monotonic() - t0
    assert r.returncode == 0, f"build-deb.sh failed:\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}"
    debs = [p for p in out.glob("s3vfs_*.deb")]
    assert len(debs) == 1, list(out.iterdir())
    deb = debs[0]
    v = meson_version()
    assert deb.name.startswith(f"s3vfs_{v}-"), deb.name
    print(f"built {deb.name} in {took:.0f}s")

    # contents
    listing = run(["dpkg-deb", "-c", deb], check=True).stdout
    paths = {ln.split()[-1] for ln in listing.splitlines()}
    for want in ("./usr/bin/s3vfs", "./usr/bin/s3vfs-ctl", "./usr/sbin/mount.s3vfs",
                 "./usr/lib/systemd/system/s3vfs@.service",
                 "./usr/share/man/man1/s3vfs.1.gz", "./usr/share/man/man1/s3vfs-ctl.1.gz",
                 "./usr/share/man/man8/mount.s3vfs.8.gz",
                 "./usr/share/doc/s3vfs/examples/srv-data.mount",
                 "./usr/share/doc/s3vfs/copyright"):
        assert want in paths, f"{want} not in the package:\n{listing}"
    info = run(["dpkg-deb", "-f", deb, "Depends"], check=True).stdout
    assert "fuse3" in info and "libfuse3" in info, info

    # lintian: no error
    changes = next(out.glob("s3vfs_*.changes"))
    r = run(["lintian", "--no-tag-display-limit", changes], timeout=300)
    errors = [ln for ln in r.stdout.splitlines() if ln.startswith("E:")]
    assert not errors, f"lintian errors:\n{r.stdout}\n{r.stderr}"
    print(f"lintian:\n{r.stdout}")

    # installed into a directory: the binary, the helper, the unit, the man page
    root = tmp_path / "root"
    run(["dpkg", "-x", deb, root], check=True)
    r = run([root / "usr/bin/s3vfs", "--version"], check=True)
    assert r.stdout.startswith(f"s3vfs {v} "), r.stdout
    r = run([root / "usr/bin/s3vfs-ctl", "--version"], check=True)
    assert v in r.stdout
    unit = (root / "usr/lib/systemd/system/s3vfs@.service").read_text()
    assert "ExecStart=/usr/bin/s3vfs ${BUCKET} ${MOUNTPOINT}" in unit
    r = run(["man", "-l", root / "usr/share/man/man1/s3vfs.1.gz"],
            env={**os.environ, "MANWIDTH": "80"}, check=True)
    assert "s3vfs" in r.stdout and r.stderr == ""
    # the packaged helper finds the packaged binary (../bin) and mounts
    mnt = tmp_path / "m"
    mnt.mkdir()
    r = run([root / "usr/sbin/mount.s3vfs", bucket, mnt, "-v", "-o",
             "_netdev," + mount_opts(rgw_server, tmp_path / "c")], env=aws_env())
    assert r.returncode == 0, r.stderr
    assert f"{root}/usr/sbin/../bin/s3vfs {bucket} {mnt}" in r.stderr, r.stderr
    daemons.adopt(mnt)
    (mnt / "deb.txt").write_bytes(b"from the package")
    assert s3.get_object(Bucket=bucket, Key="deb.txt")["Body"].read() == b"from the package"
    daemons.unmount(mnt, (mu.FUSERMOUNT, "-u"))
