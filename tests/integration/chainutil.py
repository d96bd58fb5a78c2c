# SPDX-License-Identifier: MIT
"""Test-side view of s3vfs's event-stream directories ("events chains"), straight from S3 and
DynamoDB with boto3: reading a stream's chain the way a referee would, and building streams
without a mount (fast, for large or deliberately broken streams).

The storage layout (see the chain design):
  DIR/                      the directory marker, metadata s3vfs-chain: events
  DIR/.s3vfs/chain          body b"events\\n"
  DIR/.s3vfs/cs/<version:020>-<id:16 hex>-<parent id:16 hex>-<commit ms:13 digits>-<name>
                            one immutable changeset; metadata s3vfs-version, s3vfs-id,
                            s3vfs-parent, s3vfs-name; parent of version 1 is 16 zeros
  DynamoDB chain_table      the head: pk (S) "<bucket>/<DIR key with trailing slash>",
                            version (N), id (S), updated (N, epoch ms)
"""
from __future__ import annotations

import contextlib
import errno
import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

ZERO_ID = "0" * 16
CS_RE = re.compile(r"^(\d{20})-([0-9a-f]{16})-([0-9a-f]{16})-(\d{13})-(.+)$")
VIEW_RE = re.compile(r"^(\d{8,20})-(.+)$")


@dataclass(frozen=True)
class Changeset:
    key: str
    version: int
    id: str
    parent: str
    ms: int
    name: str

    @property
    def view_name(self) -> str:
        """The name under which a mount shows it."""
        return f"{self.version:08d}-{self.name}"


def cs_prefix(dir_key: str) -> str:
    return dir_key.strip("/") + "/.s3vfs/cs/"


def cs_key(dir_key: str, version: int, id_: str, parent: str, ms: int, name: str) -> str:
    return f"{cs_prefix(dir_key)}{version:020d}-{id_}-{parent}-{ms:013d}-{name}"


def parse_cs_key(key: str, dir_key: str) -> Changeset | None:
    """The changeset a key under DIR/.s3vfs/cs/ names; None if it is not one."""
    pre = cs_prefix(dir_key)
    if not key.startswith(pre):
        return None
    m = CS_RE.match(key[len(pre):])
    if not m:
        return None
    return Changeset(key, int(m.group(1)), m.group(2), m.group(3), int(m.group(4)), m.group(5))


def head_pk(bucket: str, dir_key: str) -> str:
    return f"{bucket}/{dir_key.strip('/')}/"


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


def ddb_head(ddb, table: str, bucket: str, dir_key: str) -> dict | None:
    """The head item as {"version": int, "id": str, "updated": int|None}, consistent read;
    None if there is no item."""
    r = ddb.get_item(TableName=table, Key={"pk": {"S": head_pk(bucket, dir_key)}},
                     ConsistentRead=True)
    item = r.get("Item")
    if item is None:
        return None
    return {"version": int(item["version"]["N"]), "id": item["id"]["S"],
            "updated": int(item["updated"]["N"]) if "updated" in item else None}


@dataclass
class ChainState:
    head: dict | None           # ddb_head()
    chain: list[Changeset]      # version 1 .. head version, each linked to the previous
    orphans: list[Changeset]    # changeset objects that are not on the chain
    junk: list[str]             # keys under cs/ that do not parse


def read_chain(s3, ddb, table: str, bucket: str, dir_key: str) -> ChainState:
    """The stream as S3 + DynamoDB hold it, verified: from the head back through the parent
    ids, every version one less than the one before, ending at version 1 whose parent is 16
    zeros. AssertionError naming the broken link otherwise."""
    head = ddb_head(ddb, table, bucket, dir_key)
    all_keys = list_keys(s3, bucket, cs_prefix(dir_key))
    parsed, junk = [], []
    for k in all_keys:
        c = parse_cs_key(k, dir_key)
        (parsed.append(c) if c else junk.append(k))
    by_id: dict[str, list[Changeset]] = {}
    for c in parsed:
        by_id.setdefault(c.id, []).append(c)
    chain: list[Changeset] = []
    if head is not None and head["version"] > 0:
        want_id, want_version = head["id"], head["version"]
        while want_version > 0:
            cands = [c for c in by_id.get(want_id, []) if c.version == want_version]
            assert len(cands) == 1, (
                f"{dir_key}: version {want_version} id {want_id} (on the chain from the head "
                f"{head}) has {len(cands)} changeset objects; objects with that id: "
                f"{by_id.get(want_id)}")
            c = cands[0]
            chain.append(c)
            want_id, want_version = c.parent, c.version - 1
        assert want_id == ZERO_ID, f"{dir_key}: version 1 has parent {want_id}, want {ZERO_ID}"
        chain.reverse()
    on = {c.key for c in chain}
    return ChainState(head, chain, [c for c in parsed if c.key not in on], junk)


# --- building streams without a mount -------------------------------------------------------

def new_id(rng: random.Random) -> str:
    while True:
        v = rng.getrandbits(64)
        if v:
            return f"{v:016x}"


def create_table(ddb, table: str) -> None:
    """The head table as s3vfs's chain_create_table makes it: key pk (S), on demand."""
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.get_waiter("table_exists").wait(TableName=table,
                                        WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def mark_stream(s3, bucket: str, dir_key: str, kind: str = "events") -> None:
    d = dir_key.strip("/")
    s3.put_object(Bucket=bucket, Key=d + "/", Body=b"", ContentType="application/x-directory",
                  Metadata={"s3vfs-chain": kind})
    s3.put_object(Bucket=bucket, Key=d + "/.s3vfs/chain", Body=kind.encode() + b"\n")


def put_head(ddb, table: str, bucket: str, dir_key: str, version: int, id_: str,
             updated_ms: int | None = None) -> None:
    ddb.put_item(TableName=table, Item={
        "pk": {"S": head_pk(bucket, dir_key)}, "version": {"N": str(version)},
        "id": {"S": id_},
        "updated": {"N": str(updated_ms if updated_ms is not None else int(time.time() * 1000))}})


def build_stream(s3, ddb, table: str | None, bucket: str, dir_key: str,
                 entries: list[tuple[str, bytes]], seed: int = 0, workers: int = 16,
                 start_version: int = 1, parent: str = ZERO_ID, mark: bool = True,
                 head: bool = True) -> list[Changeset]:
    """Write a stream the way s3vfs stores it: the marking (mark=True), one changeset object
    per (name, body) at versions start_version.. linked from parent, then the head item
    (head=True and table given). s3 must allow `workers` connections. Returns the changesets."""
    if mark:
        mark_stream(s3, bucket, dir_key)
    rng = random.Random(seed)
    base_ms = int(time.time() * 1000) - len(entries)
    out: list[Changeset] = []
    for i, (name, _) in enumerate(entries):
        v = start_version + i
        id_ = new_id(rng)
        ms = base_ms + i
        out.append(Changeset(cs_key(dir_key, v, id_, parent, ms, name), v, id_, parent, ms,
                             name))
        parent = id_

    def put(arg):
        c, data = arg
        s3.put_object(Bucket=bucket, Key=c.key, Body=data, Metadata={
            "s3vfs-version": str(c.version), "s3vfs-id": c.id, "s3vfs-parent": c.parent,
            "s3vfs-name": c.name})

    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(put, zip(out, (b for _, b in entries))))
    if head and table and out:
        put_head(ddb, table, bucket, dir_key, out[-1].version, out[-1].id, out[-1].ms)
    return out


# --- fixtures and checks the chain test files share ----------------------------------------------

@pytest.fixture(autouse=True)
def umask_022():
    """Imported by a test module: its tests run with umask 022 (modes the tests expect)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def chain_opts_fixture(ttl: float):
    """A `chain_opts` fixture: the mount options of a mount with chains (DynamoDB Local, the
    test's table, created by the mount, stat_ttl=ttl); keyword arguments override or add."""
    @pytest.fixture
    def chain_opts(servers, ddb_table_name):
        def make(**extra) -> dict:
            opts = {"dynamodb_endpoint": servers.ddb_endpoint, "chain_table": ddb_table_name,
                    "chain_create_table": True, "stat_ttl": ttl}
            opts.update(extra)
            return opts
        return make
    return chain_opts


@contextlib.contextmanager
def raises_errno(*codes: int):
    """The block must raise OSError with one of these errnos."""
    with pytest.raises(OSError) as ei:
        yield ei
    got = ei.value.errno
    assert got in codes, (f"want {' or '.join(errno.errorcode[c] for c in codes)}, got "
                          f"{errno.errorcode.get(got, got)}: {ei.value}")
