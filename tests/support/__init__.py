"""Support code for the tests (not tests): helpers, the fault proxy, the presence judge,
the reference model, subprocess workers and the rclone server."""
