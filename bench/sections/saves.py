"""Rows 1 and 11 (save): write-through saves, new keys and overwrites, 1 KiB and 64 KiB,
against boto3 put_object, obstore put and minio put_object."""

from __future__ import annotations

import io
import os

import obstore

from bench.harness import Bench, Requests, counted
from bench.measure import Action, KiB, Row, at_most, cpu_note, fresh_keys, per_call
from bench.server import BUCKET
from objectstore_s3 import ObjectStore


def run(b: Bench) -> list[Row]:
    """Both sizes, new keys then overwrites, each on both transports."""
    stores = {
        "boto3": b.store("save-boto3"),
        "obstore": b.store("save-obstore", transport="obstore"),
    }
    counters = {name: Requests(store) for name, store in stores.items()}
    rows: list[Row] = []
    for size in (1 * KiB, 64 * KiB):
        for kind in ("new key", "overwrite"):
            rows += save_rows(b, stores, counters, size, kind)
    return rows


def save_rows(
    b: Bench,
    stores: dict[str, ObjectStore],
    counters: dict[str, Requests],
    size: int,
    kind: str,
) -> list[Row]:
    obs, mn = b.obs, b.minio
    payload = os.urandom(size)
    tag = f"{size // KiB} KiB"
    names = {
        label: fresh_keys(f"{label}-{size}")
        for label in ("boto3", "obstore", "minio", "s-boto3", "s-obstore")
    }

    def key(label: str) -> str:
        return next(names[label]) if kind == "new key" else f"{label}-{size}-over"

    calls = {"boto3": [0], "obstore": [0]}
    before = {name: counter.total() for name, counter in counters.items()}
    actions: dict[str, Action] = {
        "store boto3": counted(
            lambda: stores["boto3"].save(key("s-boto3"), payload), calls["boto3"]
        ),
        "store obstore": counted(
            lambda: stores["obstore"].save(key("s-obstore"), payload), calls["obstore"]
        ),
        "boto3": lambda: b.boto.put_object(Bucket=BUCKET, Key=key("boto3"), Body=payload),
        "obstore": lambda: obstore.put(obs, key("obstore"), payload),
        "minio": lambda: mn.put_object(BUCKET, key("minio"), io.BytesIO(payload), size),
    }
    t = per_call(actions, b.scale)
    per_save = {
        name: (counters[name].total() - before[name]) / max(calls[name][0], 1) for name in counters
    }
    note = "If-None-Match: *" if kind == "new key" else "If-Match"
    return [
        at_most(
            f"1. save, {kind}, {tag} (boto3 transport)",
            t["store boto3"],
            "boto3 put_object",
            t["boto3"],
            1.15,
            minio=t["minio"],
            notes=f"{per_save['boto3']:.2f} requests/save; the PUT carries {note}; "
            + cpu_note(t, "store boto3", "boto3"),
        ),
        at_most(
            f"11. save, {kind}, {tag} (obstore transport)",
            t["store obstore"],
            "obstore put",
            t["obstore"],
            1.2,
            notes=f"{per_save['obstore']:.2f} requests/save; "
            + cpu_note(t, "store obstore", "obstore"),
        ),
    ]
