"""Loghub-2k grouping accuracy: zenctl's template miner against Drain3 0.9.11, side by side, in one run.

For each of the 8 systems in BENCH/loghub2k, every line's Content is cut out with the dataset's `log_format`
from formats.json (as logparser's benchmark does: each <Field> a lazy group, runs of spaces \\s+, anchored on the
stripped line) and fed, in file order, to a fresh miner. Grouping accuracy (GA) is logparser's: a line counts as
correct when its predicted group holds exactly the lines of its ground-truth EventId group, against the corrected
ground truth (`*_structured_corrected.csv`); lines with an empty EventId are left out.

zenctl runs with its one configuration for every system (no per-dataset setting); a line's group is the template
id the miner returned for it, followed through later merges (Miner.resolve). Drain3 runs twice, with the
per-dataset `st`, `depth` and masking of formats.json ("bench") and with TemplateMinerConfig() defaults
("default"); the higher of the two is the figure to beat, as baselines.json reports it.

Run: uv run python bench/loghub.py [BENCH]   (BENCH defaults to ../shared/bench next to the repository)
Drain3 is installed on first use into bench/.peers/drain3 (python -m venv; pip install drain3==0.9.11).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / "bench" / ".peers"
DRAIN3_VENV = PEERS / "drain3"
DRAIN3_VERSION = "0.9.11"
SYSTEMS = ("Android", "Apache", "BGL", "HDFS", "Linux", "OpenSSH", "Spark", "Zookeeper")


def bench_dir(arg: str | None = None) -> Path:
    """The shared bench data: the argument, else ../shared/bench next to the repository (or its parent's)."""
    if arg:
        return Path(arg)
    for base in (REPO.parent, REPO.parent.parent):
        if (base / "shared" / "bench").is_dir():
            return base / "shared" / "bench"
    return REPO.parent / "shared" / "bench"


def header_regex(log_format: str) -> str:
    """logparser's generate_logformat_regex: <Field> -> lazy named group, runs of spaces -> \\s+, anchored.

    One change that keeps every match the same: a last field with nothing after it is greedy (`.*$` and `.*?$`
    match the same text on a stripped line), which spares both tools a `$` test at every character of Content."""
    regex = ""
    parts = re.split(r"(<[^<>]+>)", log_format)
    for k, part in enumerate(parts):
        if k % 2 == 0:
            regex += re.sub(" +", r"\\s+", part)
        else:
            last = k == len(parts) - 2 and parts[-1] == ""
            regex += f"(?P<{part.strip('<>')}>.*{'' if last else '?'})"
    return "^" + regex + "$"


def drain3_python() -> str:
    """The scratch venv's python with drain3 installed (created on first use)."""
    python = DRAIN3_VENV / "bin" / "python"
    if not python.exists():
        PEERS.mkdir(parents=True, exist_ok=True)
        venv.create(DRAIN3_VENV, with_pip=True)
    probe = subprocess.run([str(python), "-c", "import drain3"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"drain3=={DRAIN3_VERSION}"], check=True)
    return str(python)


# One runner for both tools, run in its own process: read FILE, cut Content with the header regex, mine every
# line; print elapsed seconds, the cluster count, and (when asked) each line's group.
RUNNER = r"""
import json, re, resource, sys, time
args = json.loads(sys.argv[1])
header = re.compile(args["header"])
def make():
    if args["tool"] == "zenctl":
        from zenctl.agents.log_analyzer.miner import Miner
        miner = Miner()
        add = miner.add
        return miner, lambda content: add(content)[0]
    import logging
    logging.disable(logging.CRITICAL)
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig
    from drain3.masking import MaskingInstruction
    config = TemplateMinerConfig()
    if args["tool"] == "drain3-bench":
        config.drain_sim_th = args["st"]
        config.drain_depth = args["depth"]
        config.masking_instructions = [MaskingInstruction(r, "*") for r in args["regex"]]
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    add = miner.add_log_message
    return miner, lambda content: add(content)["cluster_id"]
keep = args.get("keep", True)
groups = []
miner, group = make()
start, cpu = time.perf_counter(), time.process_time()
n = 0
with open(args["file"], encoding="utf-8", errors="replace") as fh:
    for line in fh:
        m = header.match(line.strip())
        content = m.group("Content") if m else line.strip()
        g = group(content)
        n += 1
        if keep:
            groups.append(g)
elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if args["tool"] == "zenctl":
    groups = [miner.resolve(g) for g in groups]
    clusters = len(miner.templates())
else:
    clusters = len(miner.drain.clusters)
mining = mining_cpu = None
if args.get("mining"):  # the miner alone: the contents cut beforehand, a fresh miner timed over them
    with open(args["file"], encoding="utf-8", errors="replace") as fh:
        contents = []
        for line in fh:
            m = header.match(line.strip())
            contents.append(m.group("Content") if m else line.strip())
    miner, group = make()
    start, cpu = time.perf_counter(), time.process_time()
    for content in contents:
        group(content)
    mining, mining_cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"elapsed": elapsed, "elapsed_cpu": elapsed_cpu, "mining": mining, "mining_cpu": mining_cpu, "lines": n, "clusters": clusters, "groups": groups,
                  "peak_rss": peak}))
"""


def run_tool(tool: str, file: Path, header: str, settings: dict | None = None, keep: bool = True,
             mining: bool = False) -> dict:
    """Run the miner `tool` ("zenctl", "drain3-bench", "drain3-default") over FILE in a child process; the
    result has elapsed (read, cut, mine), lines, clusters, groups, peak_rss (bytes) and, with `mining`, the
    seconds a fresh miner took over the contents cut beforehand."""
    python = sys.executable if tool == "zenctl" else drain3_python()
    args = {"tool": tool, "file": str(file), "header": header, "keep": keep, "mining": mining, **(settings or {})}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if tool == "zenctl":
        env["PYTHONPATH"] = str(REPO)
    with subprocess.Popen([python, "-c", RUNNER, json.dumps(args)], stdout=subprocess.PIPE, env=env,
                          cwd=str(PEERS if tool != "zenctl" else REPO)) as proc:
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{tool} failed on {file} (exit {proc.returncode})")
    return json.loads(out)  # peak_rss: the child's own, taken before any in-memory mining pass


def grouping_accuracy(truth: list[str], predicted: list) -> float:
    """logparser's GA: the share of lines whose predicted group is exactly their ground-truth group."""
    pairs = [(t, p) for t, p in zip(truth, predicted, strict=True) if t]
    by_pred: dict = {}
    by_truth: dict = {}
    for i, (t, p) in enumerate(pairs):
        by_pred.setdefault(p, []).append(i)
        by_truth.setdefault(t, []).append(i)
    correct = 0
    for members in by_pred.values():
        events = {pairs[i][0] for i in members}
        if len(events) == 1 and len(by_truth[next(iter(events))]) == len(members):
            correct += len(members)
    return correct / len(pairs) if pairs else 1.0


def ground_truth(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [row["EventId"].strip() for row in csv.DictReader(fh)]


def main(argv: list[str]) -> int:
    base = bench_dir(argv[0] if argv else None)
    formats = json.loads((base / "loghub2k" / "formats.json").read_text())["datasets"]
    baselines = {}
    baselines_file = base / "baselines.json"
    if baselines_file.exists():
        baselines = json.loads(baselines_file.read_text())
    print(f"Loghub-2k grouping accuracy (corrected ground truth), data {base / 'loghub2k'}")
    print(f"{'system':<10} {'zenctl':>7} {'Drain3':>7} {'bench':>7} {'default':>7} {'tmpl z/D3':>10} "
          f"{'zenctl l/s':>10} {'D3 l/s':>8}  verdict")
    rows = []
    for name in SYSTEMS:
        spec = formats[name]
        log = base / "loghub2k" / spec["log_file"]
        truth = ground_truth(base / "loghub2k" / spec["ground_truth_preferred"])
        header = header_regex(spec["log_format"])
        z = run_tool("zenctl", log, header)
        db = run_tool("drain3-bench", log, header, {"st": spec["st"], "depth": spec["depth"], "regex": spec["regex"]})
        dd = run_tool("drain3-default", log, header)
        ga_z = grouping_accuracy(truth, z["groups"])
        ga_b = grouping_accuracy(truth, db["groups"])
        ga_d = grouping_accuracy(truth, dd["groups"])
        best = max(ga_b, ga_d)
        rows.append((name, ga_z, best))
        verdict = "ok" if ga_z >= best else "BELOW DRAIN3"
        best_run = db if ga_b >= ga_d else dd
        print(f"{name:<10} {ga_z:>7.4f} {best:>7.4f} {ga_b:>7.4f} {ga_d:>7.4f} "
              f"{z['clusters']:>4}/{best_run['clusters']:<5} {z['lines'] / z['elapsed']:>10.0f} "
              f"{best_run['lines'] / best_run['elapsed']:>8.0f}  {verdict}")
    mean_z = sum(r[1] for r in rows) / len(rows)
    mean_d = sum(r[2] for r in rows) / len(rows)
    print(f"{'mean':<10} {mean_z:>7.4f} {mean_d:>7.4f}")
    ok = all(r[1] >= r[2] for r in rows) and mean_z >= 0.95
    print(f"target (>= Drain3 on every system, mean >= 0.95): {'met' if ok else 'NOT met'}")
    if baselines:
        print("(baselines.json, Drain3 measured when the data was extracted: see its loghub2k section)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
