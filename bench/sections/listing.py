"""Rows 3 and 11 (keys): a listing of the organization's keys, against the boto3
list_objects_v2 paginator, obstore list and minio list_objects."""

from __future__ import annotations

import obstore

from bench.harness import Bench
from bench.measure import Row, per_call, transport_rows
from bench.server import BUCKET


def run(b: Bench) -> list[Row]:
    obs, mn = b.obs, b.minio
    count = b.scale.listed
    b.put_raw([f"listed/k{index:05d}" for index in range(count)], b"x" * 100)
    stores = {
        "boto3": b.store("listed"),
        "obstore": b.store("listed", transport="obstore", cache_dir=b.folder / "caches/listed-o"),
    }
    assert len(stores["boto3"].keys) == count

    def boto3_list() -> list[str]:
        paginator = b.boto.get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=BUCKET, Prefix="listed/")
            for item in page.get("Contents", [])
        ]

    t = per_call(
        {
            "store boto3": lambda: stores["boto3"].keys,
            "store obstore": lambda: stores["obstore"].keys,
            "boto3": boto3_list,
            "obstore": lambda: obstore.list(obs, "listed/").collect(),
            "minio": lambda: list(mn.list_objects(BUCKET, prefix="listed/", recursive=True)),
        },
        b.scale,
        per_round=max(b.scale.per_round // 20, 2),
    )
    baselines = ("boto3 list_objects_v2 paginator", "obstore list")
    return transport_rows("3", f"keys of {count:,}", t, baselines, (1.10, 1.5))
