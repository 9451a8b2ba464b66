"""The `rig` fixture of the fault matrix (tests/support/fault_rig.py), parametrized
indirectly by each test_fault_matrix_*.py case; the raw boto3 fixtures of the proxy's own
tests (tests/support/proxied_s3.py)."""

from tests.support.fault_rig import rig as rig
from tests.support.proxied_s3 import bucket as bucket
from tests.support.proxied_s3 import client as client
from tests.support.proxied_s3 import direct as direct
from tests.support.proxied_s3 import key as key
