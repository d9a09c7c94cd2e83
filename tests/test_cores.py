"""How many cores the process may use (inference/backends/cores.py): its
affinity, capped by a cgroup's CPU quota; and how much more memory it may
take (memory.py), read from the same cgroup trees. Fake /proc and cgroup
trees for each way Linux writes a limit, then a real cgroup where this
machine lets the tests make one."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inference import load_model
from inference.backends import numba_cpu
from inference.backends.cores import cgroup_mounts, cores_allowed, cpu_quota, loaded_openblas
from inference.backends.memory import memory_room, refuse_beyond_room

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
from bench_cpu_quota import quota_limits  # noqa: E402 (the one place that writes a quota's files)

AFFINITY = len(os.sched_getaffinity(0))


def fake_proc(tmp_path, memberships: str, mounts: list[tuple[str, str, str, str]], files: dict) -> Path:
    """A /proc/self with these cgroup memberships and (root, mount point under tmp_path, type,
    super options) mounts, and these files under tmp_path."""
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text(memberships)
    (proc / "mountinfo").write_text("".join(
        f"{30 + i} 25 0:{40 + i} {root} {tmp_path / point} rw,nosuid - {kind} cgroup {options}\n"
        for i, (root, point, kind, options) in enumerate(mounts)))
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return proc


def test_a_v2_quota_allows_its_whole_cores(tmp_path):
    proc = fake_proc(tmp_path, "0::/kubepods/pod1\n", [("/", "cg", "cgroup2", "rw")],
                     {"cg/kubepods/pod1/cpu.max": "250000 100000\n", "cg/kubepods/cpu.max": "max 100000\n"})
    assert cpu_quota(proc) == 2.5
    assert cores_allowed(proc) == min(AFFINITY, 2)


def test_a_v1_quota_is_read_where_the_cpu_controller_is_mounted_and_a_parents_counts(tmp_path):
    proc = fake_proc(tmp_path, "5:memory:/a/b\n4:cpu,cpuacct:/a/b\n0::/\n",
                     [("/", "memory", "cgroup", "rw,memory"), ("/", "cpu", "cgroup", "rw,cpu,cpuacct"),
                      ("/", "unified", "cgroup2", "rw")],
                     {"cpu/a/b/cpu.cfs_quota_us": "-1\n", "cpu/a/b/cpu.cfs_period_us": "100000\n",
                      "cpu/a/cpu.cfs_quota_us": "50000\n", "cpu/a/cpu.cfs_period_us": "100000\n",
                      "memory/a/b/cpu.cfs_quota_us": "1000\n", "memory/a/b/cpu.cfs_period_us": "100000\n"})
    assert cgroup_mounts((proc / "mountinfo").read_text())[1] == (Path("/"), tmp_path / "cpu")
    assert cpu_quota(proc) == 0.5  # the parent's; the memory hierarchy's files are not the cpu controller's
    assert cores_allowed(proc) == 1  # never fewer than one


def test_in_a_container_the_hierarchy_is_mounted_from_the_containers_own_cgroup(tmp_path):
    # no cgroup namespace: /proc/self/cgroup names the host's path, and the mount's root is that path
    proc = fake_proc(tmp_path, "3:cpu:/docker/ab12\n", [("/docker/ab12", "cpu", "cgroup", "rw,cpu")],
                     {"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"})
    assert cpu_quota(proc) == 2.0


@pytest.mark.parametrize("memberships, files", [
    ("0::/\n", {"cg/cpu.max": "max 100000\n"}),  # v2, no limit
    ("0::/\n", {}),  # the cpu controller not enabled in v2: no cpu.max
    ("0::/\n", {"cg/cpu.max": "garbage\n"}),
])
def test_no_quota_leaves_the_affinity(tmp_path, memberships, files):
    proc = fake_proc(tmp_path, memberships, [("/", "cg", "cgroup2", "rw")], files)
    assert cpu_quota(proc) is None and cores_allowed(proc) == AFFINITY


def test_without_proc_the_affinity_counts(tmp_path):
    assert cpu_quota(tmp_path / "no-proc") is None and cores_allowed(tmp_path / "no-proc") == AFFINITY


MiB = 2 ** 20
MEMINFO = {"meminfo": f"MemTotal: 25000000 kB\nMemFree: 1000 kB\nMemAvailable: {8 * 1024 ** 2} kB\n"}  # 8 GiB


def test_memory_room_is_a_v2_limit_less_its_working_set_and_a_parents_counts(tmp_path):
    proc = fake_proc(tmp_path, "0::/pod/app\n", [("/", "cg", "cgroup2", "rw")], {
        **MEMINFO,
        "cg/pod/app/memory.max": "max\n",
        "cg/pod/memory.max": f"{1024 * MiB}\n", "cg/pod/memory.current": f"{300 * MiB}\n",
        "cg/pod/memory.stat": f"anon 123\ninactive_file {100 * MiB}\nactive_file 5\n"})
    assert memory_room(proc) == (1024 - 300 + 100) * MiB  # the file cache it would drop is room too


def test_memory_room_in_v1_is_read_where_the_memory_controller_is_mounted(tmp_path):
    proc = fake_proc(tmp_path, "4:cpu:/a\n5:memory:/docker/ab12\n", [
        ("/", "cpu", "cgroup", "rw,cpu"), ("/docker/ab12", "memory", "cgroup", "rw,memory")], {
        **MEMINFO,
        "cpu/a/memory.limit_in_bytes": "1\n", "cpu/a/memory.usage_in_bytes": "0\n",  # not the memory hierarchy
        "memory/memory.limit_in_bytes": f"{512 * MiB}\n", "memory/memory.usage_in_bytes": f"{64 * MiB}\n",
        "memory/memory.stat": f"inactive_file 999\ntotal_inactive_file {16 * MiB}\n"})
    assert memory_room(proc) == (512 - 64 + 16) * MiB


@pytest.mark.parametrize("files", [
    {"cg/memory.max": "max\n", "cg/memory.current": "5\n"},  # v2, no limit
    {},  # the memory controller not enabled
    {"cg/memory.max": "garbage\n"},
])
def test_without_a_memory_limit_the_machines_available_memory_counts(tmp_path, files):
    proc = fake_proc(tmp_path, "0::/\n", [("/", "cg", "cgroup2", "rw")], {**MEMINFO, **files})
    assert memory_room(proc) == 8 * 1024 ** 3


def test_v1_writes_no_limit_as_a_huge_number(tmp_path):
    proc = fake_proc(tmp_path, "5:memory:/\n", [("/", "memory", "cgroup", "rw,memory")], {
        **MEMINFO, "memory/memory.limit_in_bytes": "9223372036854771712\n", "memory/memory.usage_in_bytes": "7\n"})
    assert memory_room(proc) == 8 * 1024 ** 3


def test_a_machine_with_less_available_than_the_limit_leaves_that(tmp_path):
    proc = fake_proc(tmp_path, "0::/\n", [("/", "cg", "cgroup2", "rw")], {
        "meminfo": "MemAvailable: 1024 kB\n", "cg/memory.max": f"{512 * MiB}\n", "cg/memory.current": "0\n"})
    assert memory_room(proc) == MiB


def test_without_proc_nothing_is_known_and_nothing_refused(tmp_path):
    assert memory_room(tmp_path / "no-proc") is None
    refuse_beyond_room(10 ** 18, "a KV cache", tmp_path / "no-proc")


def test_more_than_the_room_is_refused_before_it_is_allocated(tmp_path):
    proc = fake_proc(tmp_path, "0::/\n", [("/", "cg", "cgroup2", "rw")], MEMINFO)
    refuse_beyond_room(8 * 1024 ** 3, "a KV cache", proc)  # all of it fits
    with pytest.raises(MemoryError, match=r"a KV cache of 8.00 GiB is more than the 8.00 GiB this process may still"):
        refuse_beyond_room(8 * 1024 ** 3 + 1, "a KV cache", proc)


def test_cpu_numba_keeps_to_the_cores_allowed(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(numba_cpu, "cores_allowed", lambda: 1)
    model = load_model(tiny_model_dir, device="cpu-numba")
    assert model.cores == 1 and not model.on_all_cores


# In a fresh process (the test process's OpenBLAS stays as it is): the threads that worked in a product of
# two 1,500-square matrices, counted by the kernel's own books (/proc/self/task/<id>/stat: each thread's
# CPU ticks), before and after blas_threads_at_most(1); then OpenBLAS's own count after asking for 4.
COUNT_WORKING_THREADS = """
import os, numpy as np
from inference.backends.cores import blas_threads_at_most
def ticks():  # {thread id: its user + system CPU ticks so far}
    return {t: sum(map(int, open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()[11:13]))
            for t in os.listdir("/proc/self/task")}
def working_threads():
    a = np.random.default_rng(0).standard_normal((1500, 1500), dtype=np.float32)
    before = ticks()
    for _ in range(20):
        a @ a
    spent = {t: n - before.get(t, 0) for t, n in ticks().items()}
    return sum(n > max(spent.values()) / 4 for n in spent.values())
print(working_threads(), blas_threads_at_most(1), working_threads(), blas_threads_at_most(4))
"""


def test_numpys_openblas_is_found_in_this_process():
    """NumPy's wheels bundle OpenBLAS: a NumPy built on another BLAS would have nothing to size."""
    assert loaded_openblas() is not None


def test_openblas_works_on_no_more_threads_than_it_is_given():
    if AFFINITY < 2:
        pytest.skip("one core: OpenBLAS already works on one thread")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    result = subprocess.run([sys.executable, "-c", COUNT_WORKING_THREADS], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    before, *after = result.stdout.split()  # a thread per core at first; 1 from then on, asking for more too
    assert int(before) >= 2 and after == ["1", "1", "1"], result.stdout


def test_a_process_in_a_real_one_core_cgroup_is_allowed_one_core(tiny_model_dir, limited_cgroup):
    """The kernel's own files: a child of this process's cgroup with a quota of one core; a
    model loaded there on cpu runs NumPy's OpenBLAS on one thread."""
    cgroup = limited_cgroup("cpu", quota_limits(1.0))
    count = ("from inference.backends.cores import cores_allowed; from inference import load_model; "
             f"print(cores_allowed(), load_model({str(tiny_model_dir)!r}, device='cpu').blas_threads)")
    enter_and_count = f'echo $$ > {cgroup / "cgroup.procs"} && exec {sys.executable} -c "{count}"'
    result = subprocess.run(["sh", "-c", enter_and_count], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1"]


def test_this_machines_own_files_parse():
    assert 1 <= cores_allowed() <= AFFINITY


def test_the_quota_benchmark_runs_and_sizes_the_threads_by_the_quota(limited_cgroup):
    if AFFINITY < 2:
        pytest.skip("one core: a thread per core is already one thread")
    limited_cgroup("cpu", quota_limits(1.0))  # skips where the script could not make its cgroup either
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run([sys.executable, str(SCRIPTS / "bench_cpu_quota.py"), "--rounds", "1", "--new-tokens", "4"],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert "| in the quota, threads sized by the quota (cores.py) | 1 |" in result.stdout, result.stdout
    assert "| in the quota, a thread per core |" in result.stdout and "| no quota, a thread per core |" in result.stdout
