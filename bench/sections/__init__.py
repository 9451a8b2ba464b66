"""One module per thing the benchmark measures; each has `run(bench) -> rows`.

Nothing is imported here: the worker processes run a section module with `-m`.
"""
