"""A real headless Chromium, driven by Selenium, against live wsgiloop servers.

* the Django example with ``--static``: the admin login page comes up styled (its CSS
  from wsgiloop's static files), admin/admin logs in, the session cookie is set, and a
  screenshot of the admin index is saved;
* the native example: a message posted in one tab appears in a second tab through
  long polling, without that tab reloading; and the same over its WebSocket channel.

Needs Debian's Chromium and its driver (``apt-get install -y chromium chromium-driver``)
and the ``selenium`` Python package.  Missing either is a failure, not a skip.  Selenium
is pointed at /usr/bin/chromedriver, so Selenium Manager never runs (nothing is
downloaded).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
from support import ROOT, ServerProcess

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # reported by the driver fixture, as a failure
    webdriver = None

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
APT_HINT = "apt-get install -y chromium chromium-driver"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--window-size=1280,900",
]
SITE = ROOT / "examples" / "django_site"
WAIT = 15  # seconds: the most any one browser step may take


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: the browser tests need Debian's "
                    f"Chromium and its driver: {APT_HINT}", pytrace=False)
    if webdriver is None:
        pytest.fail("the browser tests need Selenium: pip install selenium", pytrace=False)


def _major_version(program: str) -> str:
    out = subprocess.run([program, "--version"], capture_output=True, text=True,
                         timeout=30).stdout
    match = re.search(r"\b(\d+)\.\d+\.\d+", out)
    assert match, f"{program} --version said {out!r}"
    return match.group(1)


def test_chromium_and_its_driver_are_installed():
    _require_browser()
    assert _major_version(CHROMIUM) == _major_version(CHROMEDRIVER), \
        f"Chromium and chromedriver differ in version: {APT_HINT}"


@pytest.fixture
def browser(tmp_path):
    """A fresh headless Chromium (own profile in tmp_path), always quit afterwards."""
    _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "driver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(WAIT)
        driver.set_script_timeout(WAIT)
        yield driver
    finally:
        driver.quit()


def wait(driver, condition, message, timeout=WAIT):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition, message)


@pytest.fixture
def django_server(tmp_path):
    """The Django example on a fresh database, its collected static files served by
    wsgiloop's --static."""
    static_root = tmp_path / "static"
    env = {"DJANGO_SITE_DB": str(tmp_path / "db.sqlite3"),
           "DJANGO_SITE_STATIC_ROOT": str(static_root),
           "DJANGO_SETTINGS_MODULE": "mysite.settings"}
    proc = subprocess.run([sys.executable, str(SITE / "setup_demo.py"), "--collectstatic",
                           "--quiet"], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with ServerProcess("examples.django_site.mysite.wsgi:application",
                       "--static", f"/static={static_root}", env=env) as server:
        yield server
    assert "Traceback" not in server.log, server.log


def test_django_admin_login_in_chromium(django_server, browser, tmp_path):
    base = django_server.url
    browser.get(base + "/admin/")
    wait(browser, lambda d: "/admin/login/" in d.current_url, "no redirect to the login")
    assert browser.title.startswith("Log in")

    # styled: the admin's CSS came from wsgiloop's --static (Django, DEBUG off, would 404)
    css = browser.execute_script("""
        return performance.getEntriesByType("resource")
            .filter(e => e.name.includes("/static/admin/css/"))
            .map(e => [new URL(e.name).pathname, e.responseStatus]);""")
    assert ["/static/admin/css/base.css", 200] in css, css
    assert browser.execute_script("""
        return [...document.styleSheets].some(s => s.href
            && s.href.endsWith("/static/admin/css/base.css") && s.cssRules.length > 50);""")
    # base.css styles the page: the header is not the browser's default transparent
    header = browser.find_element(By.ID, "header")
    assert header.value_of_css_property("background-color") not in (
        "rgba(0, 0, 0, 0)", "transparent")

    browser.find_element(By.ID, "id_username").send_keys("admin")
    browser.find_element(By.ID, "id_password").send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, "#login-form [type=submit]").click()
    wait(browser, lambda d: "Site administration" in d.title, "not logged in: " +
         browser.current_url)
    assert browser.current_url == base + "/admin/"
    assert "Site administration" in browser.find_element(By.TAG_NAME, "h1").text

    session = browser.get_cookie("sessionid")
    assert session and session["value"] and session["httpOnly"], session
    assert browser.get_cookie("csrftoken")

    shot = tmp_path / "django-admin.png"
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000, len(data)  # a styled page, not a blank one


def _waiting_polls(server) -> int:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("GET", "/api/messages")
        return json.loads(conn.getresponse().read())["waiting"]
    finally:
        conn.close()


def _wait_for_polls(server, count: int) -> None:
    deadline = time.monotonic() + WAIT
    while _waiting_polls(server) < count:
        assert time.monotonic() < deadline, f"fewer than {count} long polls waiting"
        time.sleep(0.05)


@pytest.fixture
def native_server():
    """The native example.  Requested before ``browser`` so that it stops after the
    browser has quit: a page's open long poll is a request in flight, which a graceful
    stop would wait for (and Chromium keeps it open even after leaving the page)."""
    with ServerProcess("examples.native_app:application") as server:
        yield server
    assert server.proc.returncode == 0, server.log


def test_native_board_long_polling_between_two_tabs(native_server, browser):
    server = native_server
    page = server.url + "/static/index.html"
    browser.get(page)
    reader = browser.current_window_handle
    wait(browser, lambda d: d.title == "wsgiloop live board", "the board did not load")
    _wait_for_polls(server, 1)
    browser.execute_script("window.notReloaded = true;")

    browser.switch_to.new_window("tab")
    writer = browser.current_window_handle
    browser.get(page)
    wait(browser, lambda d: d.execute_script("return document.readyState") == "complete",
         "the second tab did not load")
    # The reader's long poll is still open.  (The writer's identical GET /api/poll
    # waits inside Chromium, behind the reader's, in its HTTP cache lock; so the
    # server counts one waiting poll, not two.)
    _wait_for_polls(server, 1)

    text = f"hello from tab two {uuid.uuid4().hex[:8]}"
    browser.find_element(By.NAME, "author").send_keys("selenium")
    browser.find_element(By.NAME, "text").send_keys(text)
    posted = time.monotonic()
    browser.find_element(By.CSS_SELECTOR, "#post button").click()
    wait(browser, lambda d: d.find_element(By.NAME, "text").get_attribute("value") == "",
         "the form was not posted")

    browser.switch_to.window(reader)
    wait(browser, lambda d: text in d.find_element(By.ID, "messages").text,
         "the message did not reach the other tab", timeout=5)
    assert time.monotonic() - posted < 5
    items = browser.find_elements(By.CSS_SELECTOR, "#messages li")
    assert items[-1].text == "selenium" + text
    assert browser.execute_script("return window.notReloaded === true;")

    browser.switch_to.window(writer)  # the poster's own tab shows it too
    wait(browser, lambda d: text in d.find_element(By.ID, "messages").text,
         "the message did not come back to the posting tab", timeout=5)


def _open_sockets(server) -> int:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("GET", "/api/messages")
        return json.loads(conn.getresponse().read())["sockets"]
    finally:
        conn.close()


def test_native_live_channel_over_websockets_between_two_tabs(native_server, browser):
    server = native_server
    page = server.url + "/static/live.html"
    connected = "connected"
    browser.get(page)
    reader = browser.current_window_handle
    wait(browser, lambda d: d.find_element(By.ID, "status").text == connected,
         "the first tab's WebSocket did not open")
    browser.execute_script("window.notReloaded = true;")

    browser.switch_to.new_window("tab")
    browser.get(page)
    wait(browser, lambda d: d.find_element(By.ID, "status").text == connected,
         "the second tab's WebSocket did not open")
    assert _open_sockets(server) == 2  # one WebSocket per tab, both held by the server

    text = f"over the socket {uuid.uuid4().hex[:8]}"
    browser.find_element(By.NAME, "author").send_keys("chromium")
    browser.find_element(By.NAME, "text").send_keys(text)
    browser.find_element(By.CSS_SELECTOR, "#post button").click()
    wait(browser, lambda d: text in d.find_element(By.ID, "messages").text,
         "the message did not come back to the sending tab")

    browser.switch_to.window(reader)
    wait(browser, lambda d: text in d.find_element(By.ID, "messages").text,
         "the message did not reach the other tab")
    items = browser.find_elements(By.CSS_SELECTOR, "#messages li")
    assert items[-1].text == "chromium" + text
    assert browser.execute_script("return window.notReloaded === true;")
    # it came over the WebSocket: this page never polled or fetched the messages
    fetched = browser.execute_script("""
        return performance.getEntriesByType("resource").map(e => new URL(e.name).pathname)
            .filter(p => p.startsWith("/api/"));""")
    assert fetched == [], fetched
