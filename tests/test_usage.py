"""What a batch's container used (peak memory, CPU time), read from its cgroup: where the cgroup is
found for each engine and cgroup layout, and the figures real containers on Docker record."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from faice.runner.usage import CgroupFiles, Meter, Usage, locate, mounts, read
from tests.redfiles import as_batches, shell_red
from tests.test_exec import Run

ID = "f46f128c8e38f332d4ab2e91953c02665838e5d40778c6c434075091e2c2e76a"
V1_MOUNTS = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2_MOUNTS = "30 23 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"


def v1_cgroup(path: str) -> str:
    return f"9:name=systemd:{path}\n4:memory:{path}\n2:cpu,cpuacct:{path}\n0::{path}\n"


def test_docker_cgroupfs_on_cgroup_v1_is_found_by_the_container_process():
    found = locate(v1_cgroup(f"/docker/{ID}"), V1_MOUNTS, ID)
    assert found == CgroupFiles(Path(f"/sys/fs/cgroup/memory/docker/{ID}/memory.max_usage_in_bytes"),
                                Path(f"/sys/fs/cgroup/cpu,cpuacct/docker/{ID}/cpuacct.usage"), 1)


def test_podman_and_systemd_layouts_on_cgroup_v2():
    systemd = locate(f"0::/system.slice/docker-{ID}.scope\n", V2_MOUNTS, ID)
    assert systemd == CgroupFiles(Path(f"/sys/fs/cgroup/system.slice/docker-{ID}.scope/memory.peak"),
                                  Path(f"/sys/fs/cgroup/system.slice/docker-{ID}.scope/cpu.stat"), 2,
                                  Path(f"/sys/fs/cgroup/system.slice/docker-{ID}.scope/memory.current"))
    # podman may put the tool in a sub-cgroup of the container's: the container's whole cgroup counts
    rootless = locate(f"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container\n", V2_MOUNTS, ID)
    assert rootless is not None and rootless.peak == Path(f"/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/memory.peak")
    assert locate(v1_cgroup(f"/libpod_parent/libpod-{ID}"), V1_MOUNTS, ID).peak == Path(f"/sys/fs/cgroup/memory/libpod_parent/libpod-{ID}/memory.max_usage_in_bytes")


def test_a_cgroup_that_does_not_name_the_container_gives_nothing():
    """Another machine's or namespace's pid, or rootless podman on v1 (the tool stays in the user's
    session cgroup): never another cgroup's figures."""
    assert locate("0::/user.slice/user-1000.slice/session-3.scope\n", V2_MOUNTS, ID) is None
    assert locate(v1_cgroup("/user.slice"), V1_MOUNTS, ID) is None
    assert locate(v1_cgroup(f"/docker/{ID}"), "", ID) is None  # no cgroup file system mounted here
    assert locate(v1_cgroup(f"/docker/{ID}"), V1_MOUNTS, "") is None


def test_a_namespaced_mount_root_is_taken_off_the_path():
    namespaced = "50 40 0:27 /docker /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert mounts(namespaced)["2"] == ("/docker", Path("/sys/fs/cgroup"))
    assert locate(f"0::/docker/{ID}\n", namespaced, ID).peak == Path(f"/sys/fs/cgroup/{ID}/memory.peak")
    assert locate(f"0::/other/{ID}\n", namespaced, ID) is None
    spaced = "50 40 0:27 / /mnt/cgroup\\040two rw - cgroup2 cgroup2 rw\n"  # mountinfo writes a space as \040
    assert mounts(spaced)["2"] == ("/", Path("/mnt/cgroup two"))


def test_reading_v2_and_v1_files_and_a_kernel_without_memory_peak(tmp_path: Path):
    (tmp_path / "memory.peak").write_text("73400320\n")
    (tmp_path / "cpu.stat").write_text("usage_usec 1520000\nuser_usec 1500000\nsystem_usec 20000\n")
    assert read(CgroupFiles(tmp_path / "memory.peak", tmp_path / "cpu.stat", 2)) == Usage(73400320, 1.52)
    # before Linux 5.19 there is no memory.peak: memory.current stands in, and without it nothing
    assert read(CgroupFiles(tmp_path / "missing.peak", tmp_path / "cpu.stat", 2)) == Usage(None, 1.52)
    (tmp_path / "memory.current").write_text("5000\n")
    assert read(CgroupFiles(tmp_path / "missing.peak", tmp_path / "cpu.stat", 2, tmp_path / "memory.current")) == Usage(5000, 1.52)
    (tmp_path / "cpuacct.usage").write_text("2500000000\n")
    assert read(CgroupFiles(None, tmp_path / "cpuacct.usage", 1)) == Usage(None, 2.5)


def test_the_meter_keeps_the_last_reading_once_the_cgroup_is_gone(tmp_path: Path):
    peak, cpu = tmp_path / "memory.peak", tmp_path / "cpu.stat"
    peak.write_text("1000\n")
    cpu.write_text("usage_usec 2000000\n")
    meter = Meter(lambda: CgroupFiles(peak, cpu, 2), interval=0.01)
    wait_for_a_reading(meter)
    peak.unlink()
    cpu.unlink()
    assert meter.stop() == Usage(1000, 2.0)
    assert Meter(lambda: None).stop() == Usage()


def test_without_memory_peak_the_meter_keeps_the_highest_memory_current(tmp_path: Path):
    """A kernel before 5.19 has no memory.peak: the highest memory.current read is the (sampled) peak."""
    current, cpu = tmp_path / "memory.current", tmp_path / "cpu.stat"
    current.write_text("3000\n")
    cpu.write_text("usage_usec 1000000\n")
    meter = Meter(lambda: CgroupFiles(tmp_path / "memory.peak", cpu, 2, current), interval=0.01)
    wait_for_a_reading(meter)
    current.write_text("1000\n")
    time.sleep(0.05)  # a few readings of the lower figure
    assert meter.stop() == Usage(3000, 1.0)


def wait_for_a_reading(meter: Meter) -> None:
    wait_for(lambda: meter.last != Usage())


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Until ``condition`` holds; a failure after ``timeout`` seconds, not a test that spins forever."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not so within {timeout} s"
        time.sleep(0.005)


MIB = 1024 * 1024
#: writes 50,000,000 bytes into the tmpfs at $HOME (charged to the container's memory)
FILL = "head -c 50000000 /dev/zero > /cc/home/blob; sleep 0.5"
#: busy until the shell's own CPU time (utime+stime+children's, /proc/PID/stat, 100 ticks a second) reaches 1 s
BUSY = ("while :; do i=0; while [ $i -lt 5000 ]; do i=$((i+1)); done; set -- $(cat /proc/$$/stat); "
        "[ $((${14}+${15}+${16}+${17})) -ge 100 ] && break; done; sleep 0.5")


@pytest.mark.docker
def test_real_containers_record_their_peak_memory_and_cpu_time(tmp_path: Path, docker_image: str):
    """One batch fills 50 MB of tmpfs, one burns a second of CPU, one fails after filling: each
    records what it used, the failed one too; faice show prints them."""
    run = Run(tmp_path)
    data = as_batches(shell_red('case "$1" in fill) ' + FILL + ";; busy) " + BUSY + ";; *) " + FILL + "; exit 4;; esac",
                                cli_inputs={"what": {"type": "string", "inputBinding": {"position": 0}}}),
                      [{"what": "fill"}, {"what": "busy"}, {"what": "fail"}])
    data["container"]["settings"]["ram"] = 512
    result, doc = run(data, "--jobs", "3")
    assert result.returncode == 1 and doc is not None, result.stderr
    shown = {b["index"]: b for b in run_show(run, doc["experimentId"])}
    filled, busy, failed = shown[0], shown[1], shown[2]
    assert 50_000_000 <= filled["peakMemory"] < 50_000_000 + 64 * MIB, filled
    assert 50_000_000 <= failed["peakMemory"] < 50_000_000 + 64 * MIB and failed["exitCode"] == 4, failed
    assert busy["peakMemory"] < 40 * MIB and 0.5 <= busy["cpuSeconds"] < 30, busy
    assert filled["cpuSeconds"] < busy["cpuSeconds"]
    human = run.faice("show", doc["experimentId"]).stdout
    assert "peak mem" in human and "MiB" in human
    single = run.faice("show", filled["batchId"]).stdout
    assert "used: peak memory" in single and "CPU time" in single


def run_show(run: Run, experiment_id: str) -> list[dict]:
    import json

    return json.loads(run.faice("show", experiment_id, "--json").stdout)["batches"]
