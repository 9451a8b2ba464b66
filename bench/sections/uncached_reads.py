"""Rows 2 and 11 (read, contains_key): reads and HEADs through a store whose cache holds
nothing (`cache_size_limit=0`), against boto3, obstore and minio on the same objects."""

from __future__ import annotations

import os

import obstore

from bench.harness import Bench, minio_get
from bench.measure import KiB, Row, per_call, transport_rows
from bench.server import BUCKET
from objectstore_s3 import ObjectStore


def run(b: Bench) -> list[Row]:
    """read_bytes of 1 KiB and 64 KiB, then contains_key, each on both transports."""
    writer = {
        "boto3": b.store("read-boto3"),
        "obstore": b.store("read-obstore", transport="obstore"),
    }
    reader = {
        "boto3": b.store("read-boto3", cache_size_limit=0, cache_dir=b.folder / "caches/r-b"),
        "obstore": b.store(
            "read-obstore",
            transport="obstore",
            cache_size_limit=0,
            cache_dir=b.folder / "caches/r-o",
        ),
    }
    rows: list[Row] = []
    for size in (1 * KiB, 64 * KiB):
        rows += read_rows(b, writer, reader, size)
    rows += contains_rows(b, reader)
    return rows


def read_rows(
    b: Bench, writer: dict[str, ObjectStore], reader: dict[str, ObjectStore], size: int
) -> list[Row]:
    obs, mn = b.obs, b.minio
    payload = os.urandom(size)
    key = f"value-{size}"
    for store in writer.values():
        store.save(key, payload)
    b.boto.put_object(Bucket=BUCKET, Key=f"raw/{key}", Body=payload)
    raw = f"raw/{key}"
    t = per_call(
        {
            "store boto3": lambda: reader["boto3"].read_bytes(key),
            "store obstore": lambda: reader["obstore"].read_bytes(key),
            "boto3": lambda: b.boto.get_object(Bucket=BUCKET, Key=raw)["Body"].read(),
            "obstore": lambda: obstore.get(obs, raw).bytes(),
            "minio": lambda: minio_get(mn, raw),
        },
        b.scale,
    )
    what = f"uncached read, {size // KiB} KiB"
    return transport_rows("2", what, t, ("boto3 get_object", "obstore get"), (1.10, 1.2))


def contains_rows(b: Bench, reader: dict[str, ObjectStore]) -> list[Row]:
    obs, mn = b.obs, b.minio
    key, raw = "value-1024", "raw/value-1024"
    t = per_call(
        {
            "store boto3": lambda: reader["boto3"].contains_key(key),
            "store obstore": lambda: reader["obstore"].contains_key(key),
            "boto3": lambda: b.boto.head_object(Bucket=BUCKET, Key=raw),
            "obstore": lambda: obstore.head(obs, raw),
            "minio": lambda: mn.stat_object(BUCKET, raw),
        },
        b.scale,
    )
    baselines = ("boto3 head_object", "obstore head")
    return transport_rows("2", "contains_key, uncached", t, baselines, (1.05, 1.2))
