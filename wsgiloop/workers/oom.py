"""Was a worker that died of SIGKILL ended by the kernel's out-of-memory killer?

A SIGKILL the master did not send comes from another process or from the OOM killer;
the log line should say which only when there is evidence.  Two witnesses are asked:

* the memory cgroup of the master (and its workers): its ``oom_kill`` counter, in
  ``memory.events`` (cgroup v2) or ``memory.oom_control`` (cgroup v1), which the kernel
  raises for each process it kills there;
* the kernel log (``/dev/kmsg``, readable by root in most containers), whose OOM report
  names the pid.

:meth:`OOMWitness.explain` returns the clause for the log line.  Nothing here raises:
unreadable files only make the answer less certain ("possibly").
"""

from __future__ import annotations

import os
import re

_CGROUP_ROOT = "/sys/fs/cgroup"
_KMSG = "/dev/kmsg"
_KMSG_RECORDS = 20000  # enough for a full ring buffer; this runs only after a SIGKILL


def _memory_cgroup_files(proc_cgroup: str = "/proc/self/cgroup",
                         root: str = _CGROUP_ROOT) -> list[str]:
    """The files holding the ``oom_kill`` counters of this process's memory cgroup and of
    its ancestors (a limit may be set, and hit, further up)."""
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):
            here = os.path.join(*parts[:depth]) if depth else ""
            if controllers == "":  # cgroup v2 (pure, or the unified part of a hybrid)
                candidates += [os.path.join(root, here, "memory.events"),
                               os.path.join(root, "unified", here, "memory.events")]
            elif "memory" in controllers.split(","):
                candidates.append(os.path.join(root, "memory", here, "memory.oom_control"))
    return [path for path in candidates if os.path.isfile(path)]


def _oom_kills(path: str) -> int | None:
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        pass
    return None


def _kernel_log_names(pid: int) -> bool | None:
    """True if the kernel log reports an OOM kill of ``pid``; None if it is unreadable."""
    pattern = re.compile(rf"(Killed process {pid}\b|oom-kill:.*\bpid={pid}\b)")
    try:
        fd = os.open(_KMSG, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        for _ in range(_KMSG_RECORDS):
            try:
                record = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError:  # EPIPE: records overwritten while reading; go on
                continue
            if not record:
                break
            if pattern.search(record.decode("utf-8", "replace")):
                return True
    finally:
        os.close(fd)
    return False


class OOMWitness:
    """Remembers the OOM-kill counts, to tell later whether they rose and for whom."""

    def __init__(self, files: list[str] | None = None) -> None:
        self._files = _memory_cgroup_files() if files is None else files
        self._counts = {path: _oom_kills(path) for path in self._files}
        self._unexplained = 0  # OOM kills counted and not yet given to a dead worker

    def explain(self, pid: int) -> str:
        """The cause of ``pid``'s SIGKILL as far as the evidence goes, for a log line:
        "sent by the kernel's out-of-memory killer (...)", "not sent by wsgiloop; no
        out-of-memory kill is recorded", or "not sent by wsgiloop: ... possibly ..." when
        nothing can tell."""
        rises = []
        readable = False
        for path, before in self._counts.items():
            now = _oom_kills(path)
            if now is None:
                continue
            readable = True
            if before is not None and now > before:
                rises.append((now - before, f"{path}: oom_kill {before} -> {now}"))
            self._counts[path] = now
        if rises:
            self._unexplained = max(self._unexplained, max(r for r, _ in rises))
        if self._unexplained > 0:
            self._unexplained -= 1
            detail = "; ".join(text for _, text in rises) or "counted earlier"
            return f"sent by the kernel's out-of-memory killer ({detail})"
        named = _kernel_log_names(pid)
        if named:
            return "sent by the kernel's out-of-memory killer (the kernel log names it)"
        if readable or named is False:
            return "not sent by wsgiloop; no out-of-memory kill is recorded"
        return "not sent by wsgiloop: by another process, or possibly the kernel's " \
               "out-of-memory killer (its counters and log are unreadable here)"
