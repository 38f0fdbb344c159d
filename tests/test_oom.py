"""The log line for a worker killed by SIGKILL names the OOM killer only on evidence."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest
from support import ServerProcess

from wsgiloop.workers.oom import OOMWitness, _memory_cgroup_files


def write_counter(path: Path, kills: int, v2: bool) -> None:
    if v2:
        path.write_text(f"low 0\nhigh 0\nmax 3\noom {kills}\noom_kill {kills}\n")
    else:
        path.write_text(f"oom_kill_disable 0\nunder_oom 0\noom_kill {kills}\n")


@pytest.mark.parametrize("v2", [True, False], ids=["cgroup2", "cgroup1"])
def test_a_rising_counter_names_the_oom_killer_once_per_kill(tmp_path: Path, v2: bool):
    counter = tmp_path / ("memory.events" if v2 else "memory.oom_control")
    write_counter(counter, 4, v2)
    witness = OOMWitness([str(counter)])
    write_counter(counter, 6, v2)  # two workers killed before the master looked
    first = witness.explain(101)
    assert first == f"sent by the kernel's out-of-memory killer ({counter}: oom_kill 4 -> 6)"
    assert witness.explain(102) == "sent by the kernel's out-of-memory killer (counted earlier)"
    # A third SIGKILL with the counter unchanged is not blamed on the OOM killer.
    assert "out-of-memory killer (" not in witness.explain(103)


def test_an_unchanged_counter_says_no_oom_kill_is_recorded(tmp_path: Path):
    counter = tmp_path / "memory.events"
    write_counter(counter, 0, True)
    witness = OOMWitness([str(counter)])
    message = witness.explain(2 ** 22 + 7)  # a pid no kernel log line names
    assert message == "not sent by wsgiloop; no out-of-memory kill is recorded"


def test_cgroup_files_of_the_process_and_its_ancestors(tmp_path: Path):
    proc = tmp_path / "cgroup"
    proc.write_text("4:memory:/a/b\n0::/x\n")
    for path in ("memory/a/b", "memory/a", "memory", "x", "unified"):
        (tmp_path / path).mkdir(parents=True, exist_ok=True)
    for path in ("memory/a/b/memory.oom_control", "memory/a/memory.oom_control",
                 "x/memory.events"):
        (tmp_path / path).write_text("oom_kill 0\n")
    assert _memory_cgroup_files(str(proc), str(tmp_path)) == [
        f"{tmp_path}/memory/a/b/memory.oom_control", f"{tmp_path}/memory/a/memory.oom_control",
        f"{tmp_path}/x/memory.events"]


def _child_memory_cgroup(limit: int) -> Path | None:
    """A cgroup v1 memory cgroup under ours with a hard limit (swap included), or None
    where this machine does not let us make one."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            break
    else:
        return None
    cgroup = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / f"wsgiloop-oom-{os.getpid()}"
    try:
        cgroup.mkdir()
        (cgroup / "memory.limit_in_bytes").write_text(str(limit))
        swap = cgroup / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(str(limit))
    except OSError:
        if cgroup.exists():
            cgroup.rmdir()
        return None
    return cgroup


def test_a_real_oom_kill_is_named_as_such():
    """A worker that outgrows its memory cgroup is killed by the kernel, and the master's
    log line says so with the counter that rose."""
    cgroup = _child_memory_cgroup(200 << 20)
    if cgroup is None:
        pytest.skip("cannot make a memory cgroup (cgroup v1 memory controller, writable) here")
    procs = str(cgroup / "cgroup.procs")

    def join_cgroup() -> None:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    try:
        with ServerProcess("oom_app:app", preexec_fn=join_cgroup) as server:
            victim = server.worker_pid
            try:
                urllib.request.urlopen(server.url + "/grow", timeout=30).read()
            except OSError:
                pass  # the connection dies with the worker
            server.wait_for_log(rf"worker \d+ \(pid {victim}\) was killed by SIGKILL, sent by "
                                r"the kernel's out-of-memory killer \(\S+memory.oom_control: "
                                r"oom_kill 0 -> 1\)")
            replacement = [p for p in server.worker_pids() if p != victim]
            assert urllib.request.urlopen(server.url + "/", timeout=10).read() == b"ok\n", (
                replacement, server.log)
    finally:
        cgroup.rmdir()
