"""The YAML entry points under attack (issue 10, items 6, 13, 14, 17, 19): clear located errors, never a
traceback or a hang, for protocols and case files alike.

Plus a hypothesis fuzz test over both loaders (fixed seed, bounded examples and a time budget): YAML-level
mutations (tags, anchors and aliases, deep nesting, odd scalars) spliced into the real protocol and a real
case file must give a model or a DocumentError whose every problem is one located line.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_helpers import bundled_text

from trialflow.documents._source import ALIAS_EXPANSION, MAX_BYTES, MAX_DEPTH
from trialflow.protocol import DocumentError, ProtocolError, parse_document, parse_protocol
from trialflow.rules.casefile import load_case, parse_case_text

CASE = (Path(__file__).parent / "cases" / "P-001.yaml").read_text(encoding="utf-8")
PROTOCOL = bundled_text()


def _messages(err: DocumentError | ProtocolError) -> list[str]:
    return [str(p) for p in err.problems]


@pytest.mark.parametrize("tagged", ["!!float x", "!!int 1.5", "!!int abc", "!!binary '%%'", "!!python/name:os.system",
                                    "!!timestamp nope", "!!bool maybe", "!!str 3"])
def test_yaml_tags_are_located_errors_in_case_files_and_protocols(tagged: str) -> None:
    case = CASE.replace("value: 95,", f"value: {tagged},", 1)
    with pytest.raises(DocumentError) as err:
        parse_case_text(case, "P-001.yaml")
    assert any("P-001.yaml:14:" in m and "YAML tag" in m and "is not accepted" in m for m in _messages(err.value)), \
        _messages(err.value)
    proto = PROTOCOL.replace("enrolment_target: 30", f"enrolment_target: {tagged}", 1)
    with pytest.raises(ProtocolError) as perr:
        parse_protocol(proto, "sorafenib.yaml")
    assert any("YAML tag" in m for m in _messages(perr.value)), _messages(perr.value)


def test_yaml_1_1_sexagesimal_and_other_number_surprises_are_not_numbers() -> None:
    """``value: 1:20`` was Tg 80 (YAML 1.1 base 60); now it is text, and the schema says a number is expected."""
    for raw in ("1:20", "0o17", "0x1f", "1_000", "0b101"):
        with pytest.raises(DocumentError) as err:
            parse_case_text(CASE.replace("value: 95,", f"value: {raw},", 1), "P-001.yaml")
        assert any("P-001.yaml:14:" in m for m in _messages(err.value)), (raw, _messages(err.value))
    assert parse_document("a: 1:20\nb: 12\nc: 1.5e3\nd: -7\n", "x").data == {"a": "1:20", "b": 12, "c": 1500.0,
                                                                              "d": -7}


@pytest.mark.parametrize("raw", [".nan", ".inf", "-.inf", "1e308", "1e999"])
def test_a_case_file_value_that_is_not_a_finite_number_in_range_is_refused(raw: str) -> None:
    with pytest.raises(DocumentError) as err:
        parse_case_text(CASE.replace("value: 95,", f"value: {raw},", 1), "P-001.yaml")
    assert any("P-001.yaml:14:" in m and "value" in m for m in _messages(err.value)), _messages(err.value)


def _nested_condition(depth: int) -> str:
    cond = "{criterion: rai_uptake, in: [reinduced]}"
    for _ in range(depth):
        cond = "{all: [" + cond + "]}"
    return cond


def test_deep_nesting_is_refused_with_the_limit_stated() -> None:
    proto = PROTOCOL.replace("when: {criterion: rai_uptake, in: [reinduced]}", f"when: {_nested_condition(163)}", 1)
    with pytest.raises(ProtocolError) as err:
        parse_protocol(proto, "deep.yaml")
    assert any(f"nested deeper than {MAX_DEPTH} levels" in m and m.startswith("deep.yaml:") for m in
               _messages(err.value)), _messages(err.value)
    with pytest.raises(DocumentError) as derr:
        parse_document("a: " + "[" * 200 + "]" * 200, "deep-case.yaml")
    assert "deep-case.yaml:1:" in str(derr.value) and f"nested deeper than {MAX_DEPTH} levels" in str(derr.value)
    with pytest.raises(DocumentError) as derr:  # deeper still: libyaml's own limit where PyYAML has libyaml, else ours
        parse_document("a: " + "[" * 5000 + "]" * 5000, "deeper.yaml")
    message = str(derr.value)
    assert "deeper.yaml:1:" in message
    assert "nesting depth" in message or f"nested deeper than {MAX_DEPTH} levels" in message, message


def test_an_alias_bomb_is_refused_at_once() -> None:
    """The 342-byte "billion laughs": 9 levels of 9 aliases each (9^9 nodes when expanded)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    bomb = "\n".join(lines) + "\n"
    for text in (bomb, CASE + "extra:\n  " + bomb.replace("\n", "\n  ")):
        with pytest.raises(DocumentError) as err:
            parse_document(text, "bomb.yaml")
        assert f"beyond {ALIAS_EXPANSION}x its size" in str(err.value)
    # a modest anchor reused a few times stays fine
    assert parse_document("base: &w {before: 3, after: 3}\nv1: *w\nv2: *w\n", "ok.yaml").data["v2"] == {
        "before": 3, "after": 3}


def test_an_oversized_case_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "huge.yaml"
    with big.open("w", encoding="utf-8") as f:
        f.write(CASE)
        f.write("# padding\n" * (MAX_BYTES // 10 + 10))
    with pytest.raises(DocumentError) as err:
        load_case(big)
    assert "huge.yaml:1:1" in str(err.value) and f"at most {MAX_BYTES // 2**20} MB" in str(err.value)


def test_case_file_parsing_grows_linearly() -> None:
    """Twice the observations cost about twice the work, not four times: counted in loader calls, not seconds."""
    import cProfile
    import pstats

    def calls(n: int) -> int:
        rows = "".join(f"  - {{kind: tgab, date: 2026-01-{1 + i % 28:02d}, result: negative}}\n" for i in range(n))
        text = "patient: P-001\nday0: 2026-01-12\nobservations:\n" + rows
        prof = cProfile.Profile()
        prof.enable()
        with contextlib.suppress(DocumentError):
            parse_case_text(text, "big.yaml")
        prof.disable()
        return sum(s[1] for s in pstats.Stats(prof).stats.values())  # type: ignore[attr-defined]

    small, large = calls(500), calls(2000)
    assert large < 5 * small, (small, large)


# -- fuzz ------------------------------------------------------------------------------------------
BUDGET_S = 20.0  # the whole fuzz test stops generating new work after this (CI time stays bounded)
_STARTED: list[float] = []

FRAGMENTS = st.sampled_from([
    "!!float x", "!!int", "!!str", "!!python/object:os.system", "!binary AAAA", "&a [1, *a]", "*nowhere",
    "&x {k: v}", "*x", "[" * 80 + "]" * 80, "{" * 70 + "}" * 70, "1:20", "0x1f", ".nan", "-.inf", "1e999",
    "~", "null", "yes", "2026-13-45", "9999-12-31", "'\x1b[31m'", "\"\\u202e\"", "? complex\n: key", "|\n  text",
    "- a\n- b", "{a: 1, a: 2}", "[a, b", "\t", "%YAML 1.1", "--- \n...", "<<: *x",
])


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(target=st.sampled_from(["protocol", "case"]), fragment=FRAGMENTS, where=st.floats(0, 1),
       replace_value=st.booleans())
def test_fuzz_yaml_mutations_give_a_model_or_located_errors(target: str, fragment: str, where: float,
                                                             replace_value: bool) -> None:
    if not _STARTED:
        _STARTED.append(time.monotonic())
    if time.monotonic() - _STARTED[0] > BUDGET_S:
        return
    text = PROTOCOL if target == "protocol" else CASE
    lines = text.splitlines()
    i = int(where * (len(lines) - 1))
    if replace_value and ": " in lines[i]:
        key, _ = lines[i].split(": ", 1)
        lines[i] = f"{key}: {fragment}"
    else:
        lines.insert(i, fragment)
    mutated = "\n".join(lines) + "\n"
    try:
        if target == "protocol":
            parse_protocol(mutated, "fuzz.yaml")
        else:
            parse_case_text(mutated, "fuzz.yaml")
    except (DocumentError, ProtocolError) as err:
        assert err.problems
        for p in err.problems:
            line = str(p)
            assert line.startswith("fuzz.yaml:") and "\n" not in line.strip(), line
