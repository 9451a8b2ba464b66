"""A small reference model of the Object Store (see organization.py): the bucket and the
organization's rules in `Model`, each node's own state in node.py; the environments the
model test runs the real store on in envs.py."""

from tests.support.model.node import (
    Clash,
    Conflict,
    FolderRefused,
    LocalFile,
    Missing,
    Node,
    Pending,
)
from tests.support.model.organization import Model, Obj

__all__ = [
    "Clash",
    "Conflict",
    "FolderRefused",
    "LocalFile",
    "Missing",
    "Model",
    "Node",
    "Obj",
    "Pending",
]
