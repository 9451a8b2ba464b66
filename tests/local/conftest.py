"""The `settings` and `stores` fixtures: stores on the session's SeaweedFS server
(tests/support/seaweed_stores.py)."""

from tests.support.seaweed_stores import settings as settings
from tests.support.seaweed_stores import stores as stores
