"""System Health decisions: facts and stored samples in, findings and proposals out (no psutil, no patching)."""

import os

from zenctl.agents.health import decide, paths
from zenctl.agents.health.decide import Sample
from zenctl.agents.health.metrics import CpuCounters, HostFacts, MountFacts
from zenctl.agents.health.config import PathSpec, SystemHealthConfig

BOOT = 1_000.0
NOW = 100_000.0


def facts(busy: float, total: float, **kw) -> HostFacts:
    base = dict(ts=NOW, cpu=CpuCounters(busy, total, BOOT), cpu_count=2, short_sample_percent=None,
                load=(0.5, 0.5, 0.5), memory_percent=40.0, swap_percent=None, mounts=[])
    return HostFacts(**{**base, **kw})


def sample(age: float, busy: float, total: float, memory: float | None = None, boot: float = BOOT) -> Sample:
    return Sample(NOW - age, CpuCounters(busy, total, boot), memory)


def test_cpu_over_threshold_for_the_whole_window_is_critical():
    # 600 CPU-seconds elapsed across 2 CPUs in 300 s, 540 of them busy: 90 %
    finding = decide.cpu_finding(facts(1540, 10600), [sample(300, 1000, 10000)], SystemHealthConfig())
    assert finding.status == "critical" and finding.value == 90.0 and finding.evidence["judged"]


def test_a_short_spike_inside_a_calm_window_is_not_critical():
    history = [sample(300, 1000, 10000), sample(60, 1010, 10480)]  # calm for 240 s, then 60 s at 100 %
    finding = decide.cpu_finding(facts(1130, 10600), history, SystemHealthConfig())
    assert finding.status == "ok" and finding.value < 30
    assert finding.evidence["current_percent"] == 100.0  # since the last run


def test_window_with_too_little_history_is_not_judged():
    finding = decide.cpu_finding(facts(1200, 10200), [sample(100, 1000, 10000)], SystemHealthConfig())
    assert finding.status == "ok" and finding.evidence["judged"] is False
    assert "above 80% but not judged" in finding.message and finding.value == 100.0


def test_cron_jitter_still_covers_the_window():
    finding = decide.cpu_finding(facts(1540, 10600), [sample(295, 1000, 10000)], SystemHealthConfig())
    assert finding.evidence["judged"] is True and finding.status == "critical"


def test_a_gap_in_history_is_not_taken_as_the_window():
    # the only earlier sample is an hour old: cron stopped; the 300 s window is not covered
    finding = decide.cpu_finding(facts(1540, 10600), [sample(3600, 1000, 10000)], SystemHealthConfig())
    assert finding.evidence["judged"] is False


def test_samples_from_before_a_reboot_are_ignored():
    finding = decide.cpu_finding(facts(50, 600, short_sample_percent=12.0),
                                 [sample(300, 1000, 10000, boot=BOOT - 50)], SystemHealthConfig())
    assert finding.evidence["judged"] is False and finding.value == 12.0


def test_window_zero_judges_since_the_last_run():
    cfg = SystemHealthConfig(cpu_window=0)
    finding = decide.cpu_finding(facts(1075, 10100), [sample(50, 1000, 10000)], cfg)
    assert finding.status == "warning" and finding.value == 75.0


def test_memory_window_uses_the_mean_of_samples():
    cfg = SystemHealthConfig(memory_window=300)
    history = [sample(290, 0, 1, memory=95), sample(150, 0, 2, memory=96)]
    finding = decide.memory_finding(facts(0, 3, memory_percent=97), history, cfg)
    assert finding.status == "critical" and finding.evidence["judged"]
    short = decide.memory_finding(facts(0, 3, memory_percent=97), history[1:], cfg)
    assert short.status == "ok" and short.evidence["judged"] is False


def test_disk_and_inode_thresholds_per_mount():
    cfg = SystemHealthConfig()
    mount = MountFacts("/data", "/dev/sdb1", "ext4", 91.0, 10, 100, 85.0)
    disk, inode = decide.mount_findings(mount, cfg)
    assert (disk.check, disk.status, inode.check, inode.status) == ("disk:/data", "critical", "inode:/data", "warning")


def test_a_mount_that_did_not_answer_is_unknown():
    mount = MountFacts("/nfs", "srv:/x", "nfs", error="statvfs did not answer within 2 s (hung network mount?)")
    (finding,) = decide.mount_findings(mount, SystemHealthConfig())
    assert finding.status == "unknown" and "hung" in finding.message


def test_no_inode_limit_gives_no_inode_finding():
    assert len(decide.mount_findings(MountFacts("/b", "/dev/x", "btrfs", 10.0, 1, 2, None), SystemHealthConfig())) == 1


def test_load_is_judged_per_cpu_and_swap_absent_is_ok():
    cfg = SystemHealthConfig()
    assert decide.load_finding(facts(0, 1, load=(9, 9, 9), cpu_count=2), cfg).status == "critical"
    assert decide.load_finding(facts(0, 1, load=(9, 9, 9), cpu_count=8), cfg).status == "ok"
    assert decide.swap_finding(facts(0, 1), cfg).status == "ok"


def test_missing_directory_proposes_mkdir_with_mode():
    spec = PathSpec(path="/srv/app/data", mode="0750")
    finding, (proposal,) = paths.judge(spec, paths.PathFacts("/srv/app/data", "missing"))
    assert finding.status == "warning" and proposal.kind == "fs.mkdir" and proposal.params["mode"] == 0o750


def test_wrong_mode_and_owner_propose_chmod_and_chown():
    spec = PathSpec(path="/srv/x", mode="0750", owner="0")
    observed = paths.PathFacts("/srv/x", "directory", 0o777, 1000, 1000, 42, want_uid=0)
    finding, proposals = paths.judge(spec, observed)
    assert [p.kind for p in proposals] == ["fs.chmod", "fs.chown"]
    assert proposals[0].params["inode"] == 42 and proposals[1].params["uid"] == 0 and proposals[1].params["gid"] == -1
    assert finding.status == "warning"


def test_a_symlink_is_never_repaired():
    spec = PathSpec(path="/srv/x", mode="0750")
    finding, proposals = paths.judge(spec, paths.PathFacts("/srv/x", "symlink", 0o777, 0, 0, 1))
    assert finding.status == "critical" and proposals == [] and "symlink" in finding.message


def test_unknown_owner_is_unknown(tmp_path):
    spec = PathSpec(path=str(tmp_path), owner="no-such-user-zenctl")
    finding, proposals = paths.judge(spec, paths.observe(spec))
    assert finding.status == "unknown" and proposals == [] and "does not exist" in finding.message


def test_observe_does_not_follow_symlinks(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert paths.observe(PathSpec(path=str(tmp_path / "link"))).kind == "symlink"
