"""The quota layer: an organization's usage limits, exact across processes and machines.

What the layers above use: `Quota` (one store's spending, within the limits, through its
lease in the bucket's ledger) and `Spend` (what a write reports inside a transaction).
The ledger's key, `LEDGER`, and its pure accounting (`Ledger`, `grant_headroom`) are
exported for tests and tools that read the ledger, with its documented bounds
(`MAX_GRACE_SECONDS`, `RECOUNT_SECONDS`). On a versioned bucket, `Versioning` (the
bucket's state, as writes are counted) and `Retention` (pruning noncurrent versions). The
modules, from the bottom: spend.py (what a write reports; refusals), account.py (a store's
lease and unsettled changes), ledger.py (the ledger document and its rules), versions.py
(versioning, usage of every version), bookkeeper.py (its conditional updates),
transaction.py (`Quota`), retention.py (pruning). See docs/quotas.md.
"""

from .account import MAX_GRACE_SECONDS
from .bookkeeper import LEDGER
from .ledger import RECOUNT_SECONDS, Ledger, LedgerDamagedError, grant_headroom
from .nodeshelf import NodeShelf
from .retention import Retention
from .spend import Spend, Usage
from .transaction import Quota
from .versions import Versioning

__all__ = [
    "LEDGER",
    "MAX_GRACE_SECONDS",
    "RECOUNT_SECONDS",
    "Ledger",
    "LedgerDamagedError",
    "NodeShelf",
    "Quota",
    "Retention",
    "Spend",
    "Usage",
    "Versioning",
    "grant_headroom",
]
