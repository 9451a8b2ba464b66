"""The project's benchmark, run from the repository root as `python -m bench [--quick]`.

`__main__` parses the flags and runs the sections in order; `server` starts SeaweedFS and
makes the raw clients and the worker processes' settings; `harness` is one run's setting
(the clients on that server, the stores it opened); `measure` times, keeps the rows and
their targets and prints the table; `sections/` holds one module per thing measured.
"""
