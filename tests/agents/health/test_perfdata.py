"""Plugin output read as the Monitoring Plugins development guidelines define it: their own examples, then what a
plugin may print that they do not allow (kept where it parses, counted and sampled where not, never raised); and
how the numbers come out in zenctl's Nagios perfdata and Prometheus text."""

import re
from dataclasses import asdict

import pytest

from zenctl.agents.health.probes.perfdata import MAX_METRICS, SAMPLES, parse_output, parse_perfdata
from zenctl.core.agent import Finding
from zenctl.core.formats import nagios_line, perfdata, prometheus_text
from zenctl.core.runtime import RunResult


def metrics(text: str) -> dict[str, dict]:
    return {m.label: asdict(m) for m in parse_perfdata(text).metrics}


def test_the_guidelines_ping_example():
    out = parse_output("PING OK - Packet loss = 0%, RTA = 12.44 ms|rta=12.445000ms;100.000000;200.000000;0.000000 "
                       "pl=0%;5;15;0\n")
    assert out.message == "PING OK - Packet loss = 0%, RTA = 12.44 ms"
    assert out.long_output == "" and out.malformed == 0
    rta, pl = (asdict(m) for m in out.metrics)
    assert rta == {"label": "rta", "value": 12.445, "unit": "ms", "warning": 100.0, "critical": 200.0, "min": 0.0,
                   "max": None, "warning_range": "100.000000", "critical_range": "200.000000"}
    assert (pl["label"], pl["value"], pl["unit"], pl["warning"], pl["critical"], pl["min"]) == \
        ("pl", 0.0, "%", 5.0, 15.0, 0.0)


def test_the_guidelines_multi_line_example():
    out = parse_output("DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
                       "/ 15272 MB (77%);\n"
                       "/boot 68 MB (69%);\n"
                       "/home 69357 MB (27%);\n"
                       "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
                       "/home=69357MB;253404;253409;0;253414 \n"
                       "/var/log=818MB;970;975;0;980\n")
    assert out.message == "DISK OK - free space: / 3326 MB (56%);"
    assert out.long_output == "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%);"
    assert [(m.label, m.value, m.unit, m.max) for m in out.metrics] == [
        ("/", 2643, "MB", 5968), ("/boot", 68, "MB", 98), ("/home", 69357, "MB", 253414),
        ("/var/log", 818, "MB", 980)]
    assert out.malformed == 0


def test_long_output_without_perfdata_and_a_message_without_a_bar():
    out = parse_output("CHECK OK - all fine\nfirst detail\nsecond detail\n")
    assert (out.message, out.long_output, out.metrics) == ("CHECK OK - all fine", "first detail\nsecond detail", [])
    assert out.evidence() == {"long_output": "first detail\nsecond detail"}
    out = parse_output("only a message\n")
    assert (out.message, out.evidence()) == ("only a message", {})


@pytest.mark.parametrize("text, number", [
    ("10", 10.0), ("10:", None), ("~:10", 10.0), ("10:20", None), ("@10:20", None), ("-5.5", -5.5), ("@~:0", None)])
def test_threshold_ranges_keep_their_text_and_a_number_where_one_upper_bound(text, number):
    (m,) = parse_perfdata(f"x=1;{text};{text}").metrics
    assert (m.warning_range, m.critical_range, m.warning, m.critical) == (text, text, number, number)


def test_quoted_labels_hold_spaces_and_quotes_and_U_is_unknown():
    seen = metrics("'free space /'=12B 'it''s'=U;1;2 ''''=3 plain=4c")
    assert seen["free space /"]["value"] == 12 and seen["free space /"]["unit"] == "B"
    assert seen["it's"]["value"] is None and seen["it's"]["warning"] == 1
    assert seen["'"]["value"] == 3 and seen["plain"]["unit"] == "c"


@pytest.mark.parametrize("text, kept, bad", [
    ("", [], 0),
    ("load1", [], 1),  # no '='
    ("=5", [], 1),
    ("''=5", [], 1),  # empty label
    ("a=abc b=2", ["b"], 1),
    ("a= b=2", ["b"], 1),
    ("a=1,5", [], 1),  # a comma decimal (a plugin in a German locale)
    ("a=1e999", [], 1),  # no float holds it
    ("a=nan b=inf", [], 2),
    ("a=1 a=2", ["a"], 1),  # a label twice: the first is kept
    ("'open=1 b=2 c=3", [], 1),  # a quote never closed: the rest of the line is not guessed at
    ("'ab'c=1 d=2", ["d"], 1),
    ("a=1;2:1;;;", ["a"], 1),  # start above end
    ("a=1;;;x;y", ["a"], 2),  # min and max not numbers: dropped, the value kept
    ("a=1;5;6;0;9;10", ["a"], 1),  # more than five fields
    ("a=1;@;~:", ["a"], 2),
    ("a=1,b=2", [], 1),
    ("a=1|b=2", [], 1),
])
def test_malformed_perfdata_keeps_what_parses_and_counts_the_rest(text, kept, bad):
    out = parse_perfdata(text)
    assert [m.label for m in out.metrics] == kept
    assert out.malformed == bad and len(out.samples) == min(bad, SAMPLES)


def test_samples_are_capped_and_a_flood_of_items_is_bounded():
    out = parse_perfdata(" ".join(f"x{i}=zz" for i in range(50)))
    assert out.malformed == 50 and len(out.samples) == SAMPLES
    assert out.samples[0] == "x0=zz (value is not a number or U)"
    out = parse_perfdata(" ".join(f"x{i}={i}" for i in range(MAX_METRICS + 5)))
    assert len(out.metrics) == MAX_METRICS and out.malformed == 5
    assert out.evidence()["perfdata_malformed"]["count"] == 5


def test_control_characters_from_a_plugin_are_escaped_everywhere():
    out = parse_output("OK \x1b]52;c;cm0gLXJmIC8K\x07 fine|'a\x1b[2Jb'=1\nlong \x1b[31mred\r\nend\n")
    assert out.message == "OK \\x1b]52;c;cm0gLXJmIC8K\\x07 fine"
    assert out.metrics[0].label == "a\\x1b[2Jb"
    assert out.long_output == "long \\x1b[31mred\nend"
    out = parse_perfdata("\x1b=zz")
    assert out.samples == ["\\x1b=zz (value is not a number or U)"]


def test_crlf_output_and_blank_output():
    out = parse_output("OK|a=1;2;3\r\nmore\r\n")
    assert (out.message, out.long_output, [m.value for m in out.metrics]) == ("OK", "more", [1])
    assert parse_output("").message == "" and parse_output("|a=1").metrics[0].label == "a"


def run_with(*findings: Finding) -> RunResult:
    return RunResult("r1", "system_health", "ok", False, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z",
                     list(findings))


def plugin_finding(check: str, output: str) -> Finding:
    parsed = parse_output(output)
    first = parsed.metrics[0] if parsed.metrics else None
    return Finding(check, "ok", parsed.message, first.value if first else None, None, first.unit if first else "",
                   {"perfdata": [asdict(m) for m in parsed.metrics]})


def test_nagios_perfdata_carries_the_plugin_ranges_min_max_and_quotes_labels():
    result = run_with(plugin_finding("service:disk", "DISK OK | /=24114102272B;216442024755;243497277849;0;"
                                                     "270552530944 'it''s free'=U;@1:2;~:3 tiny=0.00001s"))
    assert perfdata(result) == ["service:disk./=24114102272B;216442024755;243497277849;0;270552530944",
                                "'service:disk.it''s free'=U;@1:2;~:3", "service:disk.tiny=0.00001s"]
    assert nagios_line(result) == "SYSTEM_HEALTH OK - 1 checks OK | " + " ".join(perfdata(result))


def test_prometheus_text_keeps_plugin_labels_as_escaped_label_values():
    result = run_with(plugin_finding("service:web", "OK | 'say \"hi\" \\ now'=1;5;10;0;100 unknown=U 'a\x1bb'=2"))
    text = prometheus_text(result)
    assert 'zenctl_service_metric{agent="system_health",check="service:web",metric="say \\"hi\\" \\\\ now",' \
           'unit=""} 1' in text
    assert 'zenctl_service_metric_warning{agent="system_health",check="service:web",metric="say \\"hi\\" \\\\ now",' \
           'unit=""} 5' in text
    assert 'zenctl_service_metric_max{agent="system_health",check="service:web",metric="say \\"hi\\" \\\\ now",' \
           'unit=""} 100' in text
    assert 'metric="a\\\\x1bb"' in text and 'metric="unknown"' not in text  # `U`: no sample
    value = r'"(?:[^"\\\n]|\\[\\"n])*"'
    for sample in text.splitlines():
        assert sample.startswith("#") or re.fullmatch(
            rf'[a-zA-Z_:][a-zA-Z0-9_:]*\{{[a-zA-Z_][a-zA-Z0-9_]*={value}(?:,[a-zA-Z_][a-zA-Z0-9_]*={value})*\}} '
            r'-?[0-9.]+', sample), sample
