"""``/ui``, the web page of ``faice serve``, in a real headless Chromium against a real server whose
batches run in real containers: sign-in, live states and log tails without a reload, cancelling,
a refused upload shown at its line and column, a narrow window, the keyboard.

One browser and one server for the module (xdist keeps it on one worker). A screenshot of each step
is kept in ``test-output/ui/`` at the repository's root. Chromium missing is a failure, never a
skip: ``make test`` installs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faice.server.webui import FILES
from tests import serve_fixture
from tests.conftest import ROOT, eventually
from tests.redfiles import shell_red
from tests.serve_fixture import Server, post_red
from tests.serve_fixture import agency_red as red

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("ui")]

server = serve_fixture.server  # the module-scoped faice serve (users admin, alice, bob)
SHOTS = ROOT / "test-output" / "ui"
USER = "alice"
INVALID_RED = """\
redVersion: "9"
cli:
  cwlVersion: v1.0
  class: CommandLineTool
  baseCommand: [echo, hi]
  inputs: {}
  outputs: {}
inputs: {}
outputs: {}
container:
  engine: docker
  settings:
    image: {url: "faice-test-busybox:latest"}
    ram: 256
    colour: blue
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (as root in a sandbox it needs --no-sandbox) through Debian's chromedriver."""
    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("tests/test_ui.py needs Chromium and its driver: apt-get install chromium chromium-driver (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--disable-gpu", "--no-first-run"):
        options.add_argument(argument)
    chrome = webdriver.Chrome(options=options, service=Service(driver))
    chrome.set_script_timeout(30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield chrome
    finally:
        chrome.quit()


def shot(browser: Any, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def text_of(browser: Any, css: str) -> str:
    """The text of the first element matching ``css`` now ("" when there is none)."""
    return browser.execute_script("const e = document.querySelector(arguments[0]); return e ? e.textContent : ''", css)


def wait_text(browser: Any, css: str, pattern: str, timeout: float = 30) -> str:
    return eventually(lambda: (t := text_of(browser, css)) and re.search(pattern, t) and t, timeout, 0.1,
                      what=lambda: f"{css} matching {pattern!r}: {text_of(browser, css)!r}; the page says: {text_of(browser, 'body')!r}")


def signed_in(browser: Any, server: Server, hash_: str = "#/experiments") -> None:
    """The page at ``hash_``, signed in as USER (through the form when the session has no token)."""
    from selenium.webdriver.common.by import By

    browser.get(f"{server.url}/ui{hash_}")
    eventually(lambda: text_of(browser, "h2"), 10, what="a view")
    if browser.find_elements(By.ID, "signin"):
        browser.find_element(By.ID, "signin-user").send_keys(USER)
        browser.find_element(By.ID, "signin-password").send_keys(server.passwords[USER])
        browser.find_element(By.CSS_SELECTOR, "#signin button[type=submit]").click()
        eventually(lambda: not browser.find_elements(By.ID, "signin"), 10, what="signed in")


def batch_of(server: Server, experiment_id: str, index: int = 0) -> str:
    listed = server.get("/batches", USER, params={"experimentId": experiment_id, "ascending": "true"}).json()
    return listed[index]["_id"]


def state_shown(browser: Any) -> str:
    return browser.execute_script("const e = document.querySelector('dd[data-field=state] [data-state]'); return e ? e.dataset.state : ''")


def no_horizontal_overflow(browser: Any) -> bool:
    return browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth && document.body.scrollWidth <= window.innerWidth")


# --- served offline, escaped -------------------------------------------------------------------


def test_the_page_and_its_files_are_served_offline_and_render_text_as_text(server: Server) -> None:
    page = server.get("/ui", None)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert set(re.findall(r'(?:src|href)="(/ui/[^"]+)"', page.text)) == {"/ui/ui.css", "/ui/app.js"}
    texts = {"index.html": page.text}
    for name in FILES:
        answer = server.get(f"/ui/{name}", None)
        assert answer.status_code == 200 and answer.headers["content-type"] == FILES[name], name
        texts[name] = answer.text
    assert all(server.get(f"/ui/{name}", None).status_code == 404 for name in ("__init__.py", "faice.db", "%2e%2e%2fwebui.py"))
    for name, text in texts.items():
        assert not re.search(r"(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]", text), f"{name} refers to another host"
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", text), f"{name} writes HTML from text"
    assert "createTextNode" in texts["app.js"] and "textContent" in texts["app.js"]
    assert "new EventSource" not in texts["live.js"] and "Last-Event-ID" in texts["live.js"]
    assert not re.search(r"[?&](?:token|access_token|password)=", "".join(texts.values()))  # secrets never in a URL
    # the page's 401s come without the Basic realm: a browser would open its own password dialog and hold the fetch()
    scripted = server.get("/version", None, headers={"X-Requested-With": "XMLHttpRequest", "Authorization": "Bearer expired"})
    assert scripted.status_code == 401 and "WWW-Authenticate" not in scripted.headers
    assert server.get("/version", None).headers["WWW-Authenticate"].startswith("Basic realm=")
    # what an installed wheel carries: every file of faice/server/ui matches the package data
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["faice.server"]
    folder = ROOT / "faice" / "server"
    assert {p.name for p in (folder / "ui").iterdir()} == set(FILES) and all(any((folder / "ui" / n).match(str(folder / p)) for p in patterns) for n in FILES)


# --- sign-in with the keyboard ------------------------------------------------------------------


def test_sign_in_with_the_keyboard_a_wrong_password_is_shown_then_the_experiments(browser: Any, server: Server) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    experiment_id = post_red(server, red("echo ready"), USER)
    browser.get(f"{server.url}/ui")
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{server.url}/ui")
    wait_text(browser, "h2", "Sign in")
    active = lambda: browser.execute_script("return document.activeElement.id")  # noqa: E731
    for _ in range(6):  # the skip link, then the form's first field
        ActionChains(browser).send_keys(Keys.TAB).perform()
        if active() == "signin-user":
            break
    assert active() == "signin-user"
    ActionChains(browser).send_keys(USER, Keys.TAB).perform()
    assert active() == "signin-password"
    shot(browser, "01-sign-in")
    ActionChains(browser).send_keys("not-the-password", Keys.ENTER).perform()
    wait_text(browser, "#signin-error", "invalid user name or password")
    shot(browser, "02-sign-in-refused")
    assert browser.execute_script("return sessionStorage.length") == 0  # the typed text replaces the selected password
    assert active() == "signin-password" and browser.execute_script("const e = document.activeElement; return e.selectionEnd - e.selectionStart") > 0
    ActionChains(browser).send_keys(server.passwords[USER], Keys.ENTER).perform()
    wait_text(browser, "h2", "^Experiments$")
    wait_text(browser, "#main table", experiment_id)
    eventually(lambda: text_of(browser, f"tr[data-id='{experiment_id}'] td[data-state=succeeded]") == "1", 30,
               what=lambda: text_of(browser, f"tr[data-id='{experiment_id}']"))
    shot(browser, "03-experiments")
    page_url = browser.current_url
    assert "alice-password" not in page_url and "token" not in page_url.lower()
    assert browser.execute_script("return Object.keys(sessionStorage)") == ["faice.session"]


# --- live --------------------------------------------------------------------------------------


def test_a_batch_goes_from_waiting_to_succeeded_with_its_log_tail_without_a_reload(browser: Any, server: Server) -> None:
    experiment_id = post_red(server, red("echo first line; sleep 2; echo second line; sleep 2; echo last line"), USER)
    batch_id = batch_of(server, experiment_id)
    signed_in(browser, server, f"#/batch/{batch_id}")
    browser.execute_script("window.notReloaded = true")
    eventually(lambda: state_shown(browser), 10, what="the batch's state")
    assert state_shown(browser) in ("registered", "scheduled", "processing"), state_shown(browser)
    wait_text(browser, "#log-stdout", "first line", 20)
    assert state_shown(browser) in ("scheduled", "processing") and "last line" not in text_of(browser, "#log-stdout")  # the tail while it runs
    shot(browser, "04-batch-running")
    eventually(lambda: state_shown(browser) == "succeeded", 30, 0.1, what=lambda: state_shown(browser))
    assert browser.execute_script("return window.notReloaded === true")
    wait_text(browser, "#log-stdout", "first line\nsecond line\nlast line")
    assert [s for s in browser.execute_script("return [...document.querySelectorAll('tbody [data-state]')].map(e => e.dataset.state)")] \
        == ["registered", "scheduled", "processing", "succeeded"]
    wait_text(browser, "#outputs", "no outputs")
    assert not browser.execute_script("return !!document.getElementById('cancel-batch')")
    shot(browser, "05-batch-succeeded")


def test_a_recorded_output_is_downloaded_with_the_token(browser: Any, server: Server, tmp_path: Path) -> None:
    """The page fetches the output with its Bearer token and hands the bytes to the browser as a file."""
    from selenium.webdriver.common.by import By

    data = shell_red("printf 'result of the run' > result.txt", outputs={"result": {"type": "File", "outputBinding": {"glob": "result.txt"}}})
    data["outputs"] = {}
    experiment_id = post_red(server, data, USER)
    serve_fixture.wait_final(server, experiment_id, USER)
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    signed_in(browser, server, f"#/batch/{batch_of(server, experiment_id)}")
    wait_text(browser, "#outputs", "Download result.txt")
    browser.find_element(By.CSS_SELECTOR, "#outputs button").click()
    saved = tmp_path / "result.txt"
    eventually(lambda: saved.exists() and saved.read_bytes() == b"result of the run", 15, what=lambda: sorted(p.name for p in tmp_path.iterdir()))
    shot(browser, "06-batch-output")


def test_cancel_a_running_batch_and_an_experiment_from_the_page(browser: Any, server: Server) -> None:
    from selenium.webdriver.common.by import By

    experiment_id = post_red(server, red("echo begun; sleep 60"), USER)
    batch_id = batch_of(server, experiment_id)
    signed_in(browser, server, f"#/batch/{batch_id}")
    wait_text(browser, "#log-stdout", "begun", 30)
    assert state_shown(browser) == "processing"
    browser.find_element(By.ID, "cancel-batch").click()
    browser.switch_to.alert.accept()
    eventually(lambda: state_shown(browser) == "cancelled", 15, 0.1, what=lambda: state_shown(browser))
    shot(browser, "07-batch-cancelled")
    assert server.get(f"/batches/{batch_id}", USER).json()["state"] == "cancelled"

    two = post_red(server, red('echo "$1"; sleep 60', ["a", "b"]), USER)
    browser.get(f"{server.url}/ui#/batches?experimentId={two}")
    states = lambda: browser.execute_script("return [...document.querySelectorAll('#main tbody [data-state]')].map(e => e.dataset.state)")  # noqa: E731
    eventually(lambda: len(states()) == 2, 10, what=states)
    browser.execute_script("window.notReloaded = true")
    browser.find_element(By.ID, "cancel-experiment").click()
    browser.switch_to.alert.accept()
    eventually(lambda: states() == ["cancelled", "cancelled"], 15, 0.1, what=states)
    assert browser.execute_script("return window.notReloaded === true")
    shot(browser, "08-experiment-cancelled")


def test_an_expired_access_token_is_renewed_and_sign_out_forgets_the_session(browser: Any, server: Server) -> None:
    from selenium.webdriver.common.by import By

    experiment_id = post_red(server, red("echo renewed"), USER)
    signed_in(browser, server)
    browser.execute_script("const s = JSON.parse(sessionStorage.getItem('faice.session')); s.access = 'expired'; sessionStorage.setItem('faice.session', JSON.stringify(s))")
    browser.refresh()
    wait_text(browser, "h2", "^Experiments$")
    wait_text(browser, "#main tbody", experiment_id)  # the list came: the refresh token gave a new access token
    assert browser.execute_script("return JSON.parse(sessionStorage.getItem('faice.session')).access") not in ("expired", None)
    browser.find_element(By.ID, "sign-out").click()
    wait_text(browser, "h2", "Sign in")
    assert browser.execute_script("return sessionStorage.length") == 0 and not browser.find_element(By.ID, "nav").is_displayed()
    signed_in(browser, server)


# --- upload --------------------------------------------------------------------------------------


def test_an_invalid_upload_is_shown_at_its_line_and_column_and_a_valid_one_registers(browser: Any, server: Server, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    bad = tmp_path / "bad.yml"
    bad.write_text(INVALID_RED)
    signed_in(browser, server, "#/upload")
    wait_text(browser, "h2", "Register")
    browser.find_element(By.ID, "red-file").send_keys(str(bad))
    browser.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
    wait_text(browser, "#upload-error", r"bad\.yml:15:5: container\.settings\.colour: unknown key \"colour\"")
    problem = browser.find_element(By.CSS_SELECTOR, "#line-15 .problem")
    assert (problem.get_attribute("data-line"), problem.get_attribute("data-column")) == ("15", "5")
    assert text_of(browser, "#line-15 code") == "    colour: blue" and "has-problem" in browser.find_element(By.ID, "line-15").get_attribute("class")
    assert browser.execute_script("return document.activeElement.classList.contains('problem-link')")  # the first problem has the focus
    browser.switch_to.active_element.click()
    assert browser.execute_script("return document.activeElement.id") == "line-15"
    shot(browser, "09-upload-refused")

    good = tmp_path / "good.yml"
    data = shell_red("echo uploaded")
    data["outputs"] = {}
    from faice.red.dump import dumps

    good.write_text(dumps(data, "yaml"))
    browser.find_element(By.ID, "red-file").send_keys(str(good))
    browser.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
    experiment_id = wait_text(browser, "#registered-link", "^[0-9a-f]{24}$")
    assert server.get(f"/experiments/{experiment_id}", USER).status_code == 200
    shot(browser, "10-upload-registered")


# --- the event stream ---------------------------------------------------------------------------

#: a stand-in for GET /events in the page (installed before its scripts run): the test writes the
#: stream's text, and sees each request's Authorization and Last-Event-ID
FAKE_EVENTS = """
(() => {
  const real = window.fetch;
  window.fakeEvents = { requests: [], streams: [] };
  window.fetch = (input, options = {}) => {
    const url = String(input);
    if (!url.startsWith("/events")) return real(input, options);
    const headers = options.headers || {};
    window.fakeEvents.requests.push({ url, authorization: headers.Authorization || "", lastEventId: headers["Last-Event-ID"] ?? null });
    let controller;
    const body = new ReadableStream({ start(c) { controller = c; } });
    const encoder = new TextEncoder();
    window.fakeEvents.streams.push({ push: (text) => controller.enqueue(encoder.encode(text)), end: () => controller.close() });
    return Promise.resolve(new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } }));
  };
})();
"""


def test_the_page_follows_an_event_stream_and_reconnects_after_an_overflow(browser: Any, server: Server) -> None:
    """What live.js does with GET /events: batch and experiment events (split anywhere, between
    heartbeats) change the page, and an overflow makes it reconnect with Last-Event-ID."""
    experiment_id = post_red(server, red('echo "$1"', ["a", "b"]), USER)
    serve_fixture.wait_final(server, experiment_id, USER)
    first, second = batch_of(server, experiment_id, 0), batch_of(server, experiment_id, 1)
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FAKE_EVENTS})["identifier"]
    try:
        signed_in(browser, server, f"#/batches?experimentId={experiment_id}")
        browser.refresh()  # the stand-in is installed from the next document on
        states = lambda: browser.execute_script("return [...document.querySelectorAll('#main tbody [data-state]')].map(e => e.dataset.state)")  # noqa: E731
        eventually(lambda: states() == ["succeeded", "succeeded"], 10, what=states)
        requests = lambda: browser.execute_script("return window.fakeEvents.requests")  # noqa: E731
        eventually(lambda: len(requests()) == 1, 10, what=requests)
        assert requests()[0]["url"] == f"/events?experimentId={experiment_id}" and requests()[0]["authorization"].startswith("Bearer ")
        wait_text(browser, "#live", "streaming")
        push = lambda text, stream=0: browser.execute_script("window.fakeEvents.streams[arguments[1]].push(arguments[0])", text, stream)  # noqa: E731
        event = f'{{"batchId": "{second}", "experimentId": "{experiment_id}", "state": "failed", "time": 1733250000.12, "node": "elsewhere"}}'
        push(": keep-alive\n\nevent: batch\nid: 41\ndata: " + event[:30])
        push(event[30:] + "\n\n: keep-alive\n\n")
        eventually(lambda: states() == ["failed", "succeeded"], 10, what=states)  # newest first: the second batch is on top
        assert text_of(browser, f"tr[data-id='{second}'] td:nth-child(5)") == "elsewhere" and text_of(browser, f"tr[data-id='{first}'] td:nth-child(5)") != "elsewhere"
        shot(browser, "11-streamed-batch-event")
        push("event: overflow\ndata: {}\n\n")
        eventually(lambda: len(requests()) == 2, 10, what=requests)
        assert requests()[1]["lastEventId"] == "41" and requests()[1]["authorization"].startswith("Bearer ")

        browser.get(f"{server.url}/ui#/experiments")
        cell = f"tr[data-id='{experiment_id}'] td[data-state=cancelled]"
        eventually(lambda: text_of(browser, cell) == "0", 10, what=lambda: text_of(browser, cell))
        eventually(lambda: browser.execute_script("return window.fakeEvents.streams.length") >= 3, 10, what="the experiments view's stream")
        counts = {"registered": 0, "scheduled": 1, "processing": 0, "succeeded": 3, "failed": 0, "cancelled": 7}
        push(f'event: experiment\ndata: {{"experimentId": "{experiment_id}", "batches": {json.dumps(counts)}, "finished": false}}\n\n',
             browser.execute_script("return window.fakeEvents.streams.length - 1"))
        eventually(lambda: text_of(browser, cell) == "7", 10, what=lambda: text_of(browser, cell))
        assert browser.execute_script(f"return !!document.querySelector(\"tr[data-id='{experiment_id}'] button\")")  # unfinished: it can be cancelled
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script})
        browser.refresh()


# --- a narrow window ----------------------------------------------------------------------------


def test_a_narrow_window_reflows_without_horizontal_overflow(browser: Any, server: Server) -> None:
    signed_in(browser, server, "#/batches")
    browser.set_window_size(400, 900)
    try:
        batch_id = batch_of(server, post_red(server, red("echo narrow"), USER))
        views = (("12-narrow-batches", "#/batches"), ("13-narrow-experiments", "#/experiments"), ("14-narrow-batch", f"#/batch/{batch_id}"), ("15-narrow-upload", "#/upload"))
        for step, hash_ in views:
            browser.get(f"{server.url}/ui{hash_}")
            eventually(lambda: text_of(browser, "h2") and "Loading" not in text_of(browser, "#main"), 10, what="the view")
            assert browser.execute_script("return window.innerWidth") <= 400
            assert no_horizontal_overflow(browser), step
            shot(browser, step)
            if "batches" in step:  # the table is wider than the window: it scrolls inside its own box, the page does not
                assert browser.execute_script("const w = document.querySelector('.table-wrap'); return w.scrollWidth > w.clientWidth")
    finally:
        browser.set_window_size(1280, 900)
