"""The web workspace in a real browser: Debian's Chromium driven by Playwright, against uvicorn on loopback.

One server for the module (a two-site team store, ``web_helpers``), one browser; each scenario works
on its own patients so their order does not matter. Every scenario saves a screenshot under
``build/screenshots/`` (kept as CI artefacts; the README shows three of them from ``docs/screenshots/``).

Chromium comes from Debian (``apt-get install chromium``, done by ``.ci/run``); Playwright's own browser
download is never used. Without ``/usr/bin/chromium`` the module is skipped and says why.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_helpers import PASSWORDS, Team, build_team

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "screenshots"
README_SHOTS = ROOT / "docs" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"  # axe-core 4.14.1 from npm, MPL-2.0, for the tests only
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium; "
                                                     ".ci/run does it)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Team:
    return build_team(str(tmp_path_factory.mktemp("browser") / "team.db"))


@pytest.fixture(scope="module")
def server(team: Team) -> Iterator[str]:
    import uvicorn

    from trialflow.web import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(team.db, secret_key="browser-test"), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the web server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


class Session:
    """One browser context (its own cookies), signed in as one user; records CSP violations and page errors."""

    def __init__(self, browser: Any, base: str, user: str):
        self.context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.goto("/login")
        self.page.get_by_label("User name").fill(user)
        self.page.get_by_label("Password").fill(PASSWORDS[user])
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(lambda url: "/login" not in url)

    def shot(self, name: str, readme: bool = False) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        if readme:
            README_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, README_SHOTS / f"{name}.png")

    def close(self) -> None:
        self.context.close()
        csp = [p for p in self.problems if "Content Security Policy" in p or "Refused to" in p]
        assert not csp, csp


@pytest.fixture
def sessions(browser: Any, server: str) -> Iterator[Any]:
    opened: list[Session] = []

    def open_as(user: str) -> Session:
        s = Session(browser, server, user)
        opened.append(s)
        return s

    yield open_as
    for s in opened:
        s.close()


def test_pages_pass_the_axe_core_accessibility_check(browser: Any, server: str, team: Team) -> None:
    """axe-core (Deque) on each kind of page: labels on every input, headings, colour contrast (WCAG 2 A/AA)."""
    context = browser.new_context(base_url=server, bypass_csp=True)  # only to inject axe itself
    page = context.new_page()
    page.goto("/login")
    found: dict[str, Any] = {}
    axe = AXE.read_text(encoding="utf-8")

    def check(path: str) -> None:
        page.goto(path)
        page.add_script_tag(content=axe)
        result = page.evaluate("""async () => (await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'best-practice']}})).violations.map(v => ({id: v.id, impact: v.impact,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))""")
        if result:
            found[path] = result

    check("/login")
    page.get_by_label("User name").fill("dr.smit")
    page.get_by_label("Password").fill(PASSWORDS["dr.smit"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)
    for path in ("/", f"/patients/{team.overdue_tg}", f"/patients/{team.overdue_tg}/record/tg",
                 f"/patients/{team.overdue_tg}/record/ct", f"/patients/{team.overdue_tg}/record/adverse_event",
                 f"/patients/{team.missed}", f"/patients/{team.missed}/visits/tg_w4/deviation",
                 f"/patients/{team.missed}/visits/tg_w4/skip", f"/patients/{team.at_decision}/decision", "/report",
                 "/protocol"):
        check(path)
    context.close()
    assert not found, json.dumps(found, indent=1)


def test_coordinator_records_the_overdue_tg_and_it_leaves_the_worklist(sessions: Any, team: Team) -> None:
    anna = sessions("anna")
    page = anna.page
    row = page.locator(f'#worklist tr[data-patient="{team.overdue_tg}"][data-visit="tg_w8"]')
    assert row.count() == 1 and row.get_attribute("class") == "s-overdue"
    assert page.locator('#worklist tr[data-patient="B-001"]').count() == 0  # another site's patient
    anna.shot("worklist", readme=True)
    row.get_by_role("link", name=team.overdue_tg).click()
    page.get_by_role("link", name="Tg + TgAb").click()
    page.get_by_label("Date").fill((dt.date.today() - dt.timedelta(days=1)).isoformat())
    page.get_by_label("Tg value").fill("61")
    page.get_by_label("TgAb (anti-thyroglobulin antibodies)").select_option("negative")
    page.get_by_role("button", name="Record").click()
    page.wait_for_url(f"**/patients/{team.overdue_tg}")
    assert f"{team.overdue_tg}: 2 recorded" in page.locator(".flash").inner_text()
    assert "done" in page.locator("ol.timeline li", has_text="week 8").inner_text()
    anna.shot("patient", readme=True)
    page.goto("/")
    assert page.locator(f'#worklist tr[data-patient="{team.overdue_tg}"][data-visit="tg_w8"]').count() == 0


def test_coordinator_records_a_deviation_for_a_missed_visit_and_it_leaves_the_missed_group(sessions: Any,
                                                                                          team: Team) -> None:
    anna = sessions("anna")
    page = anna.page
    row = page.locator(f'#worklist tr[data-patient="{team.missed}"][data-visit="tg_w4"]')
    assert row.count() == 1 and row.get_attribute("class") == "s-missed"
    missed = int(page.locator(".count.s-missed .n").inner_text())
    page.goto(f"/patients/{team.missed}")
    visit = page.locator("ol.timeline li#visit-tg_w4")
    assert "missed, no deviation yet" in visit.inner_text() and "Tg, TgAb missing" in visit.inner_text()
    assert "TgAb missing" in page.locator("ol.timeline li#visit-tg_w0").inner_text()
    visit.get_by_role("link", name="Record a deviation for Tg week 4").click()
    page.get_by_label("Kind of deviation").select_option("missed")
    page.get_by_role("button", name="Record the deviation").click()  # no reason yet: refused beside the field
    assert page.locator("#field-reason .field-error").inner_text() == "a deviation needs a reason"  # no CLI flag
    assert page.get_by_label("Reason").get_attribute("aria-invalid") == "true"
    page.get_by_label("Reason").fill("Patient in hospital elsewhere during the window; sample not drawn")
    anna.shot("deviation-form")
    page.get_by_role("button", name="Record the deviation").click()
    page.wait_for_url(f"**/patients/{team.missed}")
    assert "deviation (missed) recorded for tg_w4" in page.locator(".flash").inner_text()
    text = page.locator("ol.timeline li#visit-tg_w4").inner_text()
    assert "deviation recorded" in text and "sample not drawn" in text
    anna.shot("visit-ledger", readme=True)
    page.goto("/")
    assert page.locator(f'#worklist tr[data-patient="{team.missed}"][data-visit="tg_w4"]').count() == 0
    assert page.locator(f'#worklist tr[data-patient="{team.missed}"][data-visit="tg_w0"]').count() == 1
    assert int(page.locator(".count.s-missed .n").inner_text()) == missed - 1


def test_coordinator_records_a_serious_adverse_event_with_a_dose_reduction(sessions: Any, team: Team) -> None:
    anna = sessions("anna")
    page = anna.page
    page.goto(f"/patients/{team.missed}")
    assert "800 mg/day" in page.locator("ul.todo").inner_text()
    page.get_by_role("link", name="Adverse event").click()
    onset = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    page.get_by_label("Onset date").fill(onset)
    page.get_by_label("CTCAE term").fill("Palmar-plantar erythrodysesthesia syndrome")
    page.get_by_label("CTCAE grade").select_option("3")
    page.get_by_label("Serious adverse event (SAE)").check()
    page.get_by_label("Relatedness to Sorafenib (the study drug)").select_option("definite")
    page.get_by_label("Action taken with Sorafenib").select_option("dose_reduced")
    anna.shot("adverse-event-form")
    page.get_by_role("button", name="Record").click()
    page.wait_for_url(f"**/patients/{team.missed}")
    row = page.locator("table.safety tbody tr").first
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert cells[:7] == [onset, "Palmar-plantar erythrodysesthesia syndrome", "3", "ongoing", "yes", "definite",
                         "dose reduced"]
    # the engine's dose-reduction rule: the next dispensing asks for the next lower dose level
    assert "dispense Sorafenib 600 mg/day" in page.locator("ul.todo").inner_text()
    anna.shot("adverse-event")


def test_worklist_filters_by_patient_with_htmx(sessions: Any, team: Team) -> None:
    page = sessions("mona").page
    assert page.locator('#worklist tr[data-patient="B-001"]').count() > 0
    page.get_by_label("Patient").fill("A-002")
    page.wait_for_function("() => !document.querySelector('#worklist tr[data-patient=\"B-001\"]')")
    assert "patient=A-002" in page.url
    assert page.locator("#worklist tbody tr").count() == page.locator('#worklist tr[data-patient="A-002"]').count()


def test_investigator_signs_the_decision_and_the_patient_moves_to_its_arm(sessions: Any, team: Team) -> None:
    smit = sessions("dr.smit")
    page = smit.page
    page.goto(f"/patients/{team.at_decision}/decision")
    assert "Ready" in page.locator("p.state").inner_text()
    assert page.locator("figure.chart svg circle").count() >= 8 + 2  # 8 Tg samples, baseline + 6-month CT
    smit.shot("decision-preview")
    page.get_by_label("Your password (re-entered to sign)").fill("wrong-password-123")
    page.get_by_role("button", name="Sign and move the patient").click()
    assert "wrong user name or password" in page.locator(".field-error").inner_text()
    page.get_by_label("Your password (re-entered to sign)").fill(PASSWORDS["dr.smit"])
    page.get_by_role("button", name="Sign and move the patient").click()
    page.wait_for_selector("section.signed")
    assert "Dr. Eva Smit" in page.locator("section.signed").inner_text()
    smit.shot("signed-decision", readme=True)
    page.goto(f"/patients/{team.at_decision}")
    assert "continued_sorafenib" in page.locator("dl.facts").inner_text()


def test_monitor_opens_a_query_and_the_coordinator_answers_it(sessions: Any, team: Team) -> None:
    mona = sessions("mona")
    page = mona.page
    page.goto("/patients/B-001")
    page.locator("tr", has_text="tg 95.0 ug/L").get_by_role("link", name="open a query").click()
    page.get_by_label("Question for the site").fill("Week 4 Tg: please confirm against the lab report")
    page.get_by_role("button", name="Open query").click()
    page.wait_for_url("**/patients/B-001**")
    assert "open" in page.locator("li.query").first.inner_text()
    bert = sessions("bert")
    bert.page.goto("/patients/B-001")
    bert.page.get_by_label("Answer query", exact=False).first.fill("Confirmed with the lab: 95 ug/L")
    bert.page.get_by_role("button", name="Answer").first.click()
    bert.page.wait_for_selector("li.query p.answer")
    assert "answered" in bert.page.locator("li.query .qstatus").first.inner_text()
    bert.shot("query-answered")


def test_site_a_coordinator_cannot_reach_a_site_b_patient_by_url(sessions: Any, team: Team) -> None:
    anna = sessions("anna")
    response = anna.page.goto(f"/patients/{team.other_site}")
    assert response is not None and response.status == 404
    assert team.other_site not in anna.page.locator("main").inner_text().replace(f"'{team.other_site}'", "")
    anna.shot("other-site-404")
    response = anna.page.goto(f"/api/patients/{team.other_site}")
    assert response is not None and response.status == 404


def test_a_bad_value_shows_the_error_beside_the_field_and_stores_nothing(sessions: Any, team: Team) -> None:
    from trialflow.engine import Store

    store = Store.open(team.db)
    before = len(store.events(team.overdue_tg))
    anna = sessions("anna")
    page = anna.page
    page.goto(f"/patients/{team.overdue_tg}/record/tg")
    page.get_by_label("Tg value").fill("-4")
    page.get_by_role("button", name="Record").click()
    error = page.locator("#field-value .field-error")
    assert "value must be > 0" in error.inner_text()
    assert page.get_by_label("Tg value").get_attribute("aria-invalid") == "true"
    anna.shot("form-error")
    assert len(store.events(team.overdue_tg)) == before
    store.close()


def test_protocol_page_draws_the_phase_diagram_with_the_vendored_mermaid(sessions: Any) -> None:
    page = sessions("mona").page
    page.goto("/protocol")
    page.wait_for_selector("pre.mermaid svg", timeout=30000)
    assert page.locator("table.soa").count() >= 1


def test_an_implausible_tg_is_recorded_once_the_coordinator_confirms_it(sessions: Any, team: Team) -> None:
    """Last in the module: it gives B-001 a week-8 Tg (the query scenario above reads B-001 first)."""
    from trialflow.engine import Store

    bert = sessions("bert")
    page = bert.page
    page.goto(f"/patients/{team.other_site}/record/tg")
    confirm = page.get_by_label("Confirm the unusual value: why it is right")
    assert confirm.count() == 0  # offered only when the engine refuses a value as implausible
    page.get_by_label("Tg value").fill("250000")
    page.get_by_label("TgAb (anti-thyroglobulin antibodies)").select_option("negative")
    page.get_by_role("button", name="Record").click()
    error = page.locator("#field-value .field-error").inner_text()
    assert "250000 ug/L" in error and "outside the plausible range the protocol declares" in error
    assert "--" not in error
    confirm.fill("lab confirmed on repeat, bulky lung disease")
    bert.shot("unusual-value-confirm")
    page.get_by_role("button", name="Record").click()
    page.wait_for_url(f"**/patients/{team.other_site}")
    assert f"{team.other_site}: 2 recorded" in page.locator(".flash").inner_text()
    store = Store.open(team.db)
    tg = [e for e in store.events(team.other_site) if e.payload.get("kind") == "tg"][-1]
    store.close()
    assert tg.payload["value"] == 250000 and tg.reason == "unusual value confirmed: lab confirmed on repeat, bulky " \
                                                            "lung disease"
