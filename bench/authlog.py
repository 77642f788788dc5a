"""SSH brute force in a 1,000,000-line auth.log: zenctl's security classifier against fail2ban-regex with the
`sshd` filter (Debian's fail2ban 1.0.2 package), on the same file, in one run.

The log is BENCH/gen/authlog.py's (seeded; 136,216 planted failure lines: `Failed password`, `Invalid user`),
written once into bench/.peers/authlog/. Each contender runs in its own process, timed by wait4 (wall, CPU, peak
RSS; bench/common.measure_argv), and writes what it matched to a file that is checked afterwards:

- fail2ban-regex: `fail2ban-regex -c ETC LOG sshd` from the Debian package (apt-get download, dpkg -x into
  bench/.peers/fail2ban), run by /usr/bin/python3 as Debian runs it; matched = its "Lines: ... matched" figure.
- zenctl classifier, raw lines: `security.Classifier.scan` over the file's lines (the syslog tag found by
  string searches, every other program's line dropped at once, first-word dispatch, regexes only for candidates),
  then the time of each failure line (what a jail needs), by `formats.parse_lines` once per minute of the
  timestamps (the seconds added). Module directly.
- zenctl classifier, records: `formats.parse_lines(..., "syslog")` for every line, then `Classifier.classify` of
  every record: the path the agent takes (without template mining). Module directly.
- `zenctl logs parse FILE --format syslog --jsonl` (parse, mine every line, classify, one JSON object per line):
  the command; slow by design (it mines and prints every record), shown for completeness. Skip with --quick.

Run: uv run python bench/authlog.py [--quick] [--mode normal|aggressive] [BENCH]
(BENCH defaults to ../shared/bench next to the repository). The machine is shared: compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from common import measure_argv, user_env
from loghub import bench_dir

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / "bench" / ".peers"
DATA = PEERS / "authlog"
F2B = PEERS / "fail2ban"
F2B_VERSION = "1.0.2-2"

# zenctl's runners: argv = mode, log, out.json
RAW = r"""
import json, sys
from collections import Counter
from zenctl.agents.log_analyzer import security
from zenctl.agents.log_analyzer.formats import parse_lines
mode, log, out = sys.argv[1:4]
classifier = security.Classifier({"sshd": mode})
minutes = {}
def when(number, text):
    # the time of a failure line for its jail: formats' syslog parser, once per minute of "Mmm dd hh:mm:ss"
    if text[12:13] == ":" and text[15:16] == " " and text[13:15].isdigit():
        base = minutes.get(text[:12])
        if base is None:
            base = minutes[text[:12]] = next(parse_lines([(number, text[:12] + ":00" + text[15:])], "syslog")).time
        return None if base is None else base + int(text[13:15])
    return next(parse_lines([(number, text)], "syslog")).time
matched, timed, per_ip = 0, 0, Counter()
with open(log, encoding="utf-8", errors="surrogateescape") as f:
    for number, text, hit in classifier.scan(f):
        matched += 1
        timed += when(number, text) is not None
        per_ip[hit.ip] += 1
json.dump({"matched": matched, "timed": timed, "per_ip": per_ip}, open(out, "w"))
"""
RECORDS = r"""
import json, sys
from collections import Counter
from zenctl.agents.log_analyzer import security
from zenctl.agents.log_analyzer.formats import parse_lines
mode, log, out = sys.argv[1:4]
classifier = security.Classifier({"sshd": mode})
matched, per_ip = 0, Counter()
with open(log, encoding="utf-8", errors="surrogateescape") as f:
    for record in parse_lines(((n, t.rstrip("\n")) for n, t in enumerate(f, 1)), "syslog"):
        hit = classifier.classify(record)
        if hit is not None and record.time is not None:
            matched += 1
            per_ip[hit.ip] += 1
json.dump({"matched": matched, "per_ip": per_ip}, open(out, "w"))
"""
# fail2ban-regex run in-process by Debian's python, its report written to out
F2B_RUNNER = r"""
import runpy, sys
regex, etc, log, filt, out = sys.argv[1:6]
sys.stdout = open(out, "w")
sys.argv = [regex, "-c", etc, log, filt]
try:
    runpy.run_path(regex, run_name="__main__")
except SystemExit:
    pass
"""
# `zenctl logs parse` with its stdout counted by a reader process: argv = zenctl, log, out
PARSE_RUNNER = r"""
import json, subprocess, sys
zenctl, log, out = sys.argv[1:4]
proc = subprocess.Popen([zenctl, "logs", "parse", log, "--format", "syslog", "--jsonl"], stdout=subprocess.PIPE)
matched = sum(1 for line in proc.stdout if b'"security"' in line)
json.dump({"matched": matched, "code": proc.wait()}, open(out, "w"))
"""


def generate(bench: Path) -> dict:
    """auth_1M.log and its ground truth, generated once (seeded: the same bytes every time)."""
    log = DATA / "auth_1M.log"
    truth = DATA / "auth_1M.groundtruth.json"
    if not log.exists() or not truth.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(bench / "gen" / "authlog.py"), str(DATA)], check=True,
                       stdout=subprocess.DEVNULL)
    return json.loads(truth.read_text())


def fail2ban() -> tuple[Path, Path]:
    """fail2ban-regex and its config from Debian's package, unpacked into bench/.peers/fail2ban."""
    regex = F2B / "usr" / "bin" / "fail2ban-regex"
    if not regex.exists():
        F2B.mkdir(parents=True, exist_ok=True)
        debs = sorted(F2B.glob("fail2ban_*.deb"))
        if not debs:
            subprocess.run(["apt-get", "download", "fail2ban"], cwd=F2B, check=True, stdout=subprocess.DEVNULL)
            debs = sorted(F2B.glob("fail2ban_*.deb"))
        subprocess.run(["dpkg", "-x", str(debs[-1]), str(F2B)], check=True)
    return regex, F2B / "etc" / "fail2ban"


def run_python(code: str, *args: str, python: str = sys.executable, env: dict | None = None):
    return measure_argv([python, "-c", code, *args], env or user_env())


def row(name: str, lines: int, measured, matched: int, note: str = "") -> dict:
    wall, cpu, rss, code = measured
    return {"name": name, "wall": wall, "cpu": cpu, "rss": rss, "code": code, "matched": matched,
            "lines_per_s": lines / wall, "lines_per_cpu_s": lines / cpu if cpu else 0.0, "note": note}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", nargs="?")
    parser.add_argument("--mode", default="normal", choices=("normal", "aggressive"))
    parser.add_argument("--quick", action="store_true", help="leave out `zenctl logs parse` (slow: mines)")
    args = parser.parse_args()
    truth = generate(bench_dir(args.bench))
    log = DATA / "auth_1M.log"
    lines = truth["lines"]
    planted = truth["failure_lines_normal_mode"]
    out = DATA / "out.json"
    rows = []

    measured = run_python(RAW, args.mode, str(log), str(out))
    raw = json.loads(out.read_text())
    rows.append(row("zenctl classifier, raw lines (module)", lines, measured, raw["matched"],
                    f"{raw['timed']} failure lines timed"))
    measured = run_python(RECORDS, args.mode, str(log), str(out))
    records = json.loads(out.read_text())
    rows.append(row("zenctl classifier, records (module)", lines, measured, records["matched"]))

    regex, etc = fail2ban()
    f2b_env = {**user_env(), "PYTHONPATH": str(F2B / "usr" / "lib" / "python3" / "dist-packages")}
    report = DATA / "fail2ban.txt"
    filt = "sshd" if args.mode == "normal" else "sshd[mode=aggressive]"
    measured = run_python(F2B_RUNNER, str(regex), str(etc), str(log), filt, str(report), python="/usr/bin/python3",
                          env=f2b_env)
    summary = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed", report.read_text())
    rows.append(row(f"fail2ban-regex {F2B_VERSION} (Debian), filter {filt}", lines, measured,
                    int(summary.group(3)) if summary else -1, summary.group(0) if summary else "no summary line"))

    if not args.quick:
        measured = run_python(PARSE_RUNNER, str(Path(sys.executable).with_name("zenctl")), str(log), str(out))
        parsed = json.loads(out.read_text())
        rows.append(row("zenctl logs parse --format syslog --jsonl", lines, measured, parsed["matched"],
                        "parses, mines and prints every record"))

    f2b = next(r for r in rows if r["name"].startswith("fail2ban"))
    print(f"auth.log: {lines:,} lines, {planted:,} planted failure lines (Failed password / Invalid user), "
          f"filter mode {args.mode}; python {sys.version.split()[0]} (zenctl), /usr/bin/python3 (fail2ban)")
    print(f"{'':48} {'wall s':>8} {'lines/s':>10} {'CPU s':>7} {'lines/CPU s':>12} {'peak RSS':>9} {'matched':>9}"
          f"  {'vs fail2ban (wall, CPU)'}")
    for r in rows:
        ratio = (f"{r['lines_per_s'] / f2b['lines_per_s']:.1f}x, {r['lines_per_cpu_s'] / f2b['lines_per_cpu_s']:.1f}x"
                 if r is not f2b else "")
        print(f"{r['name']:48} {r['wall']:8.2f} {r['lines_per_s']:10,.0f} {r['cpu']:7.2f} {r['lines_per_cpu_s']:12,.0f}"
              f" {r['rss'] / 1048576:7.0f} MiB {r['matched']:9,}  {ratio}")
        if r["note"]:
            print(f"{'':48}   {r['note']}")
    if args.mode == "normal":
        top = {ip: n for ip, n in truth["top5"]}
        ok = (raw["matched"] == planted and records["matched"] == planted
              and all(raw["per_ip"].get(ip) == n for ip, n in top.items()))
        print(f"zenctl found {'all' if ok else 'NOT all'} {planted:,} planted failure lines (and the top 5 "
              f"attackers' counts exactly); fail2ban-regex matched {f2b['matched']:,}")
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
