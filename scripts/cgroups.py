"""A new cgroup with a limit, for the benchmarks and tests that run the
server in one as a container would (root and a writable cgroup file system
needed; cgroup v1 or v2).

    folder = limited_cgroup("memory", {1: {"memory.limit_in_bytes": "1G"}, 2: {"memory.max": "1G"}})
    subprocess.run(["sh", "-c", f'echo $$ > {folder / "cgroup.procs"} && exec python ...'])
    folder.rmdir()  # once its processes have ended
"""

import uuid
from pathlib import Path

from inference.backends.cores import cgroups


def limited_cgroup(controller: str, limits: dict[int, dict[str, str]]) -> Path:
    """A child of this process's cgroup in the controller's hierarchy, its
    files written as `limits` says for the cgroup version found ({version:
    {file: text}}, in order); its folder. OSError where none can be made."""
    for here, _, version in cgroups(controller):
        child = here / f"limited-{controller}-{uuid.uuid4().hex[:8]}"
        try:
            child.mkdir()
        except OSError:
            continue
        if all((child / name).exists() for name in limits[version]):  # v2: the controller enabled here
            for name, text in limits[version].items():
                (child / name).write_text(text)
            return child
        child.rmdir()
    raise PermissionError(f"cannot make a cgroup with the {controller} controller here "
                          "(root and a writable cgroup file system are needed)")
