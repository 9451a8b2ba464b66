"""The fault-injecting proxy (`proxy`: lifecycle and connections; `relay`: one request's
handling; `traffic`: rules and request log; `connection`), its HTTP framing
(`http_messages`) and its faults and rules (`rules`); the names tests and the benchmark
use, importable from here."""

from tests.support.faultproxy.proxy import (
    Fault,
    FaultKind,
    FaultProxy,
    ProxyStats,
    RequestRecord,
    Rule,
    fault_proxy,
)

__all__ = ["Fault", "FaultKind", "FaultProxy", "ProxyStats", "RequestRecord", "Rule", "fault_proxy"]
