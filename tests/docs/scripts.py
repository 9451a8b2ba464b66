"""Running a README example as its own script, on a store configured from the
environment (OBJECTSTORE_*) with the given settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from objectstore_s3 import ObjectStoreSettings


def run_example(
    code: str, settings: ObjectStoreSettings, folder: Path, name: str = "example.py"
) -> str:
    """Run `code` as the script `name` in `folder`; its standard output (it must exit 0)."""
    script = folder / name
    script.write_text(code)
    secret = settings.secret_access_key
    env = {
        **os.environ,
        "OBJECTSTORE_ENDPOINT_URL": settings.endpoint_url,
        "OBJECTSTORE_BUCKET": settings.bucket,
        "OBJECTSTORE_ACCESS_KEY_ID": settings.access_key_id or "",
        "OBJECTSTORE_SECRET_ACCESS_KEY": secret.get_secret_value() if secret else "",
        "OBJECTSTORE_ORGANIZATION_ID": settings.organization_id,
        "OBJECTSTORE_CACHE_DIR": str(settings.cache_dir),
        "OBJECTSTORE_LOCAL_ROOT": str(settings.local_root),
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
