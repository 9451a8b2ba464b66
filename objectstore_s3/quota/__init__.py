"""The quota layer: an organization's usage limits, exact across processes and machines.

What the layers above use: `Quota` (one store's spending, within the limits, through its
lease in the bucket's ledger) and `Spend` (what a write reports inside a transaction).
The ledger's key, `LEDGER`, and its pure accounting (`Ledger`, `grant_headroom`) are
exported for tests and tools that read the ledger, with its documented bounds
(`MAX_GRACE_SECONDS`, `RECOUNT_SECONDS`). The modules, from the bottom: spend.py
(what a write reports; refusals), account.py (a store's lease and unsettled changes),
ledger.py (the ledger document and its rules), bookkeeper.py (its conditional updates),
transaction.py (`Quota`). See docs/quotas.md.
"""

from .account import MAX_GRACE_SECONDS
from .bookkeeper import LEDGER
from .ledger import RECOUNT_SECONDS, Ledger, LedgerDamagedError, grant_headroom
from .spend import Spend, Usage
from .transaction import Quota

__all__ = [
    "LEDGER",
    "MAX_GRACE_SECONDS",
    "RECOUNT_SECONDS",
    "Ledger",
    "LedgerDamagedError",
    "Quota",
    "Spend",
    "Usage",
    "grant_headroom",
]
