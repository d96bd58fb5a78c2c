"""kill -9 of the daemon during event-stream appends (issue 7, "Crashes"): after a remount,
every append whose close() returned 0 is on the chain exactly once, the chain is whole
(contiguous versions, each parent link right), and appending goes on from where it stopped."""

from __future__ import annotations

import os
import threading
import time

import chainutil as cu
from robustutil import kill9

CHAIN = "user.s3vfs.chain"


def test_kill9_during_chain_appends(s3vfs_mount, servers, bucket, ddb_table_name, s3, ddb):
    opts = {"dynamodb_endpoint": servers.ddb_endpoint, "chain_table": ddb_table_name,
            "chain_create_table": True, "stat_ttl": 1}
    m = s3vfs_mount(bucket, opts=opts, allow_log=(r" warn: ", r" error: chain "))
    d = m.path / "s"
    os.mkdir(d)
    os.setxattr(d, CHAIN, b"events")
    acked: list[str] = []
    stop = threading.Event()

    def writer(k: int) -> None:
        i = 0
        while not stop.is_set():
            name = f"w{k}-{i:04}.json"
            try:
                fd = os.open(d / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, f'{{"w":{k},"i":{i}}}\n'.encode())
                os.close(fd)
            except OSError:
                return  # the daemon is gone
            acked.append(name)
            i += 1

    threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(acked) >= 40, "the writers did not get going"
    kill9(m)
    stop.set()
    for t in threads:
        t.join(30)
    done = list(acked)

    # The chain as S3 and DynamoDB hold it: whole, and every acknowledged append once.
    state = cu.read_chain(s3, ddb, ddb_table_name, bucket, "s")
    names = [c.name for c in state.chain]
    assert [c.version for c in state.chain] == list(range(1, len(names) + 1))
    assert len(names) == len(set(names)), "an append committed twice"
    missing = sorted(set(done) - set(names))
    assert not missing, f"acknowledged appends lost in the crash: {missing[:10]}"
    assert len(names) - len(done) <= 3, "more committed than the writers were writing"

    # Remounted: the view is the chain, and the next append goes on at the next version.
    m.start()
    view = sorted(os.listdir(d))
    assert view == sorted(c.view_name for c in state.chain)
    fd = os.open(d / "after.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b'{"after":1}\n')
    os.close(fd)
    after = cu.read_chain(s3, ddb, ddb_table_name, bucket, "s")
    assert after.chain[-1].name == "after.json"
    assert after.chain[-1].version == len(state.chain) + 1
    assert (d / after.chain[-1].view_name).read_bytes() == b'{"after":1}\n'
