# SPDX-License-Identifier: MIT
"""Running a systemd service unit by hand, the way systemd would, for tests on machines where
systemd is not PID 1.

    unit = ServiceUnit.load(path, instance="www", etc_dir=tmp)   # /etc/s3vfs -> tmp
    with subreaper():
        unit.start()        # ExecStartPre..., ExecStart; Type=forking: the parent must exit 0
        unit.main_pid       # the process left behind (systemd's GuessMainPID)
        unit.stop()         # ExecStop..., then KillSignal to a main process still running,
                            # then wait up to TimeoutStopSec: returns its wait status

What is modelled (only what s3vfs's units use, and anything else is refused rather than run
wrongly): [Service] Type= simple|exec|forking, EnvironmentFile= (with "-"), Environment=,
ExecStartPre=/ExecStart=/ExecStop= with the "-" prefix, command lookup in systemd's fixed
PATH, the specifiers %i %I %n %%, systemd's expansion of ${VAR} (one word, even when empty)
and $VAR (split on whitespace), KillSignal=, TimeoutStartSec=, TimeoutStopSec= (seconds).
The environment of the commands is systemd's: PATH and LANG, then the unit's variables.

A forking daemon outlives its parent and is reparented to the nearest "child subreaper": the
subreaper() context manager makes this process one (prctl PR_SET_CHILD_SUBREAPER), as systemd
is, so that the daemon's exit status can be collected with waitpid().
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PR_SET_CHILD_SUBREAPER = 36
_prctl = ctypes.CDLL(None, use_errno=True).prctl


class UnitError(AssertionError):
    """The unit did what systemd would call a failure (or uses something not modelled)."""


@contextlib.contextmanager
def subreaper():
    """Make this process the reaper of orphaned descendants for the duration."""
    if _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        yield
    finally:
        _prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values in order]}}; continuation lines (a trailing backslash) joined,
    comments (# ;) dropped. An empty assignment resets the list, as in systemd."""
    sections: dict[str, dict[str, list[str]]] = {}
    cur = None
    lines = iter(text.splitlines())
    for raw in lines:
        line = raw.strip()
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines, "").strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[(.+)\]", line)
        if m:
            cur = sections.setdefault(m.group(1), {})
            continue
        if cur is None or "=" not in line:
            raise UnitError(f"not a unit file line: {raw!r}")
        k, v = (s.strip() for s in line.split("=", 1))
        if v == "":
            cur[k] = []
        else:
            cur.setdefault(k, []).append(v)
    return sections


def parse_env_file(text: str) -> dict[str, str]:
    """systemd's EnvironmentFile: NAME=value lines, # and ; comments, optional quotes."""
    env = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if "=" not in line:
            raise UnitError(f"not an environment file line: {raw!r}")
        k, v = line.split("=", 1)
        k, v = k.strip(), v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        env[k] = v
    return env


def expand_command(line: str, env: dict[str, str]) -> list[str]:
    """systemd's rules for one Exec line (after specifiers): words split as a shell would
    (quotes respected); a word that is exactly ${VAR} becomes one argument (even empty); a
    word that is exactly $VAR splits on whitespace; ${VAR} inside a word is substituted."""
    argv: list[str] = []
    for word in shlex.split(line):
        m = re.fullmatch(r"\$\{(\w+)\}", word)
        if m:
            argv.append(env.get(m.group(1), ""))
            continue
        m = re.fullmatch(r"\$(\w+)", word)
        if m:
            argv.extend(env.get(m.group(1), "").split())
            continue
        argv.append(re.sub(r"\$\{(\w+)\}", lambda mm: env.get(mm.group(1), ""), word))
    return argv


def _seconds(v: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min)?", v.strip())
    if not m:
        raise UnitError(f"time span not modelled: {v!r}")
    return float(m.group(1)) * (60 if m.group(2) == "min" else 1)


def children_with_arg(arg: str) -> list[int]:
    """Our children (ppid == us) that have arg as one of their arguments."""
    me = os.getpid()
    want = os.fsencode(arg)
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if ppid == me and want in argv[1:]:
            found.append(int(d.name))
    return found


def wait_pid(pid: int, timeout: float) -> int | None:
    """waitpid(pid) with a bound: the wait status, or None if still running."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            raise UnitError(f"pid {pid} is not our child (is this process its subreaper?)")
        if got == pid:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def status_text(status: int) -> str:
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"wait status {status:#x}"


@dataclass
class ServiceUnit:
    name: str
    sections: dict
    env: dict[str, str]
    main_pid: int | None = None
    log: list[str] = field(default_factory=list)

    MODELLED = {"Type", "EnvironmentFile", "Environment", "ExecStartPre", "ExecStart",
                "ExecStop", "KillSignal", "TimeoutStartSec", "TimeoutStopSec", "Restart",
                "RestartSec"}

    @classmethod
    def load(cls, path: Path, instance: str, etc_dir: Path | None = None,
             text: str | None = None) -> "ServiceUnit":
        """The unit at path (or its text) as instance `instance`; EnvironmentFile paths under
        /etc/s3vfs/ are read from etc_dir instead."""
        text = path.read_text() if text is None else text
        base = path.name
        name = base.replace("@.", f"@{instance}.", 1) if "@." in base else base
        spec = {"%i": instance, "%I": instance.replace("-", "/"), "%n": name, "%%": "%"}

        def specifiers(v: str) -> str:
            def one(m):
                if m.group(0) not in spec:
                    raise UnitError(f"specifier {m.group(0)} not modelled")
                return spec[m.group(0)]
            return re.sub(r"%.", one, v)

        sections = parse_unit(text)
        svc = sections.get("Service", {})
        extra = set(svc) - cls.MODELLED
        if extra:
            raise UnitError(f"[Service] keys not modelled: {sorted(extra)}")
        for k in svc:
            svc[k] = [specifiers(v) for v in svc[k]]
        env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8"}
        for v in svc.get("Environment", []):
            for word in shlex.split(v):
                k, _, val = word.partition("=")
                env[k] = val
        for v in svc.get("EnvironmentFile", []):
            optional = v.startswith("-")
            p = v.lstrip("-")
            if etc_dir is not None and p.startswith("/etc/s3vfs/"):
                p = str(etc_dir / p[len("/etc/s3vfs/"):])
            try:
                env.update(parse_env_file(Path(p).read_text()))
            except FileNotFoundError:
                if not optional:
                    raise UnitError(f"EnvironmentFile {p} is missing (start fails)")
        return cls(name, sections, env)

    def _one(self, key: str, default: str) -> str:
        vals = self.sections.get("Service", {}).get(key, [])
        return vals[-1] if vals else default

    @property
    def type(self) -> str:
        return self._one("Type", "simple")

    def _exec(self, key: str, timeout: float) -> list[subprocess.CompletedProcess]:
        done = []
        for line in self.sections.get("Service", {}).get(key, []):
            ignore = line.startswith("-")
            line = line.lstrip("-")
            if line[:1] in "@+!:":
                raise UnitError(f"{key} prefix {line[0]!r} not modelled")
            argv = expand_command(line, self.env)
            if not argv[0].startswith("/"):
                found = [f"{d}/{argv[0]}" for d in SYSTEMD_PATH.split(":")
                         if os.access(f"{d}/{argv[0]}", os.X_OK)]
                if not found:
                    raise UnitError(f"{key}: {argv[0]} is not in systemd's PATH")
                argv[0] = found[0]
            r = subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=timeout)
            self.log.append(f"{key}: {shlex.join(argv)} -> {r.returncode}\n{r.stdout}{r.stderr}")
            if r.returncode != 0 and not ignore:
                raise UnitError(f"{self.name}: {key} {shlex.join(argv)} failed with "
                                f"{r.returncode}: {r.stderr.strip()}")
            done.append(r)
        return done

    def start(self, main_hint: str) -> int:
        """ExecStartPre, ExecStart; returns the main PID. main_hint: one argument of the main
        process (Type=forking: how to find the daemon among our children)."""
        timeout = _seconds(self._one("TimeoutStartSec", "90"))
        self._exec("ExecStartPre", timeout)
        if self.type != "forking":
            raise UnitError(f"Type={self.type} not modelled by start() (only forking)")
        self._exec("ExecStart", timeout)
        pids = children_with_arg(main_hint)
        if len(pids) != 1:
            raise UnitError(f"{self.name}: want exactly one process left after ExecStart "
                            f"(systemd guesses the main PID), found {pids}")
        self.main_pid = pids[0]
        return self.main_pid

    def stop(self, kill: bool = True) -> int:
        """ExecStop, then KillSignal if the main process still runs, then the wait for it
        (TimeoutStopSec, then SIGKILL as systemd's FinalKillSignal). The wait status.
        kill=False sends no KillSignal: the main process must exit after ExecStop alone
        (stricter than systemd, which sends KillSignal at once to what remains)."""
        assert self.main_pid is not None, "not started"
        timeout = _seconds(self._one("TimeoutStopSec", "90"))
        deadline = time.monotonic() + timeout
        self._exec("ExecStop", timeout)
        status = wait_pid(self.main_pid, 0 if kill else timeout)
        if status is None and kill:
            sig = signal.Signals[self._one("KillSignal", "SIGTERM")]
            os.kill(self.main_pid, sig)
            status = wait_pid(self.main_pid, max(0.0, deadline - time.monotonic()))
        if status is None:
            os.kill(self.main_pid, signal.SIGKILL)
            status = wait_pid(self.main_pid, 10)
            self.main_pid = None
            raise UnitError(f"{self.name}: still running {timeout:.0f}s after the stop began "
                            f"(TimeoutStopSec): killed")
        self.main_pid = None
        return status

    def kill(self) -> None:
        """The failure path: SIGKILL to the main process, reaped; never raises."""
        if self.main_pid is None:
            return
        with contextlib.suppress(OSError):
            os.kill(self.main_pid, signal.SIGKILL)
        with contextlib.suppress(UnitError, OSError):
            wait_pid(self.main_pid, 10)
        self.main_pid = None
