"""How many cores this process may use: the CPUs it may run on (its
affinity), but no more than its CPU quota where a cgroup sets one (a
container's `--cpus`, a Kubernetes CPU limit).

    cores_allowed()  # -> 2 in a quota of 2 cores (or 2.5), even on a 64-core host
    blas_threads_at_most(2)  # NumPy's OpenBLAS on no more threads than that

Numba and OpenMP count only the first. In a quota smaller than the machine
they start a thread per core, and a step whose every shared loop waits for
its last thread waits for the threads the quota keeps off the cores
(scripts/bench_cpu_quota.py). Linux says where the quota is in two places:
/proc/self/cgroup names the process's cgroup in each hierarchy, and
/proc/self/mountinfo where each hierarchy is mounted. cgroup v2 writes a
quota as "150000 100000" in cpu.max (microseconds of CPU per period: 1.5
cores; "max": none), v1 in cpu.cfs_quota_us and cpu.cfs_period_us (-1:
none). A cgroup inside a limited one is limited too, so the least quota of
the process's cgroup and those above it counts.

NumPy's OpenBLAS, which runs the products of `--device cpu`, also starts a
thread per core; NumPy has no call to change that once it is loaded, but
OpenBLAS has one, found here in the library itself.
"""

import ctypes
import math
import os
from pathlib import Path

PROC = Path("/proc/self")


def cores_allowed(proc: Path = PROC) -> int:
    """The CPUs this process may run on, but no more than the whole cores of
    its quota (at least one): two threads in a quota of 1.5 cores would spend
    a quarter of each period stopped, the step waiting with them."""
    if hasattr(os, "sched_getaffinity"):
        affinity = len(os.sched_getaffinity(0))
    else:  # macOS and Windows have no affinity call, nor cgroups
        affinity = os.cpu_count() or 1
    quota = cpu_quota(proc)
    return affinity if quota is None else max(1, min(affinity, math.floor(quota)))


def cpu_quota(proc: Path = PROC) -> float | None:
    """The least CPU quota, in cores, of this process's cgroups and those
    above them (up to where each hierarchy is mounted), or None where nothing
    limits it."""
    quotas = [quota_in(directory, version) for directory, version in up_the_tree("cpu", proc)]
    return min((q for q in quotas if q is not None), default=None)


def cgroups(controller: str, proc: Path = PROC) -> list[tuple[Path, Path, int]]:
    """(directory, mount point, cgroup version) of this process's cgroup in each
    mounted hierarchy that may hold the controller's limits ("cpu", "memory",
    "pids"): v1's with that controller, v2's."""
    try:
        mounts = cgroup_mounts((proc / "mountinfo").read_text(), controller)
        memberships = (proc / "cgroup").read_text().splitlines()
    except OSError:  # no /proc: not Linux
        return []
    found = []
    for line in memberships:  # "hierarchy-id:controllers:path", e.g. "4:cpu,cpuacct:/docker/ab12" or "0::/"
        hierarchy, controllers, path = line.split(":", 2)
        version = 2 if hierarchy == "0" else 1 if controller in controllers.split(",") else None
        if version in mounts:
            root, mount_point = mounts[version]  # the path is the cgroup's from the hierarchy's root
            inside = Path(path).is_relative_to(root)
            found.append((mount_point / Path(path).relative_to(root) if inside else mount_point, mount_point, version))
    return found


def cgroup_mounts(mountinfo: str, controller: str = "cpu") -> dict:
    """{1: (root, mount point) of the v1 hierarchy with the controller,
    2: the same of the v2 hierarchy}, as mounted here. A mountinfo line:
    "36 25 0:31 <root> <mount point> <options> [optional fields] - <type> <source> <super options>"."""
    mounts = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        after = fields[fields.index("-") + 1:]  # type, source, super options
        if after[0] == "cgroup2":
            mounts.setdefault(2, (Path(fields[3]), Path(fields[4])))
        elif after[0] == "cgroup" and len(after) > 2 and controller in after[2].split(","):
            mounts.setdefault(1, (Path(fields[3]), Path(fields[4])))
    return mounts


def up_the_tree(controller: str, proc: Path = PROC):  # -> (directory, version) of each cgroup that limits us
    """This process's cgroups with the controller, and those above them up to
    where each hierarchy is mounted: a cgroup inside a limited one is limited too."""
    for here, mount_point, version in cgroups(controller, proc):
        for directory in [here, *here.parents]:
            yield directory, version
            if directory == mount_point:
                break


def quota_in(directory: Path, version: int) -> float | None:  # one cgroup's quota in cores, or None
    try:
        if version == 2:
            quota, period = (directory / "cpu.max").read_text().split()
            return None if quota == "max" else int(quota) / int(period)
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        return None if quota < 0 else quota / int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):  # this level has no such file (the cpu controller is elsewhere)
        return None


def blas_threads_at_most(cores: int) -> int | None:
    """Lower NumPy's OpenBLAS to `cores` threads, never raise it (OPENBLAS_NUM_THREADS
    may have asked for fewer). -> its threads now; None where no OpenBLAS is loaded
    (a NumPy built on another BLAS, or no /proc to find it in). In a quota of one
    core on two, the engine on `--device cpu` makes 2x the tokens/s with one thread
    than with two (scripts/bench_cpu_quota.py --device cpu)."""
    blas = loaded_openblas()
    if blas is None:
        return None
    get_threads, set_threads = blas
    if get_threads() > cores:
        set_threads(cores)
    return get_threads()


def loaded_openblas(proc: Path = PROC):  # -> (get_num_threads, set_num_threads) of the OpenBLAS loaded here
    """Found among the files this process has mapped (/proc/self/maps), and
    opened again, which gives the library already loaded, not a second copy.
    NumPy's wheels bundle it as libscipy_openblas64_-<hash>.so, its functions
    renamed (scipy_openblas_get_num_threads64_); a system's NumPy links
    libopenblas.so (openblas_get_num_threads). None if there is none."""
    try:
        maps = (proc / "maps").read_text()
    except OSError:
        return None
    mapped = {line.split(None, 5)[5] for line in maps.splitlines() if len(line.split(None, 5)) == 6}
    for path in sorted(p for p in mapped if "openblas" in Path(p).name):
        library = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "")):
            get_threads = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
            set_threads = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
            if get_threads is not None and set_threads is not None:
                get_threads.restype, set_threads.argtypes = ctypes.c_int, [ctypes.c_int]
                return get_threads, set_threads
    return None
