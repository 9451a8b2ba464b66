"""Rows 8 and 11 (stat): `import objectstore_s3` in a fresh process, and whole
`objectstore-s3 stat KEY` processes against a python process doing one HEAD with boto3,
obstore or minio."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.harness import Bench
from bench.measure import KiB, Row, at_most, human, per_round, timed
from bench.server import BUCKET, process_env

IMPORT = (
    "import time; t = time.perf_counter(); import objectstore_s3; print(time.perf_counter() - t)"
)
BOTO3_HEAD = """
import os, boto3
from botocore.config import Config
c = boto3.client("s3", endpoint_url=os.environ["OBJECTSTORE_ENDPOINT_URL"],
    aws_access_key_id=os.environ["OBJECTSTORE_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["OBJECTSTORE_SECRET_ACCESS_KEY"], region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}))
print(c.head_object(Bucket="bench", Key=os.environ["KEY"])["ContentLength"])
"""
OBSTORE_HEAD = """
import os, obstore
from obstore.store import S3Store
s = S3Store("bench", endpoint=os.environ["OBJECTSTORE_ENDPOINT_URL"], region="us-east-1",
    access_key_id=os.environ["OBJECTSTORE_ACCESS_KEY_ID"],
    secret_access_key=os.environ["OBJECTSTORE_SECRET_ACCESS_KEY"],
    client_options={"allow_http": True})
print(obstore.head(s, os.environ["KEY"])["size"])
"""
MINIO_STAT = """
import os
from minio import Minio
m = Minio(os.environ["OBJECTSTORE_ENDPOINT_URL"].split("//")[1],
    access_key=os.environ["OBJECTSTORE_ACCESS_KEY_ID"],
    secret_key=os.environ["OBJECTSTORE_SECRET_ACCESS_KEY"], secure=False, region="us-east-1")
print(m.stat_object("bench", os.environ["KEY"]).size)
"""

Command = tuple[list[str], dict[str, str]]


def run(b: Bench) -> list[Row]:
    b.boto.put_object(Bucket=BUCKET, Key="procs/value", Body=b"x" * KiB)
    cwd = b.folder / "procs"
    cwd.mkdir(exist_ok=True)
    base = process_env(b.server, b.folder, KEY="procs/value")

    def launch(args: list[str], env: dict[str, str]) -> float:
        return timed(
            lambda: subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True)
        )

    commands = process_commands(b, base)
    for args, env in commands.values():
        launch(args, env)  # warm the page cache
    runs: dict[str, Callable[[int], float]] = {"import": lambda _: import_run(base, cwd)}
    for label, (args, env) in commands.items():
        runs[label] = lambda _, args=args, env=env: launch(args, env)
    t = per_round(runs, max(b.scale.processes, 5))
    return process_rows(t, import_profile(base, cwd))


def process_commands(b: Bench, base: dict[str, str]) -> dict[str, Command]:
    """The command and environment of each client's process, by label."""
    stat = [sys.executable, "-m", "objectstore_s3", "stat", "value"]
    caches = {
        "boto3": str(b.folder / "caches/procs-b"),
        "obstore": str(b.folder / "caches/procs-o"),
    }
    return {
        "store boto3": (stat, {**base, "OBJECTSTORE_CACHE_DIR": caches["boto3"]}),
        "store obstore": (
            stat,
            {
                **base,
                "OBJECTSTORE_CACHE_DIR": caches["obstore"],
                "OBJECTSTORE_TRANSPORT": "obstore",
            },
        ),
        "boto3": ([sys.executable, "-c", BOTO3_HEAD], base),
        "obstore": ([sys.executable, "-c", OBSTORE_HEAD], base),
        "minio": ([sys.executable, "-c", MINIO_STAT], base),
    }


def import_run(env: dict[str, str], cwd: Path) -> float:
    """Seconds of `import objectstore_s3` as the fresh process itself measures it."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORT],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip())


def process_rows(t: dict[str, float], importtime: str) -> list[Row]:
    return [
        Row(
            "8. `import objectstore_s3` (fresh process)",
            human(t["import"]),
            "(absolute)",
            "",
            "",
            "≤ 100 ms",
            "yes" if t["import"] <= 0.1 else "**no**",
            notes=importtime,
        ),
        at_most(
            "8. whole `objectstore-s3 stat KEY` process (boto3 transport)",
            t["store boto3"],
            "python: import boto3, client, head_object",
            t["boto3"],
            1.1,
            minio=t["minio"],
            notes="minio: a process doing stat_object",
        ),
        at_most(
            "11. whole `objectstore-s3 stat KEY` process (obstore transport)",
            t["store obstore"],
            "python: import obstore, S3Store, head",
            t["obstore"],
            3,
        ),
    ]


def import_profile(env: dict[str, str], cwd: Path) -> str:
    """The heaviest top-level imports of `import objectstore_s3` (python -X importtime)."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import objectstore_s3"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    ).stderr
    heavy: list[tuple[int, str]] = []
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2
            if depth <= 1:
                heavy.append((int(parts[1]), name.strip()))
    heavy.sort(reverse=True)
    return "heaviest: " + ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in heavy[1:4])
