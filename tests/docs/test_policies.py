"""infra/policies/: the IAM policies grant what the store calls on a versioned bucket
(GetBucketVersioning before the first write, ListBucketVersions for history and recounts,
GetObjectVersion for version reads and restores, DeleteObjectVersion for retention and the
ledger's old versions), and no-delete never lets an organization's data be deleted for good.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

POLICIES = Path(__file__).resolve().parents[2] / "infra" / "policies"
BUCKET = "arn:aws:s3:::algo-store"
RECORDS = f"{BUCKET}/.objectstore/ORG_ID/*"


def grants(name: str) -> dict[str, set[str]]:
    """Action -> the resources a policy allows it on."""
    policy: dict[str, Any] = json.loads((POLICIES / name).read_text())
    found: dict[str, set[str]] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"]
        for action in statement["Action"]:
            found.setdefault(action, set()).update(
                [resources] if isinstance(resources, str) else resources
            )
    return found


@pytest.mark.parametrize("name", ["readonly.json", "no-delete.json", "readwrite.json"])
def test_every_policy_reads_versions(name: str) -> None:
    allowed = grants(name)
    assert allowed["s3:GetBucketVersioning"] == {BUCKET}
    assert allowed["s3:ListBucketVersions"] == allowed["s3:ListBucket"] == {BUCKET}
    assert allowed["s3:GetObjectVersion"] == allowed["s3:GetObject"]


def test_writers_delete_old_versions_where_they_may_delete() -> None:
    readwrite, no_delete = grants("readwrite.json"), grants("no-delete.json")
    assert readwrite["s3:DeleteObjectVersion"] == readwrite["s3:DeleteObject"]
    # no-delete: only the store's own records (the ledger's old versions, the probes)
    assert no_delete["s3:DeleteObjectVersion"] == no_delete["s3:DeleteObject"] == {RECORDS}
    assert "s3:DeleteObjectVersion" not in grants("readonly.json")
    assert "s3:PutBucketVersioning" not in readwrite  # the bucket's owner decides
