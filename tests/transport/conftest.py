"""The `settings` and `scope` fixtures of the obstore tests (tests/support/obstore.py)."""

from tests.support.obstore import scope as scope
from tests.support.obstore import settings as settings
