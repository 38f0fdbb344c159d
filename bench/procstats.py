"""What the benchmarks read about processes and sockets from ``/proc`` (Linux).

Process trees and groups (``/proc/PID/stat``), resident memory (``VmRSS``), CPU time in
jiffies (a process's and the whole machine's, and the share other programs used: see
:class:`OtherCpu`), open descriptors, and TCP: established connections and the accept
queue of a port (``/proc/net/tcp``), the connections each process holds, and the kernel's
``ListenOverflows`` counter.  Used by bench/run.py, bench/native.py and bench/soak.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable


def proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, pgid, starttime) of ``pid`` from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return int(fields[1]), int(fields[2]), int(fields[19])


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def process_tree(root: int) -> dict[int, int]:
    """{pid: starttime} of ``root`` and all its descendants."""
    parents: dict[int, list[tuple[int, int]]] = {}
    root_start = None
    for pid in all_pids():
        st = proc_stat(pid)
        if st is None:
            continue
        if pid == root:
            root_start = st[2]
        parents.setdefault(st[0], []).append((pid, st[2]))
    if root_start is None:
        return {}
    tree = {root: root_start}
    todo = [root]
    while todo:
        for child, start in parents.get(todo.pop(), []):
            if child not in tree:
                tree[child] = start
                todo.append(child)
    return tree


def group_alive(pgid: int) -> bool:
    """Whether any process of process group ``pgid`` is left."""
    for pid in all_pids():
        st = proc_stat(pid)
        if st is not None and st[1] == pgid:
            return True
    return False


def listen_overflows() -> int:
    """The kernel's TcpExt ListenOverflows counter (system-wide): SYNs dropped because an
    accept queue was full."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(table.get("ListenOverflows", 0))
    return 0


def processes_named(name: str, exclude: Iterable[int] = ()) -> list[int]:
    """Pids of the processes whose command name (``/proc/PID/comm``) is ``name``, but for
    those in ``exclude``."""
    skip = set(exclude)
    found = []
    for pid in all_pids():
        if pid in skip:
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == name:
                    found.append(pid)
        except OSError:
            pass
    return found


CLK_TCK = os.sysconf("SC_CLK_TCK")


def busy_jiffies() -> int:
    """user + nice + system time of all CPUs (/proc/stat; irq and softirq left out)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[1]) + int(fields[2]) + int(fields[3])


def cpu_jiffies(pids) -> dict[int, tuple[int, int]]:
    """{pid: (starttime, utime + stime)}."""
    found = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2:].split()
        found[pid] = (int(fields[19]), int(fields[11]) + int(fields[12]))
    return found


def kernel_threads() -> list[int]:
    """kthreadd (pid 2) and its children: the kernel's threads."""
    return [pid for pid in all_pids() if pid == 2 or ((st := proc_stat(pid)) and st[0] == 2)]


class OtherCpu:
    """CPU time that neither this script, the server's process tree, wrk nor the kernel's
    threads used between start() and stop(): some other program's load, which disturbs the
    numbers. System-wide busy time minus ours, so short-lived processes count too."""

    def start(self, server_tree) -> None:
        self.server0 = cpu_jiffies(server_tree)
        self.kthreads0 = cpu_jiffies(kernel_threads())
        self.self0 = os.times()
        self.busy0 = busy_jiffies()
        self.t0 = time.monotonic()

    def stop(self, server_tree) -> float:
        """Average CPUs used by others (1.0 = one core busy all the time)."""
        busy = busy_jiffies() - self.busy0
        elapsed = time.monotonic() - self.t0
        t = os.times()
        ours = (t.user + t.system + t.children_user + t.children_system  # we and wrk
                - self.self0.user - self.self0.system - self.self0.children_user
                - self.self0.children_system) * CLK_TCK
        for before, after in ((self.server0, cpu_jiffies(server_tree)),
                              (self.kthreads0, cpu_jiffies(kernel_threads()))):
            for pid, (start, used) in after.items():
                old = before.get(pid)
                ours += used - old[1] if old and old[0] == start else used
        return max(0.0, (busy - ours) / CLK_TCK / elapsed) if elapsed > 0 else 0.0


def rss_kib(pids: Iterable[int]) -> int:
    """The resident memory (VmRSS) of ``pids`` together, in KiB; a process that is gone
    counts 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def tcp_connections(port: int) -> tuple[int, int]:
    """(established connections to ``port``, length of its listen socket's accept queue)."""
    established = queued = 0
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                local, state = parts[1], parts[3]
                if int(local.rsplit(":", 1)[1], 16) != port:
                    continue
                if state == "01":
                    established += 1
                elif state == "0A":  # LISTEN: rx_queue is the accept-queue length
                    queued = int(parts[4].split(":")[1], 16)
    except OSError:
        pass
    return established, queued


def connections_per_process(pids, port: int) -> dict[int, int]:
    """{pid: established connections to ``port`` whose socket that process holds open}."""
    inodes = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    except OSError:
        return {}
    counts = {}
    for pid in pids:
        n = 0
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                n += 1
        counts[pid] = n
    return counts


def children(pid: int) -> list[int]:
    """The children of ``pid`` (of its main thread, which forks them all in the servers
    here)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def fd_count(pid: int) -> int:
    """How many file descriptors ``pid`` has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))
