"""Every class of protocol error, each made by one edit of the real protocol, located exactly.

Each test states the edit, then asserts the line, column, JSON path and message of what the loader
reports. Positions are taken from the edited text (``where``): the token the error must point at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from protocol_helpers import BROKEN, broken, bundled_text, edit, find, only, problems_of, where

from trialflow.protocol import Problem, ProtocolError, load_protocol, parse_protocol

# --- YAML ------------------------------------------------------------------------------------------


def test_yaml_syntax_error_points_at_the_offending_colon() -> None:
    text, problems = broken("  enrolment_target: 30\n", "  enrolment_target: 30: 31\n")
    p = only(problems)
    assert (p.file, p.path) == (BROKEN, "$")
    assert (p.line, p.column) == where(text, ": 31")
    assert p.message.startswith("YAML syntax error: mapping values are not allowed")


def test_yaml_syntax_error_in_a_flow_mapping_names_the_flow_mapping() -> None:
    text, problems = broken(
        "assessments: [tg], source: synopsis}\n      - {id: tg_w8,",
        "assessments: [tg], source: synopsis\n      - {id: tg_w8,",
    )
    p = only(problems)
    # reported where the unclosed mapping starts (PyYAML's context mark), with where PyYAML noticed it
    assert (p.line, p.column) == where(text, "{id: tg_w4,")
    assert "YAML syntax error" in p.message and "flow mapping" in p.message
    noticed = where(text, "{id: tg_w8,")
    assert f"noticed at line {noticed[0]}, column {noticed[1]}" in p.message


def test_yaml_syntax_error_is_reported_where_the_unclosed_bracket_starts() -> None:
    """Issue 9, finding 11: an unclosed ``[`` is reported at its own line (PyYAML's context mark), not at
    the next line where PyYAML noticed it; the message names both."""
    text, problems = broken("visits: [tg_w0, tg_w4, tg_w8, tg_w12, tg_w16, tg_w20, tg_w24, tg_w28]\n",
                            "visits: [tg_w0, tg_w4, tg_w8, tg_w12, tg_w16, tg_w20, tg_w24, tg_w28\n")
    p = only(problems)
    start = where(text, "[tg_w0, tg_w4")
    assert (p.line, p.column) == start
    assert "flow sequence that starts here" in p.message and f"noticed at line {start[0] + 1}" in p.message


@pytest.mark.parametrize(
    ("old", "new", "snippet", "message"),
    [
        (" kinds: [ct]\n", " kinds: [ct, tg]\n", "tg]\n        study_days", "rule 'recist' does not read 'tg'"),
        ("final_visit: month6_ct\n", "final_visit: baseline_rai_scan\n", "baseline_rai_scan\n",
         "final visit 'baseline_rai_scan' is not one of the criterion's visits"),
        ("study_days: {from: -28, to: 196}\n        final_visit: month6_ct", "study_days: {from: 20, to: 10}\n"
         "        final_visit: month6_ct", "{from: 20", "is empty: 'from' must not be after 'to'"),
        ("study_days: {from: -28, to: 196}\n        final_visit: month6_ct", "study_days: {from: -28, to: 190}\n"
         "        final_visit: month6_ct", "{from: -28, to: 190}", "has its window d+175 to d+196 outside the range"),
        ("unscheduled: include\n        source: synopsis\n        note: >-\n          \"Taking",
         "unscheduled: sometimes\n        source: synopsis\n        note: >-\n          \"Taking", "sometimes",
         "expected one of 'include', 'exclude', got 'sometimes'"),
    ],
)
def test_a_criterion_evidence_selection_is_checked_where_it_is_written(old: str, new: str, snippet: str,
                                                                         message: str) -> None:
    text, problems = broken(old, new)
    p = only(problems)
    assert (p.line, p.column) == where(text, snippet) and message in p.message, p


def test_duplicate_key_is_an_error_at_the_second_key_naming_the_first_line() -> None:
    text, problems = broken("  enrolment_target: 30\n", "  enrolment_target: 30\n  enrolment_target: 31\n")
    p = only(problems)
    assert p.path == "$.study.enrolment_target"
    assert (p.line, p.column) == where(text, "enrolment_target: 31")
    first_line = where(text, "enrolment_target: 30")[0]
    assert p.message == (
        f"duplicate key 'enrolment_target' (first defined at line {first_line}); "
        "a YAML mapping keeps only one value per key"
    )


def test_duplicate_key_inside_a_flow_mapping() -> None:
    text, problems = broken(
        "{id: tg_w12, name: Tg week 12, day: 84,", "{id: tg_w12, name: Tg week 12, day: 84, day: 85,"
    )
    p = only(problems)
    assert p.path == "$.phases[1].visits[3].day"
    assert (p.line, p.column) == where(text, "day: 85")
    assert p.message.startswith("duplicate key 'day'")


def test_non_string_key_must_be_quoted() -> None:
    text, problems = broken("  enrolment_target: 30\n", "  enrolment_target: 30\n  2024: yes\n")
    p = only(problems)
    assert (p.path, (p.line, p.column)) == ("$.study", where(text, "2024: yes"))
    assert p.message == "key '2024' must be a string; quote it"


def test_a_python_tag_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    sentinel = tmp_path / "executed"
    payload = f"!!python/object/apply:os.system ['touch {sentinel}']"
    text, problems = broken("  enrolment_target: 30\n", f"  enrolment_target: {payload}\n")
    p = only(problems)
    assert (p.line, p.column) == where(text, "!!python/object/apply")
    assert "YAML tag" in p.message and "is not accepted" in p.message  # refused before any constructor runs
    assert "python/object/apply:os.system" in p.message
    assert not sentinel.exists()


@pytest.mark.parametrize("tag", ["!!python/object:collections.OrderedDict {}", "!!python/name:os.system ''"])
def test_other_python_tags_are_refused(tag: str) -> None:
    text, problems = broken("  enrolment_target: 30\n", f"  enrolment_target: {tag}\n")
    p = only(problems)
    assert (p.line, p.column) == where(text, tag.split()[0])
    assert "YAML tag" in p.message and "is not accepted" in p.message


def test_control_character_is_located_on_its_line() -> None:
    text, problems = broken("  enrolment_target: 30\n", "  enrolment_target: 3\x070\n")
    p = only(problems)
    assert (p.line, p.column) == where(text, "\x07")
    assert p.message == "YAML error: character U+0007: control characters are not allowed"
    assert "\n" not in str(p)


def test_recursive_alias_is_an_error_not_a_crash() -> None:
    p = only(problems_of("study: &s {again: *s}\n"))
    assert (p.line, p.column, p.path) == (1, 1, "$")
    assert "alias" in p.message


def test_two_documents_in_one_file_are_refused() -> None:
    text = bundled_text() + "---\nstudy: {}\n"
    p = only(problems_of(text))
    assert (p.line, p.column) == where(text, "---\nstudy: {}")
    assert "expected a single document" in p.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_document(text: str) -> None:
    p = only(problems_of(text))
    assert (p.line, p.column, p.path, p.message) == (1, 1, "$", "the document is empty")


def test_explicit_document_start_with_nothing_after_it() -> None:
    p = only(problems_of("---\n"))
    assert (p.line, p.column, p.path, p.message) == (2, 1, "$", "expected a mapping, got None")


@pytest.mark.parametrize(("text", "got"), [("just words\n", "'just words'"), ("- a\n- b\n", "['a', 'b']")])
def test_document_that_is_not_a_mapping(text: str, got: str) -> None:
    p = only(problems_of(text))
    assert (p.line, p.column, p.path, p.message) == (1, 1, "$", f"expected a mapping, got {got}")


# --- files -----------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ProtocolError) as caught:
        load_protocol(missing)
    assert caught.value.problems == (Problem(str(missing), 1, 1, "$", "no such file"),)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError) as caught:
        load_protocol(tmp_path)
    assert only(caught.value.problems).message == "is a directory, not a file"


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "empty.yaml"
    f.write_bytes(b"")
    with pytest.raises(ProtocolError) as caught:
        load_protocol(f)
    assert caught.value.problems == (Problem(str(f), 1, 1, "$", "the document is empty"),)


def test_non_utf8_file_points_at_the_bad_byte(tmp_path: Path) -> None:
    text = edit(
        bundled_text(), "name: Sorafenib 800 mg/day for 6 months", "name: Sorafenib 800 mg/day für 6 Monate"
    )
    f = tmp_path / "latin1.yaml"
    f.write_bytes(text.encode("latin-1"))
    with pytest.raises(ProtocolError) as caught:
        load_protocol(f)
    p = only(caught.value.problems)
    assert (p.file, p.path) == (str(f), "$")
    assert (p.line, p.column) == where(text, "ür 6 Monate")
    assert p.message.startswith("not UTF-8 text (byte 0xfc")


def test_utf8_with_bom_and_crlf_loads(tmp_path: Path) -> None:
    f = tmp_path / "windows.yaml"
    f.write_bytes(b"\xef\xbb\xbf" + bundled_text().replace("\n", "\r\n").encode("utf-8"))
    assert load_protocol(f).study.id == "sorafenib-dtc"


def test_crlf_positions_match_lf_positions() -> None:
    text, problems = broken("  enrolment_target: 30\n", "  enrolment_target: thirty\n")
    crlf = problems_of(text.replace("\n", "\r\n"))
    assert [(p.line, p.column, p.path) for p in crlf] == [(p.line, p.column, p.path) for p in problems]


# --- schema ----------------------------------------------------------------------------------------


def test_wrong_type() -> None:
    text, problems = broken("  enrolment_target: 30\n", "  enrolment_target: thirty\n")
    p = only(problems)
    assert (p.path, (p.line, p.column)) == ("$.study.enrolment_target", where(text, "thirty"))
    assert p.message == "expected a whole number, got 'thirty'"


def test_wrong_type_list_for_mapping() -> None:
    text, problems = broken(
        "    treatment: {id: sorafenib, dose_mg_per_day: 800}\n    source: synopsis\n    note: >-",
        "    treatment: [sorafenib, 800]\n    source: synopsis\n    note: >-",
    )
    p = only(problems)
    assert (p.path, (p.line, p.column)) == ("$.phases[1].treatment", where(text, "[sorafenib, 800]"))
    assert p.message == "expected a mapping, got ['sorafenib', 800]"


def test_unknown_key_with_did_you_mean() -> None:
    text, problems = broken("    anchor: day0\n", "    anchr: day0\n")
    p = only(problems)
    assert p.path == "$.phases[1].anchr"
    assert (p.line, p.column) == where(text, "anchr")
    assert p.message == "unknown key 'anchr'; did you mean 'anchor'?"


def test_unknown_key_without_a_close_match_has_no_hint() -> None:
    text, problems = broken("  enrolment_target: 30\n", "  enrolment_target: 30\n  sponsor: Leiden\n")
    p = only(problems)
    assert (p.path, (p.line, p.column), p.message) == (
        "$.study.sponsor",
        where(text, "sponsor"),
        "unknown key 'sponsor'",
    )


def test_missing_field_points_at_the_mapping_that_lacks_it() -> None:
    text, problems = broken('  version: "1.0"\n', "")
    p = only(problems)
    assert p.path == "$.study"
    assert (p.line, p.column) == where(text, "id: sorafenib-dtc")
    assert p.message == "missing required field 'version'"


def test_missing_field_in_a_flow_mapping_visit() -> None:
    text, problems = broken(
        "{id: tg_w8, name: Tg week 8, day: 56, window: {before: 3, after: 3}, ",
        "{id: tg_w8, name: Tg week 8, day: 56, ",
    )
    p = only(problems)
    assert (p.path, (p.line, p.column)) == ("$.phases[1].visits[2]", where(text, "{id: tg_w8"))
    assert p.message == "missing required field 'window'"


def test_negative_window() -> None:
    text, problems = broken(
        "{id: tg_w4, name: Tg week 4, day: 28, window: {before: 3,",
        "{id: tg_w4, name: Tg week 4, day: 28, window: {before: -3,",
    )
    p = only(problems)
    assert p.path == "$.phases[1].visits[1].window.before"
    assert (p.line, p.column) == where(text, "-3")
    assert p.message == "expected a value >= 0, got -3"


def test_enum_value_with_did_you_mean() -> None:
    text, problems = broken("    kind: decision\n", "    kind: decison\n")
    p = find(problems, "$.phases[2].kind")
    assert (p.path, (p.line, p.column)) == ("$.phases[2].kind", where(text, "decison"))
    # the semantic checks still run where the schema let the shapes through, so the consequence shows too
    assert [q.path for q in problems] == ["$.phases[2].kind", "$.decision.phase"]
    assert p.message == (
        "expected one of 'screening', 'treatment', 'decision', 'terminal', got 'decison'; "
        "did you mean 'decision'?"
    )


def test_schema_and_semantic_errors_are_reported_together() -> None:
    text, _ = broken("{alpha: 0.05, test: two_sided", "{alpha: 2, test: two_sided")
    text = text.replace("    anchor: enrolment\n", "    anchr: enrolment\n", 1)
    from protocol_helpers import problems_of

    found = problems_of(text)
    assert [(p.path, p.message) for p in found] == [
        ("$.phases[0].anchr", "unknown key 'anchr'; did you mean 'anchor'?"),
        ("$.decision.criteria[1].params.alpha", "expected a value < 1, got 2 (rule 'tg_slope')"),
    ]


# --- semantics: phases and transitions ---------------------------------------------------------------


def test_branch_to_unknown_phase_with_did_you_mean() -> None:
    text, problems = broken("      to: continued_sorafenib\n", "      to: continued_sorafenb\n")
    p = find(problems, "$.decision.branches[1].to")
    assert (p.line, p.column) == where(text, "continued_sorafenb")
    assert p.message == "unknown phase 'continued_sorafenb'; did you mean 'continued_sorafenib'?"
    # the phase the branch should have led to is now truly unreachable, and is said so
    assert (
        find(problems, "$.phases[4].id").message
        == "phase 'continued_sorafenib' is unreachable from 'screening'"
    )


def test_transition_to_unknown_phase_with_did_you_mean() -> None:
    text, problems = broken(
        "source: sorafenib_6m, dest: decision_6m,", "source: sorafenib_6m, dest: decision_6n,"
    )
    p = find(problems, "$.transitions[2].dest")
    assert (p.line, p.column) == where(text, "decision_6n")
    assert p.message == "unknown phase 'decision_6n'; did you mean 'decision_6m'?"


def test_transition_from_unknown_phase() -> None:
    text, problems = broken(
        "{trigger: screen_fail, source: screening,", "{trigger: screen_fail, source: screenig,"
    )
    p = find(problems, "$.transitions[1].source")
    assert (p.line, p.column) == where(text, "screenig")
    assert p.message == "unknown phase 'screenig'; did you mean 'screening'?"


def test_unreachable_phase() -> None:
    text, problems = broken("source: screening, dest: screen_failure,", "source: screening, dest: withdrawn,")
    p = only(problems)
    assert p.path == "$.phases[8].id"
    assert (p.line, p.column) == where(text, "screen_failure\n")
    assert p.message == "phase 'screen_failure' is unreachable from 'screening'"


def test_active_phase_with_no_way_out() -> None:
    text, problems = broken(
        "  - {trigger: complete, source: continued_sorafenib, dest: end_of_study,\n"
        '     description: "6 months of continued Sorafenib, then treatment continues off study '
        '(assumption)"}\n',
        "",
    )
    p = only(problems)
    assert p.path == "$.phases[4].id"
    assert (p.line, p.column) == where(text, "continued_sorafenib\n    name")
    assert p.message.startswith("active phase 'continued_sorafenib' has no way out: add a transition from it")


def test_active_phase_that_cannot_be_left_early() -> None:
    text, problems = broken("rai_plus_sorafenib, continued_sorafenib]", "rai_plus_sorafenib]")
    p = only(problems)
    assert (p.path, (p.line, p.column)) == (
        "$.early_termination.from",
        where(text, "[screening, sorafenib_6m"),
    )
    assert p.message.startswith("active phase 'continued_sorafenib' cannot be left early")


def test_early_termination_to_an_active_phase() -> None:
    text, problems = broken("  dest: withdrawn\n", "  dest: continued_sorafenib\n")
    p = find(problems, "$.early_termination.dest")
    assert (p.line, p.column) == where(text, "continued_sorafenib\n  from")
    assert (
        p.message == "early termination must lead to a terminal phase, 'continued_sorafenib' is 'treatment'"
    )


def test_transition_out_of_a_terminal_phase() -> None:
    text, problems = broken(
        "transitions:\n", "transitions:\n  - {trigger: revive, source: off_study, dest: screening}\n"
    )
    p = only(problems)
    assert (p.path, (p.line, p.column)) == ("$.transitions[0].source", where(text, "off_study, dest"))
    assert p.message == "phase 'off_study' is terminal: nothing leaves it"


def test_ambiguous_trigger() -> None:
    text, problems = broken(
        "{trigger: screen_fail, source: screening,", "{trigger: start_treatment, source: screening,"
    )
    p = find(problems, "$.transitions[1].trigger")
    assert (p.line, p.column) == where(text, "start_treatment, source: screening, dest: screen_failure")
    assert "already leaves phase 'screening'" in p.message
    # and enrolment has no screen-failure move left
    assert "on trigger 'screen_fail'" in find(problems, "$.transitions").message


# --- semantics: visits and ids -----------------------------------------------------------------------


def test_visit_outside_its_phase() -> None:
    text, problems = broken(
        "{id: tg_w28, name: Tg week 28, day: 196,", "{id: tg_w28, name: Tg week 28, day: 200,"
    )
    p = only(problems)
    assert p.path == "$.phases[1].visits[9].day"
    assert (p.line, p.column) == where(text, "200,")
    assert p.message == "visit 'tg_w28' on day 200 lies outside its phase 'sorafenib_6m' (days 0..196)"


def test_visit_before_its_phase_starts() -> None:
    text, problems = broken(
        "{id: rai_tg_m3, name: Tg 3 months, day: 91,", "{id: rai_tg_m3, name: Tg 3 months, day: -1,"
    )
    p = only(problems)
    assert (p.path, (p.line, p.column)) == ("$.phases[3].visits[2].day", where(text, "-1,"))
    assert (
        p.message == "visit 'rai_tg_m3' on day -1 lies outside its phase 'rai_plus_sorafenib' (days 0..182)"
    )


def test_duplicate_visit_ids() -> None:
    text, problems = broken("{id: rai_tg_m3,", "{id: cont_tg_m3,")
    p = only(problems)
    assert p.path == "$.phases[4].visits[0].id"
    assert (p.line, p.column) == where(text, "cont_tg_m3,", nth=1)
    first_line = where(text, "cont_tg_m3,", nth=0)[0]
    assert p.message == f"duplicate visit id 'cont_tg_m3' (first used at line {first_line})"


def test_unknown_assessment_at_a_visit() -> None:
    text, problems = broken(
        "{id: baseline_ct, name: Baseline CT, day: 14, window: {before: 14, after: 14},\n"
        "         assessments: [ct]",
        "{id: baseline_ct, name: Baseline CT, day: 14, window: {before: 14, after: 14},\n"
        "         assessments: [cta]",
    )
    p = only(problems)
    assert (p.path, (p.line, p.column)) == ("$.phases[0].visits[1].assessments[0]", where(text, "[cta]", 1))
    assert p.message == "unknown assessment 'cta'; did you mean 'ct'?"


def test_decision_criterion_reads_an_unknown_visit() -> None:
    text, problems = broken("visits: [baseline_ct, month6_ct]", "visits: [baseline_ct, month_6_ct]")
    p = only(problems)
    assert (p.path, (p.line, p.column)) == ("$.decision.criteria[2].visits[1]", where(text, "month_6_ct"))
    assert p.message == "unknown visit 'month_6_ct'; did you mean 'month6_ct'?"


# --- semantics: rules and the decision -----------------------------------------------------------------


def test_unknown_rule_with_did_you_mean() -> None:
    text, problems = broken("      rule: tg_slope\n", "      rule: tg_slop\n")
    p = only(problems)
    assert p.path == "$.decision.criteria[1].rule"
    assert (p.line, p.column) == where(text, "tg_slop\n")
    assert p.message.startswith("unknown rule 'tg_slop'; did you mean 'tg_slope'?")
    assert "registered: rai_uptake, recist, tg_slope" in p.message


def test_rule_parameter_out_of_range_for_the_rule_schema() -> None:
    text, problems = broken("params: {alpha: 0.05,", "params: {alpha: 2,")
    p = only(problems)
    assert p.path == "$.decision.criteria[1].params.alpha"
    assert (p.line, p.column) == where(text, "2, test:")
    assert "got 2" in p.message and p.message.endswith("(rule 'tg_slope')")


def test_rule_parameter_not_in_the_rule_enum() -> None:
    text, problems = broken('params: {version: "1.0",', 'params: {version: "2.0",')
    p = only(problems)
    assert p.path == "$.decision.criteria[2].params.version"
    assert (p.line, p.column) == where(text, '"2.0"')
    assert p.message.startswith("expected one of '1.0', '1.1', got '2.0'")
    assert p.message.endswith("(rule 'recist')")


def test_rule_parameter_unknown_with_did_you_mean() -> None:
    text, problems = broken("loq_policy: half_loq,", "loq_polcy: half_loq,")
    p = only(problems)
    assert p.path == "$.decision.criteria[1].params.loq_polcy"
    assert (p.line, p.column) == where(text, "loq_polcy")
    assert p.message == "unknown key 'loq_polcy'; did you mean 'loq_policy'? (rule 'tg_slope')"


def test_rule_parameter_wrong_type() -> None:
    text, problems = broken("params: {min_new_avid_lesions: 1,", "params: {min_new_avid_lesions: one,")
    p = only(problems)
    assert (p.path, (p.line, p.column)) == (
        "$.decision.criteria[0].params.min_new_avid_lesions",
        where(text, "one,"),
    )
    assert p.message.startswith("expected a whole number, got 'one'")


def test_favourable_outcome_the_rule_does_not_have() -> None:
    text, problems = broken("favourable: [CR, PR, SD]", "favourable: [CR, PR, SD, SDD]")
    p = only(problems)
    assert (p.path, (p.line, p.column)) == ("$.decision.criteria[2].favourable[3]", where(text, "SDD]"))
    assert (
        p.message == "rule 'recist' has no outcome 'SDD'; did you mean 'SD'? (outcomes: CR, PR, SD, PD, NE)"
    )


def test_branch_condition_on_an_outcome_the_criterion_cannot_have() -> None:
    text, problems = broken(
        "when: {criterion: rai_uptake, in: [reinduced]}", "when: {criterion: rai_uptake, in: [re_induced]}"
    )
    p = only(problems)
    assert (p.path, (p.line, p.column)) == ("$.decision.branches[0].when.in[0]", where(text, "re_induced"))
    assert p.message.startswith(
        "criterion 'rai_uptake' has no outcome 're_induced'; did you mean 'reinduced'?"
    )


def test_branch_condition_on_an_unknown_criterion() -> None:
    text, problems = broken("when: {criterion: rai_uptake,", "when: {criterion: rai_uptak,")
    p = only(problems)
    assert (p.path, (p.line, p.column)) == (
        "$.decision.branches[0].when.criterion",
        where(text, "rai_uptak,"),
    )
    assert p.message == "unknown criterion 'rai_uptak'; did you mean 'rai_uptake'?"


def test_branch_condition_given_as_a_code_string_is_refused() -> None:
    text, problems = broken("when: {favourable: true}", 'when: "favourable == True"')
    p = only(problems)
    assert (p.path, (p.line, p.column)) == (
        "$.decision.branches[1].when",
        where(text, '"favourable == True"'),
    )
    assert p.message == "expected a mapping, got 'favourable == True'"


def test_decision_without_a_default_branch() -> None:
    text, problems = broken("      default: true\n", "")
    assert len(problems) == 2
    p = find(problems, "$.decision.branches")
    assert (p.line, p.column) == where(text, "- id: rai_reinduced")
    assert p.message.startswith("the decision has no default branch (`default: true`)")
    q = find(problems, "$.decision.branches[2]")
    assert (q.line, q.column) == where(text, "id: no_response")
    assert q.message == "a branch needs a condition ('when') unless it is the default"


def test_default_branch_must_come_last() -> None:
    text, problems = broken("      when: {favourable: true}\n", "      default: true\n")
    p = find(problems, "$.decision.branches[1].default")
    assert (p.line, p.column) == where(text, "default: true\n      description: No RaI")
    assert p.message == "the default branch must come last: the first match wins"


def test_non_finite_number_is_refused() -> None:
    text, problems = broken("    activity_mbq: 6000\n", "    activity_mbq: .inf\n")
    p = only(problems)
    assert (p.path, (p.line, p.column)) == ("$.treatments[1].activity_mbq", where(text, ".inf"))
    assert p.message == "expected a finite number, got inf"


# --- all at once -----------------------------------------------------------------------------------------


def test_several_schema_errors_are_reported_together_sorted_by_line() -> None:
    text = bundled_text()
    text = edit(text, "    anchor: day0\n", "    anchr: day0\n")
    text = edit(
        text,
        "{id: tg_w4, name: Tg week 4, day: 28, window: {before: 3,",
        "{id: tg_w4, name: Tg week 4, day: 28, window: {before: -3,",
    )
    text = edit(text, "  enrolment_target: 30\n", "  enrolment_target: thirty\n")
    problems = problems_of(text)
    assert [(p.line, p.column, p.path) for p in problems] == [
        (*where(text, "thirty"), "$.study.enrolment_target"),
        (*where(text, "anchr"), "$.phases[1].anchr"),
        (*where(text, "-3"), "$.phases[1].visits[1].window.before"),
    ]
    assert list(problems) == sorted(problems)


def test_several_semantic_errors_are_reported_together_sorted_by_line() -> None:
    text = bundled_text()
    text = edit(text, "      rule: tg_slope\n", "      rule: tg_slop\n")
    text = edit(text, "{id: tg_w28, name: Tg week 28, day: 196,", "{id: tg_w28, name: Tg week 28, day: 200,")
    text = edit(text, "source: screening, dest: screen_failure,", "source: screening, dest: withdrawn,")
    text = edit(text, 'params: {version: "1.0",', 'params: {version: "2.0",')
    problems = problems_of(text)
    assert [p.path for p in problems] == [
        "$.phases[1].visits[9].day",
        "$.phases[8].id",
        "$.decision.criteria[1].rule",
        "$.decision.criteria[2].params.version",
    ]
    lines = [p.line for p in problems]
    assert lines == sorted(lines)
    assert lines[0] == where(text, "200,")[0]


def test_error_text_is_one_line_per_problem_in_file_line_col_form() -> None:
    text = edit(bundled_text(), "    anchor: day0\n", "    anchr: day0\n")
    text = edit(text, "  enrolment_target: 30\n", "  enrolment_target: thirty\n")
    with pytest.raises(ProtocolError) as caught:
        parse_protocol(text, "amended.yaml")
    line, col = where(text, "anchr")
    assert str(caught.value).splitlines() == [
        f"amended.yaml:{where(text, 'thirty')[0]}:{where(text, 'thirty')[1]}: $.study.enrolment_target: "
        "expected a whole number, got 'thirty'",
        f"amended.yaml:{line}:{col}: $.phases[1].anchr: unknown key 'anchr'; did you mean 'anchor'?",
    ]
