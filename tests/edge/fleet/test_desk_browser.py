"""The desks in Debian's headless Chromium (Selenium + chromium-driver): log in per role,
see the simulated day's alerts, open one with its evidence, acknowledge it; a role sees
only its desk."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.edge.fleet.deskfix import USERS, DeskEnv, desk_env

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def env(pg_cluster) -> Iterator[DeskEnv]:  # type: ignore[no-untyped-def]
    yield from desk_env(pg_cluster.new_database("desk_browser"))


@pytest.fixture()
def browser() -> Iterator[object]:
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.fail("chromium / chromium-driver are not installed; the test command "
                    "installs them (scripts/bootstrap.sh with AFE_WITH_TEST_TOOLS=1)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--disable-gpu", "--window-size=1400,1000"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    drv.set_page_load_timeout(20)
    try:
        yield drv
    finally:
        drv.quit()


def _wait_text(drv, css: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Waits until the element (on the page after a click's navigation) shows text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(drv, 15).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css),
                                                                  text))


def _login(drv, env: DeskEnv, user: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    drv.get(env.url + "/login")
    drv.find_element(By.ID, "user").send_keys(user)
    drv.find_element(By.ID, "password").send_keys(USERS[user][1])
    drv.find_element(By.ID, "login").click()
    _wait_text(drv, "[data-testid=who]", f"{user} ({USERS[user][0]})")


def test_fraud_desk_day_alert_evidence_acknowledge(browser, env: DeskEnv,  # type: ignore[no-untyped-def]
                                                   tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    drv = browser
    _login(drv, env, "fiona")
    drv.get(env.url + "/fraud?day=2026-12-01")
    rows = drv.find_elements(By.CSS_SELECTOR, "[data-testid=alert-row]")
    telecom = [m for m in env.day.messages
               if not m.report["kind"].startswith(("parcel.", "agent."))]
    assert len(rows) == len(telecom)
    assert {r.get_attribute("data-kind") for r in rows} <= {"simbox.sim", "simbox.device",
                                                           "goip.endpoint"}
    target = env.day.planted["moving_sim"][1]
    row = next(r for r in rows if r.get_attribute("data-id") == target)
    assert "3 reports" in row.text  # the moving SIM's case
    row.find_element(By.CSS_SELECTOR, "[data-testid=open-alert]").click()
    _wait_text(drv, "[data-testid=alert-id]", target)
    evidence = drv.find_element(By.CSS_SELECTOR, "[data-testid=evidence]").text
    assert "many short outgoing calls" in evidence and "calls_out" in evidence
    assert "8613900000000" not in drv.page_source          # the peer only as pseudonym
    assert "bs-00 → bs-01 → bs-02" in drv.find_element(
        By.CSS_SELECTOR, "[data-testid=case]").text
    drv.find_element(By.ID, "note").send_keys("called the carrier")
    drv.find_element(By.ID, "ack").click()
    _wait_text(drv, "[data-testid=alert-status]", "acknowledged")
    drv.save_screenshot(str(tmp_path / "fraud-alert.png"))
    drv.get(env.url + "/fraud?day=2026-12-01&status=acknowledged")
    ids = [r.get_attribute("data-id")
           for r in drv.find_elements(By.CSS_SELECTOR, "[data-testid=alert-row]")]
    assert target in ids
    # this desk only
    drv.get(env.url + "/inspection")
    assert "not yours" in drv.find_element(By.CSS_SELECTOR, "[data-testid=error]").text
    assert not drv.find_elements(By.CSS_SELECTOR, "[data-testid=nav-inspection]")


def test_inspection_desk_and_admin_desk(browser, env: DeskEnv) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    drv = browser
    _login(drv, env, "ivan")
    drv.get(env.url + "/inspection?day=2026-12-01")
    rows = drv.find_elements(By.CSS_SELECTOR, "[data-testid=alert-row]")
    assert rows and {r.get_attribute("data-kind") for r in rows} <= {
        "parcel.card_batch", "parcel.mismatch"}
    target = env.day.planted["depot_chain"][0]
    next(r for r in rows if r.get_attribute("data-id") == target).find_element(
        By.CSS_SELECTOR, "[data-testid=open-alert]").click()
    _wait_text(drv, "[data-testid=alert-id]", target)
    crop = drv.find_element(By.CSS_SELECTOR, "[data-testid=crop]")
    assert drv.execute_script("return arguments[0].naturalWidth", crop) == 96
    assert drv.find_element(By.CSS_SELECTOR, "[data-testid=divert]").text == "acted"
    drv.find_element(By.ID, "ack").click()
    _wait_text(drv, "[data-testid=alert-status]", "acknowledged")
    drv.get(env.url + "/fraud")
    assert drv.find_elements(By.CSS_SELECTOR, "[data-testid=error]")
    drv.find_element(By.CSS_SELECTOR, "[data-testid=logout]").click()
    _wait_text(drv, "h1", "Sign in")
    _login(drv, env, "ada")
    assert "1 of 2 boxes online" in drv.find_element(
        By.CSS_SELECTOR, "[data-testid=fleet-summary]").text
    drv.get(env.url + "/admin/audit")
    audit = drv.find_element(By.CSS_SELECTOR, "[data-testid=audit]").text
    assert "ivan" in audit and "acknowledged" in audit
    drv.get(env.url + "/fraud")
    assert drv.find_elements(By.CSS_SELECTOR, "[data-testid=error]")
