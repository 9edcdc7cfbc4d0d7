"""``trialflow protocol validate | show | schema | diagram`` through typer's CliRunner, as a user runs them.

Click ≥ 8.2 keeps stdout and stderr apart in every result (``result.stdout`` / ``result.stderr``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from protocol_helpers import edit, where
from typer.testing import CliRunner

from trialflow.cli import app
from trialflow.protocol import ProtocolError, bundled_protocol_path, load_bundled_protocol, parse_protocol

runner = CliRunner()
ERROR_LINE = re.compile(r"^(?P<file>.+):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): (?P<path>\$\S*): (?P<msg>.+)$")


def _run(*args: str) -> Any:
    result = runner.invoke(app, ["protocol", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def _write(tmp_path: Path, name: str, text: str) -> Path:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


@pytest.fixture
def two_broken(tmp_path: Path, bundled_protocol_text: str) -> tuple[Path, Path]:
    a = edit(bundled_protocol_text, "    anchor: day0\n", "    anchr: day0\n")
    a = edit(a, "  enrolment_target: 30\n", "  enrolment_target: thirty\n")
    b = edit(bundled_protocol_text, "      rule: tg_slope\n", "      rule: tg_slop\n")
    b = edit(b, "      default: true\n", "")
    return _write(tmp_path, "a.yaml", a), _write(tmp_path, "b.yaml", b)


# --- validate -------------------------------------------------------------------------------------------


def test_validate_good_file_prints_one_summary_line() -> None:
    result = _run("validate", str(bundled_protocol_path()))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    proto = load_bundled_protocol()
    assert lines[0].startswith(f"{bundled_protocol_path()}: valid — sorafenib-dtc v1.0, ")
    assert f"{len(proto.phases)} phases" in lines[0] and "3 criteria, 3 branches" in lines[0]
    assert proto.content_hash[:12] in lines[0]
    assert result.stderr == ""


def test_validate_bad_files_prints_every_error_line_on_stderr(two_broken: tuple[Path, Path]) -> None:
    a, b = two_broken
    result = _run("validate", str(a), str(b))
    assert result.exit_code == 1
    assert result.stdout == ""
    expected: list[str] = []
    for f in (a, b):
        with pytest.raises(ProtocolError) as caught:
            parse_protocol(f.read_text(encoding="utf-8"), str(f))
        expected += [str(p) for p in caught.value.problems]
    lines = result.stderr.splitlines()
    assert lines == expected
    assert len(lines) == 5
    for line in lines:
        m = ERROR_LINE.match(line)
        assert m, line
        assert m["file"] in (str(a), str(b))


def test_validate_mixed_files_reports_the_good_and_fails(tmp_path: Path, bundled_protocol_text: str) -> None:
    text = edit(bundled_protocol_text, "  enrolment_target: 30\n", "  enrolment_target: 30: 31\n")
    bad = _write(tmp_path, "bad.yaml", text)
    good = _write(tmp_path, "good.yaml", bundled_protocol_text)
    result = _run("validate", str(good), str(bad))
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{good}: valid")
    [line] = result.stderr.splitlines()
    line_no, col = where(text, ": 31")
    assert line.startswith(f"{bad}:{line_no}:{col}: $: YAML syntax error: mapping values are not allowed")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "the document is empty"),
        (b"study: \xff\n", "not UTF-8 text (byte 0xff"),
        (b"!!python/object/apply:os.system ['true']\n", "is not accepted"),
        (b"a: &x [*x]\n", "refers to the collection that contains it"),
    ],
)
def test_validate_unusable_files_fail_cleanly(tmp_path: Path, content: bytes | None, message: str) -> None:
    f = tmp_path / "input.yaml"
    if content is not None:
        f.write_bytes(content)
    result = _run("validate", str(f))
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    m = ERROR_LINE.match(line)
    assert m and m["file"] == str(f), line
    assert message in m["msg"]


def test_validate_without_files_is_a_usage_error() -> None:
    result = runner.invoke(app, ["protocol", "validate"])
    assert result.exit_code == 2


# --- show -------------------------------------------------------------------------------------------------


def test_show_prints_the_schedule_doses_and_branches() -> None:
    result = _run("show")
    assert result.exit_code == 0
    out = result.stdout
    flat = " ".join(out.split())
    # the 8 Tg visits at weeks 0..28 of the 6-month phase, by target day
    for week in range(0, 29, 4):
        assert f"{7 * week}=tg_w{week}" in flat
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "(sorafenib_6m): study day" in line)
    header = next(line for line in lines[start:] if line.lstrip().startswith("day →"))
    assert header.split()[2:] == ["0", "28", "56", "84", "112", "140", "168", "182", "182", "196"]
    tg_row = next(line for line in lines[start:] if line.lstrip().startswith("tg "))
    assert tg_row.count("X") == 8
    assert "6000 MBq" in out
    assert "800 mg/day" in out
    branches = out[out.index("Branches (first match wins)") :]
    for n, dest in enumerate(["rai_plus_sorafenib", "continued_sorafenib", "off_study"], 1):
        assert re.search(rf"│ {n} │.*│ {dest} +│", branches), dest
    assert not re.search(r"│ 4 │", branches)
    assert "otherwise (default)" in branches


def test_show_a_file_is_the_same_as_the_default(tmp_path: Path, bundled_protocol_text: str) -> None:
    f = _write(tmp_path, "copy.yaml", bundled_protocol_text)
    default, given = _run("show"), _run("show", str(f))
    assert given.exit_code == 0
    assert default.stdout.replace(str(bundled_protocol_path()), "FILE") == given.stdout.replace(
        str(f), "FILE"
    )


def test_show_a_bad_file_prints_errors_not_a_traceback(two_broken: tuple[Path, Path]) -> None:
    a, _ = two_broken
    result = _run("show", str(a))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and all(ERROR_LINE.match(line) for line in lines)


def test_show_json_has_the_model_keys() -> None:
    result = _run("show", "--json")
    assert result.exit_code == 0
    d = json.loads(result.stdout)
    assert d == json.loads(json.dumps(load_bundled_protocol().to_dict()))
    assert {
        "study",
        "eligibility",
        "assessments",
        "phases",
        "transitions",
        "early_termination",
        "decision",
        "content_hash",
    } <= set(d)
    assert all("id" in c for c in d["eligibility"]["inclusion"] + d["eligibility"]["exclusion"])
    assert {"rai_plus_sorafenib", "continued_sorafenib", "off_study"} <= set(d["phases"])
    assert all(d["phases"][pid]["id"] == pid for pid in d["phases"])
    assert d["decision"]["criteria"][1]["params"]["alpha"] == 0.05


# --- schema -----------------------------------------------------------------------------------------------


def _undescribed(node: Any, root: dict[str, Any], where: str) -> list[str]:
    """JSON pointers of properties without a description (a bare $ref counts if its target has one)."""
    out: list[str] = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            target = sub
            if "description" not in sub and "$ref" in sub:
                target = root
                for part in sub["$ref"].removeprefix("#/").split("/"):
                    target = target[part]
            if not str(target.get("description", "")).strip():
                out.append(f"{where}/properties/{name}")
        for key, sub in node.items():
            out += _undescribed(sub, root, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            out += _undescribed(sub, root, f"{where}/{i}")
    return out


def test_schema_is_a_valid_draft_2020_12_schema_describing_every_property() -> None:
    result = _run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert _undescribed(schema, schema, "#") == []
    assert schema["additionalProperties"] is False
    # an editor validating the bundled YAML with this schema alone accepts it
    data = yaml.safe_load(bundled_protocol_path().read_text(encoding="utf-8"))
    assert list(Draft202012Validator(schema).iter_errors(data)) == []


# --- diagram ----------------------------------------------------------------------------------------------


def test_diagram_is_mermaid_state_diagram_with_every_phase() -> None:
    result = _run("diagram")
    assert result.exit_code == 0
    text = result.stdout
    front, body = text.split("\n---\n", 1)
    assert front.startswith("---\n")
    assert yaml.safe_load(front.removeprefix("---\n")) == {"title": "sorafenib-dtc v1.0"}
    assert body.lstrip().startswith("stateDiagram-v2")
    proto = load_bundled_protocol()
    for p in proto.phases:
        assert re.search(rf'^\s*state ".+" as {p.id}$', body, re.M), p.id
    for b in proto.decision.branches:
        assert f"{proto.decision.phase} --> {b.to}:" in body
    assert "[*] --> screening" in body


# --- import cost ------------------------------------------------------------------------------------------


def test_importing_the_cli_does_not_import_scipy_stats() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import trialflow.cli"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "trialflow.cli" in imported
    assert not {m for m in imported if m == "scipy.stats" or m.startswith("scipy.stats.")}


def test_error_lines_are_printed_verbatim(tmp_path: Path, bundled_protocol_text: str) -> None:
    """Rich must not turn ``:smile:`` into an emoji or ``[bold]`` into markup inside an error line."""
    text = edit(
        bundled_protocol_text, "  enrolment_target: 30\n", '  enrolment_target: 30\n  ":smile:[bold]": 1\n'
    )
    f = _write(tmp_path, "emoji.yaml", text)
    result = _run("validate", str(f))
    assert result.exit_code == 1
    line_no, col = where(text, '":smile:')
    assert result.stderr == f"{f}:{line_no}:{col}: $.study[':smile:[bold]']: unknown key ':smile:[bold]'\n"
