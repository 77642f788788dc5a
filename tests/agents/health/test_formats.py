"""`--format nagios` and `--prom-textfile`: what other monitoring systems read."""

import json
import os
import re

import pytest

from tests.conftest import CALM
from tests.agents.health.test_services import plugin, script
from tests.servers import free_port

pytestmark = pytest.mark.integration


def config_with(zenctl, *entries):
    return zenctl.config(CALM + "    services: " + json.dumps(list(entries)) + "\n")


def test_nagios_line_has_status_problems_and_perfdata(zenctl):
    port = free_port()
    config = config_with(zenctl, {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": port},
                         {"name": "ok", "command": "echo fine"})
    done = zenctl("health", "check", "-c", str(config), "--format", "nagios")
    assert done.returncode == 2
    (line,) = done.stdout.splitlines()
    status, perf = line.split(" | ")
    assert status == f"SYSTEM_HEALTH CRITICAL - CRITICAL db: 127.0.0.1:{port}: Connection refused"
    labels = [item.split("=")[0] for item in perf.split(" ")]
    assert {"cpu", "load", "memory", "disk:/"} <= set(labels)
    assert re.search(r"(^| )memory=[0-9.]+%;100;100( |$)", perf), perf

    calm = config_with(zenctl, {"name": "ok", "command": "echo fine"})
    done = zenctl("health", "check", "-c", str(calm), "--format", "nagios")
    assert done.returncode == 0 and re.match(r"SYSTEM_HEALTH OK - \d+ checks OK \| ", done.stdout)


def test_prometheus_textfile_is_written_atomically_with_every_check(zenctl, tmp_path):
    port = free_port()
    config = config_with(zenctl, {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": port},
                         {"name": "self", "type": "process", "pattern": "zenctl"})
    target = tmp_path / "textfile" / "zenctl.prom"
    target.parent.mkdir()
    target.write_text("old content\n")
    done = zenctl("health", "check", "-c", str(config), "--prom-textfile", str(target), "-q")
    assert done.returncode == 2
    text = target.read_text()
    assert os.listdir(target.parent) == ["zenctl.prom"]  # no temporary file left behind
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert 'zenctl_check_status{agent="system_health",check="service:db"} 2' in text
    assert re.search(r'zenctl_check_value\{agent="system_health",check="memory",unit="%"\} [0-9.]+', text)
    assert 'zenctl_run_status{agent="system_health"} 2' in text
    assert "# TYPE zenctl_check_status gauge" in text
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(families) == len(set(families))
    for line in text.splitlines():  # every sample line parses as name{labels} value
        assert line.startswith("#") or re.fullmatch(r'[a-z_]+\{[^}]*\} -?[0-9.e+-]+', line), line


def test_prometheus_textfile_in_a_missing_directory_is_refused_before_the_run(zenctl, tmp_path):
    done = zenctl("health", "check", "--prom-textfile", str(tmp_path / "nope" / "z.prom"))
    assert done.returncode == 3
    assert done.stderr == f"zenctl: --prom-textfile {tmp_path}/nope/z.prom: directory {tmp_path}/nope does not " \
                          "exist\n"
    assert not zenctl.db.exists()


LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf'[a-zA-Z_:][a-zA-Z0-9_:]*\{{[a-zA-Z_]\w*={LABEL_VALUE}(?:,[a-zA-Z_]\w*={LABEL_VALUE})*\}} '
                    r'-?[0-9.]+')


def test_real_plugins_perfdata_reaches_the_nagios_line_and_the_prometheus_textfile(zenctl, tmp_path):
    odd = script(tmp_path, "odd", "ODD OK | 'say \"hi\" \\ it''s'=1.5s;@1:2;~:3;0;9 unknown=U 'esc\x1b[2J'=4\n")
    config = config_with(zenctl, {"name": "load", "command": f"{plugin('check_load')} -w 1000 -c 2000"},
                         {"name": "disk", "command": f"{plugin('check_disk')} -w 10% -c 5% -p /"},
                         {"name": "odd", "command": odd})
    target = tmp_path / "zenctl.prom"
    done = zenctl("health", "check", "-c", str(config), "--format", "nagios", "--prom-textfile", str(target))
    (line,) = done.stdout.splitlines()
    head, perf = line.split(" | ")
    assert done.returncode == 0 and head.startswith("SYSTEM_HEALTH OK - ")
    assert re.search(r"(^| )service:load\.load1=[0-9.]+;1000\.000;2000\.000;0( |$)", perf), perf
    assert re.search(r"(^| )service:disk\./=[0-9]+B;[0-9]+;[0-9]+;0;[0-9]+( |$)", perf), perf
    assert " 'service:odd.say \"hi\" \\ it''s'=1.5s;@1:2;~:3;0;9 service:odd.unknown=U " \
           "service:odd.esc\\x1b[2J=4" in perf
    assert "\x1b" not in line

    text = target.read_text()
    disk = re.search(r'zenctl_service_metric\{agent="system_health",check="service:disk",metric="/",unit="B"\} '
                     r'([0-9]+)\n', text)
    assert disk and f"service:disk./={disk.group(1)}B;" in perf  # the same number, exactly, in both
    assert re.search(r'zenctl_service_metric_critical\{agent="system_health",check="service:load",'
                     r'metric="load15",unit=""\} 2000\n', text)
    assert 'zenctl_service_metric{agent="system_health",check="service:odd",metric="say \\"hi\\" \\\\ it\'s",' \
           'unit="s"} 1.5\n' in text
    assert 'metric="esc\\\\x1b[2J"' in text and 'metric="unknown"' not in text and "\x1b" not in text
    families = [row.split()[2] for row in text.splitlines() if row.startswith("# TYPE")]
    assert len(families) == len(set(families))
    samples = [row for row in text.splitlines() if not row.startswith("#")]
    assert len(samples) == len(set(row.rsplit(" ", 1)[0] for row in samples))  # no series twice
    for row in samples:
        assert SAMPLE.fullmatch(row), row
