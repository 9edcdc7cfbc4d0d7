"""``trialflow rules``: list the registered response criteria, evaluate one on a case file."""

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from ._output import console, fail, print_json

app = typer.Typer(help="List response-criteria rules and evaluate them on a case file.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _rules() -> Mapping[str, Any]:
    from trialflow.rules import RuleLoadError, available_rules

    try:
        return available_rules()
    except RuleLoadError as err:
        fail(str(err))


@app.command("list")
def list_rules(as_json: JsonOpt = False) -> None:
    """Name, version, observation kinds, outcomes and parameters of every registered rule."""
    rules = _rules()
    if as_json:
        print_json(
            [
                {
                    "name": r.name,
                    "version": r.version,
                    "title": r.title,
                    "observation_kinds": list(r.observation_kinds),
                    "outcomes": list(r.outcomes),
                    "params_schema": r.params_schema,
                    "references": list(r.references),
                }
                for r in sorted(rules.values(), key=lambda r: r.name)
            ]
        )
        return
    from ._tables import Column, print_table, say

    for r in sorted(rules.values(), key=lambda r: r.name):
        say(f"{r.name} v{r.version}: {r.title}")
        say(f"reads {', '.join(r.observation_kinds)}; outcomes {', '.join(r.outcomes)}")
        rows = [[k, repr(v.get("default")), str(v.get("description", ""))]
                for k, v in r.params_schema.get("properties", {}).items()]
        print_table([Column("parameter (-p NAME=VALUE)"), Column("default"), Column("meaning", "text", optional=True,
                                                                                  min_width=20)],
                    rows, hint="trialflow rules list --json")
        console.print()


def _parse_params(items: list[str], rule: Any) -> dict[str, Any]:
    import yaml

    from trialflow.protocol import suggest

    known = list(rule.params_schema.get("properties", {}))
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            fail(f"--param {item!r}: expected KEY=VALUE, e.g. --param alpha=0.01", code=2)
        if key not in known:
            fail(
                f"--param {key}: {rule.name} has no parameter {key!r}{suggest(key, known)} "
                f"(parameters: {', '.join(known)})",
                code=2,
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            fail(f"--param {key}: cannot read {raw!r} as a value", code=2)
        if _wants_string(rule.params_schema["properties"][key]) and not isinstance(value, str):
            value = raw.strip()  # version=1.1 means the string "1.1", not the number
        out[key] = value
    return out


def _wants_string(prop: Mapping[str, Any]) -> bool:
    enum = prop.get("enum") or []
    return prop.get("type") == "string" or (bool(enum) and all(isinstance(e, str) for e in enum))


def _protocol_params(name: str) -> dict[str, Any]:
    """The bundled protocol's parameters for the rule, or {} (the rule's defaults) when it has none."""
    try:
        from trialflow.protocol import load_bundled_protocol

        return dict(load_bundled_protocol().criterion_params(name))
    except KeyError:
        return {}


@app.command("eval")
def eval_rule(
    rule_name: Annotated[str, typer.Argument(metavar="RULE", help="Rule name (see `trialflow rules list`).")],
    input_file: Annotated[
        Path, typer.Option("--input", "-i", help="Case file (YAML or JSON).", show_default=False)
    ],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Override a parameter: KEY=VALUE (repeatable).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Ignore observations after this ISO date.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate RULE on a case file with the bundled protocol's parameters unless overridden."""
    from trialflow.protocol import DocumentError, ProtocolError
    from trialflow.rules import UnknownRuleError, get_rule
    from trialflow.rules._params import ParamsError, resolve_params
    from trialflow.rules.casefile import load_case

    _rules()
    try:
        rule = get_rule(rule_name)
    except UnknownRuleError as err:
        fail(str(err), code=2)
    when = None
    if as_of is not None:
        try:
            when = dt.date.fromisoformat(as_of)
        except ValueError:
            fail(f"--as-of {as_of!r}: expected an ISO date such as 2026-07-12", code=2)
    overrides = _parse_params(param or [], rule)
    try:
        base = _protocol_params(rule.name)
    except ProtocolError as err:
        fail(["the bundled protocol does not load:", *(str(p) for p in err.problems)])
    try:
        params = resolve_params(rule.name, rule.params_schema, {**base, **overrides})
    except ParamsError as err:
        fail(f"--param: {'; '.join(err.messages)}", code=2)
    try:
        case = load_case(input_file)
    except DocumentError as err:
        fail([str(p) for p in err.problems])
    result = rule.evaluate(case, params, as_of=when)
    if as_json:
        print_json(result)
        return
    _show(case.patient, result)


def _show(patient: str, result: Any) -> None:

    console.print(Text.assemble((patient, "bold"), f" {result.rule}: ", (str(result.outcome), "bold")))
    console.print(result.reason, markup=False)
    data = result.to_dict()
    rows = data.pop("assessments", None)
    if rows:
        from ._tables import Column, print_table

        print_table([Column("date"), Column("sum mm", justify="right"), Column("% baseline", justify="right"),
                     Column("% nadir", justify="right"), Column("target"), Column("non-target", "text", min_width=10),
                     Column("new", "text", min_width=5), Column("overall")],
                    [(a["date"], _s(a["sum_mm"]), _s(a["pct_from_baseline"]), _s(a["pct_from_nadir"]), a["target"],
                      a["non_target"], ", ".join(a["new_lesions"]) or "-", a["overall"]) for a in rows],
                    hint="trialflow rules eval ... --json")
    for key in ("excluded", "findings"):
        for item in data.get(key) or []:
            text = item if isinstance(item, str) else f"{item['date']}: {item['reason']}"
            console.print(f"  {key[:-1] if key == 'findings' else 'excluded'}: {text}", markup=False)


def _s(x: Any) -> str:
    return "-" if x is None else f"{x:g}"
