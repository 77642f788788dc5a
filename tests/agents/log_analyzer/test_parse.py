"""`zenctl logs parse FILE` as a subprocess: one JSON object per record (line, template_id, template, params,
security), ids that merged while the file was read come out final, any format, hostile files, no state."""

import gzip
import json
from pathlib import Path


def rows(done) -> list[dict]:
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_records_templates_params_and_security(zenctl, tmp_path):
    log = tmp_path / "auth.log"
    users = ["alice", "bob", "carol", "dave", "erin"]
    log.write_text("".join(f"Nov 25 10:00:0{n} web1 sshd[{n}]: Invalid user {u} from 203.0.113.{n}\n"
                           for n, u in enumerate(users))
                   + "Nov 25 10:00:09 web1 sshd[9]: Accepted publickey for root from 198.51.100.1 port 22 ssh2\n"
                   + "not syslog at all \x1b]52;c;x\x07\n")
    out = rows(zenctl("logs", "parse", str(log), "--jsonl"))
    assert [r["line"] for r in out] == [1, 2, 3, 4, 5, 6, 7]
    # the first lines were mined before "user" took its fourth word; they come out with the merged id
    assert len({r["template_id"] for r in out[:5]}) == 1 and out[0]["template"] == "Invalid user <*> from <*>"
    assert [r["params"] for r in out[:2]] == [["alice", "203.0.113.0"], ["bob", "203.0.113.1"]]
    assert out[0]["security"] == {"jail": "sshd", "ip": "203.0.113.0"} and "security" not in out[5]
    assert out[0]["program"] == "sshd" and out[0]["host"] == "web1" and out[0]["time"].endswith("Z")
    assert out[6]["unparsed"] is True and "\x1b" not in zenctl("logs", "parse", str(log)).stdout
    assert not zenctl.db.exists()  # no state opened, none written


def test_formats_multiline_regex_and_gzip(zenctl, tmp_path):
    app = tmp_path / "app.log"
    app.write_text("2024-01-01 12:00:00,000 ERROR app.db: query failed\nTraceback (most recent call last):\n"
                   '  File "db.py", line 3, in run\nValueError: bad\n2024-01-01 12:00:01,000 INFO app: ok\n')
    out = rows(zenctl("logs", "parse", str(app), "--format", "python"))
    assert [r["line"] for r in out] == [1, 5] and out[0]["level"] == "error"
    assert out[0]["traceback"] == {"type": "ValueError", "frame": "db.py:run"}
    custom = tmp_path / "custom.log"
    custom.write_text("id=1 say=hello 7 times\nid=2 say=hello 9 times\n")
    out = rows(zenctl("logs", "parse", str(custom), "--format", "regex", "--pattern", r"id=\d+ say=(?P<message>.*)"))
    assert out[0]["template"] == "hello <*> times" and out[1]["params"] == ["9"]
    packed = tmp_path / "old.log.gz"
    packed.write_bytes(gzip.compress(app.read_bytes()))
    assert len(rows(zenctl("logs", "parse", str(packed)))) == 2


def test_hostile_files_and_bad_arguments(zenctl, tmp_path):
    log = tmp_path / "bad.log"
    with log.open("wb") as fh:
        fh.write(b"Nov 25 10:00:00 h app[1]: " + b"A" * 10_000_000 + b"\n")
        fh.write(b"\x00\x01\x02 binary \xff\xfe\n")
        fh.write(b"Nov 25 10:00:01 h app[1]: after the long line\n")
    out = rows(zenctl("logs", "parse", str(log)))
    assert [r["line"] for r in out] == [1, 2, 3] and out[2]["template"] == "after the long line"
    assert "\\xff\\xfe" in out[1]["template"] + "".join(out[1]["params"])
    assert len(json.dumps(out[0])) < 200_000
    done = zenctl("logs", "parse", str(tmp_path / "missing.log"))
    assert done.returncode == 3 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    done = zenctl("logs", "parse", str(log), "--format", "regex", "--pattern", "(?P<message")
    assert done.returncode == 3 and "pattern" in done.stderr and "Traceback" not in done.stderr
    done = zenctl("logs", "parse", str(Path(tmp_path)))
    assert done.returncode == 3 and "Traceback" not in done.stderr
