"""A SeaweedFS cluster on loopback for the tests (issue 21): one `weed master`, three
`weed volume` servers (each with its own folder and ports, in one rack), one `weed filer`
and the S3 gateway (`weed s3`) in front of it, with credentials of its own.

The master's default replication is 001: every volume has a copy on another volume server
of the rack, and a write is acknowledged only once both copies hold it, so losing one
volume server loses no acknowledged write. Each process runs in a session of its own, is
started and stopped by PID (SIGTERM, then SIGKILL after a grace), and logs into the
cluster's data folder: its output in `<name>.log`, glog's files in `logs/<name>/` (one
folder each: glog keeps the last few files of a program name, which all six share).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from objectstore_s3.errors import StorageUnavailableError
from objectstore_s3.fs import private_directory
from objectstore_s3.server.processes import (
    free_ports,
    launch,
    s3_answers,
    stop_pid,
    write_weed_config,
)
from objectstore_s3.server.seaweedfs import STOP_GRACE_SECONDS, find_weed

__all__ = ["SeaweedCluster", "volume_servers_seen"]

LOOPBACK = "127.0.0.1"


def volume_servers_seen(master_url: str, timeout: float = 1.0) -> int:
    """How many volume servers the master lists as alive (0 if it does not answer)."""
    try:
        with urllib.request.urlopen(master_url + "/dir/status", timeout=timeout) as answer:  # noqa: S310
            topology = json.load(answer)["Topology"]
        return sum(
            len(rack.get("DataNodes") or [])
            for center in topology.get("DataCenters") or []
            for rack in center.get("Racks") or []
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0


def _answers(url: str) -> bool:
    """Any HTTP answer from `url` (a master, volume server or filer that is up)."""
    return s3_answers(url, timeout=0.5)


class SeaweedCluster:
    """Master, volume servers, filer and S3 gateway, each a process of this object."""

    def __init__(self, data_dir: Path, *, volume_servers: int = 3, replication: str = "001"):
        self.data_dir = Path(data_dir).absolute()
        self.volume_count = volume_servers
        self.replication = replication
        self.access_key_id = "cluster-" + secrets.token_hex(6)
        self.secret_access_key = secrets.token_urlsafe(24)
        # Two ports (HTTP, gRPC) each: master, volume servers, filer, S3 gateway.
        ports = free_ports(2 * (volume_servers + 3))
        self._ports = {
            name: (ports[2 * i], ports[2 * i + 1])
            for i, name in enumerate(["master", *self.volume_names, "filer", "s3"])
        }
        self.port = self._ports["s3"][0]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def __repr__(self) -> str:
        return f"SeaweedCluster(port={self.port}, data_dir={str(self.data_dir)!r})"

    @property
    def url(self) -> str:
        """The S3 gateway's endpoint."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def master_url(self) -> str:
        return f"http://{LOOPBACK}:{self._ports['master'][0]}"

    @property
    def volume_names(self) -> list[str]:
        return [f"volume{index}" for index in range(self.volume_count)]

    def _address(self, name: str) -> str:
        """`host:port.grpcPort`, how SeaweedFS names a server whose gRPC port is not +10000."""
        http, grpc = self._ports[name]
        return f"{LOOPBACK}:{http}.{grpc}"

    def _service_args(self, name: str) -> list[str]:
        http, grpc = self._ports[name]
        return [f"-ip.bind={LOOPBACK}", f"-port={http}", f"-port.grpc={grpc}"]

    def start(self, timeout: float = 90.0) -> None:
        """Start every process, each once the one it needs answers, and return once the S3
        gateway answers and the master sees every volume server (deadline: `timeout`)."""
        weed = find_weed()
        deadline = time.monotonic() + timeout
        for folder in ("master", "filer", *self.volume_names):
            private_directory(self.data_dir / folder, "cluster data folder")
        config = write_weed_config(self.data_dir, self.access_key_id, self.secret_access_key)
        master = self._address("master")
        try:
            self._launch("master", [weed, "master", f"-ip={LOOPBACK}",
                *self._service_args("master"), f"-mdir={self.data_dir / 'master'}",
                "-peers=none", f"-defaultReplication={self.replication}",
                "-volumeSizeLimitMB=256", "-telemetry=false"], deadline)  # fmt: skip
            for name in self.volume_names:
                self._launch(name, [weed, "volume", f"-ip={LOOPBACK}",
                    *self._service_args(name), f"-dir={self.data_dir / name}",
                    f"-master={master}", "-max=100", "-preStopSeconds=0"], deadline)  # fmt: skip
            self._launch("filer", [weed, "filer", f"-ip={LOOPBACK}",
                *self._service_args("filer"), f"-master={master}",
                f"-defaultStoreDir={self.data_dir / 'filer'}"], deadline)  # fmt: skip
            self._launch("s3", [weed, "s3", f"-ip={LOOPBACK}",
                *self._service_args("s3"), f"-filer={self._address('filer')}",
                f"-config={config}", "-port.iceberg=0", "-port.lance=0", "-iam=false",
                "-autoCreateBucket=false"], deadline)  # fmt: skip
            self.wait_for_volume_servers(self.volume_count, deadline - time.monotonic())
        except BaseException:
            self.stop()
            raise

    def _launch(self, name: str, argv: list[str], deadline: float) -> None:
        """Start `argv` (`weed COMMAND ...`) with its glog flags; wait until it answers."""
        url = f"http://{LOOPBACK}:{self._ports[name][0]}"
        logs = self.data_dir / "logs" / name
        private_directory(logs, "cluster log folder")
        glog = [f"-logdir={logs}", "-alsologtostderr=false", "-log_max_files=3"]
        self.processes[name] = launch(
            [argv[0], *glog, *argv[1:]],
            lambda: _answers(url),
            name=f"SeaweedFS {name} on {url}",
            timeout=max(deadline - time.monotonic(), 1.0),
            log_path=self.data_dir / f"{name}.log",
            cwd=self.data_dir,  # the master reads master.toml from here
            grace=STOP_GRACE_SECONDS,
        )

    def wait_for_volume_servers(self, count: int, timeout: float) -> None:
        """Poll the master until it lists exactly `count` volume servers."""
        deadline = time.monotonic() + timeout
        while (seen := volume_servers_seen(self.master_url)) != count:
            if time.monotonic() > deadline:
                raise StorageUnavailableError(
                    f"the master lists {seen} volume servers, not {count}, after "
                    f"{timeout:.0f}s; see {self.data_dir}"
                )
            time.sleep(0.1)

    def volume_pid(self, index: int) -> int:
        return self.processes[self.volume_names[index]].pid

    def writable_holders(self, bucket: str) -> list[int]:
        """The indexes of the volume servers holding a writable volume of `bucket` (its
        collection): where the bucket's next writes go."""
        with urllib.request.urlopen(self.master_url + "/dir/status", timeout=5) as answer:  # noqa: S310
            topology = json.load(answer)["Topology"]
        writable = {
            volume
            for layout in topology.get("Layouts") or []
            if layout.get("collection") == bucket
            for volume in layout.get("writables") or []
        }
        ports = {self._ports[name][0]: index for index, name in enumerate(self.volume_names)}
        return sorted(
            ports[int(node["Url"].rpartition(":")[2])]
            for center in topology["DataCenters"]
            for rack in center["Racks"]
            for node in rack["DataNodes"]
            if writable & {int(volume) for volume in node["VolumeIds"].split()}
        )

    def kill_volume_server(self, index: int) -> int:
        """SIGKILL volume server `index` by its PID (no goodbye to the master, as a crash);
        returns the PID once the process is gone."""
        process = self.processes.pop(self.volume_names[index])
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return process.pid

    def stop(self, timeout: float = STOP_GRACE_SECONDS) -> None:
        """Stop every process by PID, together: SIGTERM, SIGKILL after `timeout` seconds."""
        processes = list(self.processes.values())
        self.processes = {}
        if processes:
            with ThreadPoolExecutor(len(processes)) as pool:
                list(pool.map(lambda process: stop_pid(process.pid, timeout), processes))
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)

    def __enter__(self) -> SeaweedCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
