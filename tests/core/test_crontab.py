"""The marked block in a crontab: installed in place or appended, removed exactly, a damaged block refused."""

import pytest

from zenctl.core.crontab import BEGIN, END, block, merge
from zenctl.errors import UsageError

OTHER = "MAILTO=ops@example.com\n# nightly backup\n15 1 * * * /usr/local/bin/backup --all\n"


def _block(*lines):
    return "\n".join([BEGIN, *lines, END]) + "\n"


def test_install_appends_and_remove_restores_exactly():
    new = merge(OTHER, _block("* * * * * zenctl run system_health --due --quiet"))
    assert new == OTHER + _block("* * * * * zenctl run system_health --due --quiet")
    assert merge(new, "") == OTHER


def test_install_replaces_the_block_in_place_and_is_idempotent():
    first = merge(OTHER, _block("*/5 * * * * a"))
    tail = "0 4 * * * /usr/bin/other\n"
    edited = first + tail
    second = merge(edited, _block("* * * * * b"))
    assert second == OTHER + _block("* * * * * b") + tail
    assert merge(second, _block("* * * * * b")) == second


def test_a_crontab_without_final_newline_keeps_its_last_line():
    assert merge("0 1 * * * x", _block("a")) == "0 1 * * * x\n" + _block("a")
    assert merge("", "") == ""


@pytest.mark.parametrize("damaged", [OTHER + BEGIN + "\n* * * * * a\n", OTHER + END + "\n",
                                     _block("a") + _block("b")])
def test_a_damaged_block_is_refused_with_its_line(damaged):
    with pytest.raises(UsageError, match="crontab line"):
        merge(damaged, _block("c"))


def test_block_is_empty_without_lines():
    assert block([]) == ""


def test_a_line_with_a_control_character_is_refused_and_percent_is_escaped():
    from pathlib import Path

    from zenctl.core.config import Config, LoadedConfig
    from zenctl.core.crontab import lines

    entries, _ = lines(LoadedConfig(Config(), Path("/srv/50%/zenctl.yaml")), Path("/var/lib/zenctl/a%b.db"), False)
    assert "ZENCTL_DB=/var/lib/zenctl/a\\%b.db" in entries[0].command and "/srv/50\\%/" in entries[0].command
    entries, _ = lines(LoadedConfig(Config()), Path("/tmp/x\n* * * * * id #/zenctl.db"), False)
    with pytest.raises(UsageError, match=r"control character.*/tmp/x\\x0a\* \* \* \* \* id #"):
        block(entries)
