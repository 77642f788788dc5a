"""Config parsing: defaults, the seed's example, file:line errors, environment overrides, value sources."""

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zenctl.core.config import load_config
from zenctl.errors import ConfigError

SEED_EXAMPLE = """\
agents:
  system_health:
    enabled: true
    interval: 300  # seconds
    cpu_threshold: 80
    memory_threshold: 90
    auto_mitigate: true

  dependency_manager:
    enabled: true
    schedule: "0 3 * * *"  # Daily at 3 AM
    security_updates: auto
    minor_updates: notify
    major_updates: disabled
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "zenctl.yaml"
    path.write_text(text)
    return str(path)


def error_of(tmp_path: Path, text: str, environ: dict | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ or {})
    return str(caught.value)


def test_no_file_means_embedded_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loaded = load_config(None, {"XDG_CONFIG_HOME": str(tmp_path / "none"), "HOME": str(tmp_path)})
    assert loaded.path is None or loaded.path == Path("/etc/zenctl/zenctl.yaml")
    assert loaded.config.agents.system_health.cpu_threshold == 80
    assert loaded.source(("agents", "system_health", "cpu_threshold")) == "default"


def test_seed_example_loads_as_is(tmp_path):
    loaded = load_config(write(tmp_path, SEED_EXAMPLE), {})
    assert loaded.config.agents.dependency_manager.schedule == "0 3 * * *"
    assert loaded.config.agents.dependency_manager.major_updates == "disabled"
    assert loaded.source(("agents", "system_health", "cpu_threshold")).endswith("zenctl.yaml:5")


def test_lookup_order_prefers_explicit_then_env_then_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "zenctl.yaml").write_text("agents: {system_health: {cpu_threshold: 50, cpu_warning: 40}}\n")
    other = tmp_path / "other.yaml"
    other.write_text("agents: {system_health: {cpu_threshold: 60, cpu_warning: 40}}\n")
    assert load_config(None, {}).config.agents.system_health.cpu_threshold == 50
    assert load_config(None, {"ZENCTL_CONFIG": str(other)}).config.agents.system_health.cpu_threshold == 60
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "missing.yaml"), {})


def test_out_of_range_threshold_names_file_line_key_and_value(tmp_path):
    message = error_of(tmp_path, "agents:\n  system_health:\n    cpu_threshold: 180\n")
    assert "zenctl.yaml:3: agents.system_health.cpu_threshold" in message
    assert "180" in message and "\n" not in message


def test_unknown_key_is_an_error_with_its_line(tmp_path):
    message = error_of(tmp_path, "agents:\n  system_health:\n    cpu_treshold: 80\n")
    assert "zenctl.yaml:3: agents.system_health.cpu_treshold: unknown key" in message


def test_wrong_type(tmp_path):
    message = error_of(tmp_path, "agents:\n  system_health:\n    interval: soon\n")
    assert "zenctl.yaml:3: agents.system_health.interval" in message and "'soon'" in message


def test_malformed_yaml_names_the_line(tmp_path):
    message = error_of(tmp_path, "agents:\n  system_health:\n    cpu_threshold: [80\n  x: 1\n")
    assert "zenctl.yaml:" in message and "invalid YAML" in message


def test_duplicate_key_is_an_error(tmp_path):
    assert "zenctl.yaml:3: agents.system_health: duplicate key" in error_of(
        tmp_path, "agents:\n  system_health: {}\n  system_health: {}\n")


def test_unquoted_mode_is_refused_with_advice(tmp_path):
    message = error_of(tmp_path, "agents:\n  system_health:\n    paths:\n      - path: /srv/x\n        mode: 0750\n")
    assert "zenctl.yaml:5: agents.system_health.paths.0.mode" in message and "quoted" in message


def test_warning_above_critical_is_refused(tmp_path):
    assert "zenctl.yaml:2: agents.system_health: cpu_warning (90) is above cpu_threshold (80)" in error_of(
        tmp_path, "agents:\n  system_health:\n    cpu_warning: 90\n")


def test_unknown_action_kind_in_policy_modes(tmp_path):
    message = error_of(tmp_path, "policy:\n  modes:\n    fs.chmd: auto\n")
    assert "zenctl.yaml:3: policy.modes" in message and "fs.chmd" in message and "fs.chmod" in message


def test_policy_family_and_kind_accepted(tmp_path):
    loaded = load_config(write(tmp_path, "policy:\n  modes:\n    fs.*: notify\n    fs.chown: approve\n"), {})
    assert loaded.config.policy.modes == {"fs.*": "notify", "fs.chown": "approve"}


def test_top_level_must_be_a_mapping(tmp_path):
    assert "must be a mapping" in error_of(tmp_path, "- a\n- b\n")


def test_environment_overrides_the_file_and_is_the_source(tmp_path):
    environ = {"AGENT_SYSTEM_HEALTH_ENABLED": "false", "ALERT_EMAIL": "a@example.com, b@example.com",
               "ALERT_PAGERDUTY_ENABLED": "true", "MAX_AUTO_REPAIRS_PER_HOUR": "7"}
    loaded = load_config(write(tmp_path, SEED_EXAMPLE), environ)
    c = loaded.config
    assert c.agents.system_health.enabled is False
    assert c.alerts.email.to == ["a@example.com", "b@example.com"]
    assert c.alerts.pagerduty.enabled is True and c.policy.max_auto_repairs_per_hour == 7
    assert loaded.source(("agents", "system_health", "enabled")) == "env:AGENT_SYSTEM_HEALTH_ENABLED"
    assert loaded.source(("policy", "max_auto_repairs_per_hour")) == "env:MAX_AUTO_REPAIRS_PER_HOUR"


def test_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"MAX_AUTO_REPAIRS_PER_HOUR": "lots", "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)})
    assert str(caught.value).startswith("environment variable MAX_AUTO_REPAIRS_PER_HOUR='lots'")


@settings(max_examples=60, deadline=None)
@given(cpu=st.integers(0, 100), memory=st.integers(0, 100), interval=st.integers(1, 86400))
def test_any_valid_threshold_round_trips_with_its_line(tmp_path_factory, cpu, memory, interval):
    tmp = tmp_path_factory.mktemp("c")
    text = (f"agents:\n  system_health:\n    cpu_threshold: {cpu}\n    cpu_warning: {min(cpu, 10)}\n"
            f"    memory_threshold: {memory}\n    memory_warning: {min(memory, 5)}\n    interval: {interval}\n")
    loaded = load_config(write(tmp, text), {})
    health = loaded.config.agents.system_health
    assert (health.cpu_threshold, health.memory_threshold, health.interval) == (cpu, memory, interval)
    assert loaded.source(("agents", "system_health", "memory_threshold")).endswith(":5")


@settings(max_examples=60, deadline=None)
@given(key=st.text(string.ascii_lowercase + "_", min_size=1, max_size=20), line_before=st.integers(0, 5))
def test_any_unknown_key_is_reported_at_its_line(tmp_path_factory, key, line_before):
    from zenctl.agents.health.config import SystemHealthConfig

    if key in SystemHealthConfig.model_fields:
        return
    tmp = tmp_path_factory.mktemp("c")
    filler = "".join(f"    cpu_window: {300 + i}\n" for i in range(min(line_before, 1)))
    text = f"agents:\n  system_health:\n{filler}    {key}: 1\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp, text), {})
    line = f"zenctl.yaml:{3 + len(filler.splitlines())}: agents.system_health."
    assert line in str(caught.value)
    assert "unknown key" in str(caught.value) or "quote it" in str(caught.value)  # `no:` is a boolean to YAML


def test_governance_settings_durations_and_cron(tmp_path):
    from zenctl.core.config import check_config, load_config

    path = tmp_path / "z.yaml"
    path.write_text('policy:\n  approval_expiry: 2h\nalerts:\n  maintenance:\n    - schedule: "61 * * * *"\n'
                    '      duration: 1h\n')
    _, messages = check_config(str(path), {})
    assert messages == [f"{path}:5: alerts.maintenance.0.schedule: is not a valid cron expression (got '61 * * * *')"]
    path.write_text('policy:\n  approval_expiry: 2h\nescalation:\n  backoff_base: soon\n')
    _, messages = check_config(str(path), {})
    assert messages[0].startswith(f"{path}:4: escalation.backoff_base: must be a duration")
    path.write_text('policy:\n  approval_expiry: 2h\n')
    assert load_config(str(path), {}).config.policy.approval_expiry == 7200


def test_interval_or_schedule_and_run_as(tmp_path):
    from zenctl.core.config import check_config, load_config

    path = tmp_path / "z.yaml"
    path.write_text('agents:\n  system_health:\n    schedule: "*/10 * * * *"\n  dependency_manager:\n'
                    '    interval: 3600\n    run_as: "zenctl-deps:zenctl"\n')
    agents = load_config(str(path), {}).config.agents
    assert (agents.system_health.interval, agents.system_health.schedule) == (None, "*/10 * * * *")
    assert (agents.dependency_manager.interval, agents.dependency_manager.schedule) == (3600, None)
    assert agents.dependency_manager.run_as == "zenctl-deps:zenctl"
    path.write_text('agents:\n  system_health:\n    interval: 60\n    schedule: "* * * * *"\n')
    _, messages = check_config(str(path), {})
    assert messages == [f"{path}:2: agents.system_health: set interval or schedule, not both"]
    path.write_text('agents:\n  log_analyzer:\n    schedule: "0 25 * * *"\n')
    _, messages = check_config(str(path), {})
    assert messages == [f"{path}:3: agents.log_analyzer.schedule: is not a valid cron expression (got '0 25 * * *')"]
    path.write_text('agents:\n  log_analyzer:\n    run_as: "root; rm -rf /"\n')
    _, messages = check_config(str(path), {})
    assert messages[0].startswith(f"{path}:3: agents.log_analyzer.run_as: must be an account name")
