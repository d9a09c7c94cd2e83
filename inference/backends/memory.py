"""How much more memory this process may take: what the machine has
available, but no more than its memory cgroups' limits leave (a container's
`--memory`, a Kubernetes memory limit).

    memory_room()  # -> bytes: 974 MiB in a 1 GiB container that holds 50 MiB; None: no way to tell

Why ask: the KV cache is one large allocation made at start-up, and Linux
says yes to an allocation of any size (it overcommits); the pages are found
only as the pool is first written, and past the limit the kernel's OOM
killer ends the process without a word, or the machine swaps. Asked first,
the server can refuse with the size it was asked for.

The machine's part is MemAvailable in /proc/meminfo: free memory and the
caches the kernel would give up. A cgroup's is its limit less what it holds
(its working set: what it uses less the file cache it may drop), in
memory.max, memory.current and memory.stat for cgroup v2 ("max": no
limit), memory.limit_in_bytes, memory.usage_in_bytes and memory.stat for v1
(a huge number: no limit). The least of them all counts, a cgroup inside a
limited one being limited too (cores.py finds them).
"""

from pathlib import Path

from .cores import PROC, up_the_tree

FILES = {2: ("memory.max", "memory.current", "inactive_file"),  # limit, usage, the droppable file cache
         1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")}
NO_LIMIT = 2 ** 60  # v1 writes "no limit" as the largest page-aligned 64-bit number


def memory_room(proc: Path = PROC) -> int | None:  # -> bytes, or None where nothing says
    rooms = [available(proc.parent / "meminfo")]
    rooms += [room_in(directory, version) for directory, version in up_the_tree("memory", proc)]
    return min((r for r in rooms if r is not None), default=None)


def available(meminfo: Path) -> int | None:  # MemAvailable, in bytes
    try:
        for line in meminfo.read_text().splitlines():  # "MemAvailable:   23456789 kB"
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def room_in(directory: Path, version: int) -> int | None:  # one cgroup's limit less its working set, or None
    limit_file, usage_file, cache_key = FILES[version]
    try:
        limit = (directory / limit_file).read_text().strip()
        if limit == "max" or int(limit) >= NO_LIMIT:
            return None
        usage = int((directory / usage_file).read_text())
    except (OSError, ValueError):  # this level has no such file (the controller is not enabled here)
        return None
    return int(limit) - (usage - droppable_cache(directory / "memory.stat", cache_key))


def droppable_cache(stat: Path, key: str) -> int:  # bytes of file cache the cgroup would give up first
    try:
        for line in stat.read_text().splitlines():  # "inactive_file 1234567"
            name, value = line.split()
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def refuse_beyond_room(nbytes: int, what: str, proc: Path = PROC) -> None:
    """Raise MemoryError, as NumPy does for what it cannot allocate, where
    `nbytes` is more than this process may still take."""
    room = memory_room(proc)
    if room is not None and nbytes > room:
        raise MemoryError(f"{what} of {nbytes / 2 ** 30:.2f} GiB is more than the {max(room, 0) / 2 ** 30:.2f} GiB "
                          f"this process may still take (the machine's available memory, its cgroup's memory limit)")
