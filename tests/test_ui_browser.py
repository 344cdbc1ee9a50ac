"""The built-in web page (issue #14) in a real headless chromium against a real ``webhookfast serve``.

The server is filled over HTTP with Alertmanager webhook payloads (one test goes through a real
Alertmanager): 250 instances of ``PagingTest`` (three pages of 100), a flapping ``HighCPU`` (five
resolved episodes), a firing ``DiskFull`` with a runbook link, and a ``Hostile`` alert whose labels
and annotations try markup, script, ``javascript:`` links, right-to-left overrides and 64 KB.
Every page load is checked for console errors and CSP violations (``support.browser``).
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import orjson
import pytest
from support.browser import Browser, require_chromium, texts
from support.servers import ServerProcess
from webhookfast._core import fingerprint

pytestmark = pytest.mark.timeout(240)

TOKEN = "ui-test-token-7f3a"
NOW = datetime.now(timezone.utc).replace(microsecond=0)

XSS = '<img src=x onerror="window.__pwned=1">'
BREAKOUT = '"><script>window.__pwned=2</script>'
RTL = "\u202eevil.exe\u202c txt"
BIG = "A" * 65536
HOSTILE_NAME = "Hostile<svg/onload=window.__pwned=4>"
HOSTILE = {"alertname": HOSTILE_NAME, "severity": "critical", "xss": XSS, "quote": BREAKOUT, "rtl": RTL, "big": BIG}
HOSTILE_ANNOTATIONS = {
    "runbook_url": "javascript:window.__pwned=3",
    "description": "<b>bold</b> & <a href=x>link</a>",
    "dashboard": "https://grafana.example/d/abc?x=1",
    "data": "data:text/html,<script>window.__pwned=5</script>",
}
HIGHCPU = {"alertname": "HighCPU", "severity": "critical", "job": "api", "team": "sre", "instance": "a1"}
DISKFULL = {"alertname": "DiskFull", "severity": "warning", "job": "db", "instance": "db1"}
DISK_ANNOTATIONS = {"summary": "Disk /var is 95% full", "runbook_url": "https://runbooks.example/disk"}
PAGING = 250


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def alert(
    labels: dict[str, str], starts: datetime, ends: datetime | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "status": "resolved" if ends else "firing",
        "labels": labels,
        "annotations": annotations or {"summary": f"{labels['alertname']} is {'resolved' if ends else 'firing'}"},
        "startsAt": iso(starts),
        "endsAt": iso(ends) if ends else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph?g0.expr=up",
    }


def webhook(alerts: list[dict[str, Any]], receiver: str = "oncall") -> bytes:
    return orjson.dumps(
        {
            "version": "4",
            "groupKey": '{}:{alertname="x"}',
            "truncatedAlerts": 0,
            "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
            "receiver": receiver,
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.example",
            "alerts": alerts,
        }
    )


def fill(server: ServerProcess, headers: dict[str, str] | None = None) -> None:
    payloads = [
        webhook(
            [
                alert(
                    {"alertname": "PagingTest", "severity": "info", "job": "batch", "i": f"{i:03d}"},
                    NOW - timedelta(minutes=50) + timedelta(seconds=i),
                )
                for i in range(PAGING)
            ]
        )
    ]
    for k in range(5):  # five short episodes: HighCPU flaps
        start = NOW - timedelta(minutes=45) + timedelta(minutes=6 * k)
        payloads.append(webhook([alert(HIGHCPU, start)]))
        payloads.append(webhook([alert(HIGHCPU, start, start + timedelta(minutes=2))]))
    payloads.append(webhook([alert(DISKFULL, NOW - timedelta(minutes=8), annotations=DISK_ANNOTATIONS)]))
    payloads.append(webhook([alert(HOSTILE, NOW - timedelta(minutes=5), annotations=HOSTILE_ANNOTATIONS)]))
    for body in payloads:
        resp = server.post("/webhook", body, headers={"content-type": "application/json", **(headers or {})})
        assert resp.status == 200, resp.text


@contextlib.contextmanager
def started(database_url: str, log_dir: Path, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    server = ServerProcess(database_url, log_dir, env=env, name="webhookfast-ui")
    server.start()
    try:
        yield server
    finally:
        server.stop(timeout=15)
        if server.is_running():
            server.kill()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    require_chromium()
    b = Browser()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def browser(chromium: Browser) -> Browser:
    chromium.console()  # drop what earlier tests left
    chromium.expected = []
    chromium.color_scheme("light")
    return chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    d = tmp_path_factory.mktemp("ui")
    with started(f"sqlite:///{d}/wf.db", d) as s:
        fill(s)
        yield s


def selector(matchers: str) -> str:
    return "/?" + urlencode({"match": matchers})


def load_alerts(b: Browser, url: str) -> list[Any]:
    b.get(url)
    b.wait_css("#alerts-table, .field-error:not([hidden]), .error")
    return b.css("#alerts-table tbody tr")


def rerendered(b: Browser, action: Any, css: str = "#alerts-table") -> None:
    """Runs ``action`` (which makes the page render again) and waits for a fresh ``css``."""
    b.js("for (const e of document.querySelectorAll('main *')) e.setAttribute('data-old', '1')")
    action()
    b.wait(lambda: b.css(f"{css}:not([data-old]), .field-error:not([hidden]):not([data-old])"), what=f"fresh {css}")


def tc(element: Any) -> str:
    """The text as in the DOM (``.text`` is the rendered text: a chip's flex items come out on lines)."""
    return str(element.get_attribute("textContent"))


def label(row: Any, name: str) -> str:
    """The value of label ``name`` in a row of the Alerts table (from its chip)."""
    for chip in row.find_elements("css selector", ".chip"):
        if tc(chip.find_element("css selector", ".k")) == name:
            return tc(chip.find_element("css selector", ".v"))
    raise AssertionError(f"no chip {name} in {tc(row)[:200]}")


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# -- Alerts -------------------------------------------------------------------------------------------


def test_alerts_page_lists_the_newest_first_with_every_column(browser: Browser, server: ServerProcess) -> None:
    rows = load_alerts(browser, server.url + "/")
    assert len(rows) == 100  # one page
    first = rows[0]
    assert first.get_attribute("data-fingerprint") == fingerprint(HOSTILE)
    disk = browser.css(f'tr[data-fingerprint="{fingerprint(DISKFULL)}"] td')
    assert [tc(c) for c in disk[:3]] == ["firing", "DiskFull", "severity=warning"]
    assert [tc(c) for c in browser.css(f'tr[data-fingerprint="{fingerprint(DISKFULL)}"] td.labels .chip')] == [
        "instance=db1",
        "job=db",
    ]
    # Firing: its duration runs to now (at least the 8 minutes since it started, in minutes and seconds).
    assert disk[5].text == "firing" and disk[7].text == "1"
    duration = re.fullmatch(r"(\d+)m \d+s|\d+h \d+m|\d+d \d+h", disk[6].text)
    assert duration and (duration.group(1) is None or int(duration.group(1)) >= 8), disk[6].text
    cpu = browser.css(f'tr[data-fingerprint="{fingerprint(HIGHCPU)}"]')
    assert len(cpu) == 5
    cells = cpu[0].find_elements("css selector", "td")
    assert cells[0].text == "resolved" and cells[6].text == "2m 0s" and cells[7].text == "2"
    starts = [r.find_elements("css selector", "time")[0].get_attribute("datetime") for r in rows]
    assert starts == sorted(starts, reverse=True)
    assert browser.css("#next-page")
    browser.assert_clean()


def test_a_matcher_typed_in_the_search_box_filters_the_table(browser: Browser, server: ServerProcess) -> None:
    load_alerts(browser, server.url + "/")
    box = browser.css("#f-match")[0]
    box.clear()
    rerendered(browser, lambda: box.send_keys('{alertname="PagingTest",i=~"00[0-4]"}\n'))
    rows = browser.css("#alerts-table tbody tr")
    assert [label(r, "i") for r in rows] == ["004", "003", "002", "001", "000"]
    assert query_of(browser.driver.current_url)["match"] == ['{alertname="PagingTest",i=~"00[0-4]"}']
    browser.assert_clean()


def test_a_bad_matcher_is_shown_under_the_search_box(browser: Browser, server: ServerProcess) -> None:
    browser.expect_console(r"status of 400")
    load_alerts(browser, server.url + "/")
    box = browser.css("#f-match")[0]
    box.clear()
    rerendered(browser, lambda: box.send_keys('{job=~"(unclosed"}\n'))
    error = browser.wait_css("#f-match-error:not([hidden])")
    assert "invalid regex for 'job'" in error.text and not error.text.lstrip().startswith("{")
    assert browser.css("#f-match")[0].get_attribute("aria-invalid") == "true"
    assert browser.css("#f-match")[0].get_attribute("value") == '{job=~"(unclosed"}'  # what the user typed stays
    assert not browser.css("#alerts-table")
    browser.assert_clean()


def test_clicking_a_label_chip_adds_its_matcher(browser: Browser, server: ServerProcess) -> None:
    load_alerts(browser, server.url + selector('{alertname="HighCPU"}'))
    chip = browser.css("#alerts-table td.labels .chip")[1]
    assert tc(chip) == "job=api"
    rerendered(browser, chip.click)
    assert query_of(browser.driver.current_url)["match"] == ['{alertname="HighCPU",job="api"}']
    assert browser.css("#f-match")[0].get_attribute("value") == '{alertname="HighCPU",job="api"}'
    assert len(browser.css("#alerts-table tbody tr")) == 5
    # The severity chip of a new search, with the keyboard: Tab to it, Enter.
    load_alerts(browser, server.url + selector('{job="db"}'))
    from selenium.webdriver.common.keys import Keys

    browser.css("#f-match")[0].click()
    active = None
    for _ in range(30):
        browser.driver.switch_to.active_element.send_keys(Keys.TAB)
        active = browser.driver.switch_to.active_element
        if "chip" in (active.get_attribute("class") or ""):
            break
    assert active is not None and tc(active) == "severity=warning"
    rerendered(browser, lambda: active.send_keys(Keys.ENTER))
    assert query_of(browser.driver.current_url)["match"] == ['{job="db",severity="warning"}']
    browser.assert_clean()


def test_the_url_holds_the_whole_query_and_round_trips(browser: Browser, server: ServerProcess) -> None:
    query = {
        "range": "7d",
        "match": '{alertname="HighCPU"}',
        "status": "resolved",
        "q": "RESOLVED",
        "sort": "last_seen",
        "order": "asc",
    }
    url = server.url + "/?" + urlencode(query)
    rows = load_alerts(browser, url)
    assert len(rows) == 5
    starts = [r.find_elements("css selector", "time")[0].get_attribute("datetime") for r in rows]
    assert starts == sorted(starts)  # last_seen ascending: the oldest episode first
    form = {k: browser.css(f"#f-{k}")[0].get_attribute("value") for k in ("match", "q", "status", "range", "sort")}
    assert form == {
        "match": query["match"],
        "q": "RESOLVED",
        "status": "resolved",
        "range": "7d",
        "sort": "last_seen:asc",
    }
    # Submitting the form unchanged gives the same URL; going back and forth keeps it.
    rerendered(browser, lambda: browser.css("#filters button[type=submit]")[0].click())
    assert query_of(browser.driver.current_url) == {k: [v] for k, v in query.items()}
    browser.get(server.url + "/overview")
    browser.wait_css("#chart-top")
    browser.driver.back()
    browser.wait_css("#alerts-table")
    assert len(browser.css("#alerts-table tbody tr")) == 5 and query_of(browser.driver.current_url)["q"] == ["RESOLVED"]
    # A custom range in the URL fills the date inputs and filters: only HighCPU's third episode.
    third = NOW - timedelta(minutes=45) + timedelta(minutes=12)
    custom = {
        "since": iso(third - timedelta(minutes=1)),
        "until": iso(third + timedelta(minutes=1)),
        "match": '{alertname="HighCPU"}',
    }
    rows = load_alerts(browser, server.url + "/?" + urlencode(custom))
    assert len(rows) == 1 and browser.css("#f-range")[0].get_attribute("value") == "custom"
    assert browser.css("#f-since")[0].get_attribute("value") != ""
    browser.assert_clean()


def test_paging_by_cursor_reaches_the_last_row(browser: Browser, server: ServerProcess) -> None:
    load_alerts(browser, server.url + selector('{alertname="PagingTest"}'))
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        seen += [label(r, "i") for r in browser.css("#alerts-table tbody tr")]
        nxt = browser.css("#next-page")
        if not nxt:
            break
        assert "cursor=" in nxt[0].get_attribute("href")
        rerendered(browser, nxt[0].click)
        assert browser.css("#first-page")
    assert pages == 3
    assert seen == [f"{i:03d}" for i in reversed(range(PAGING))]  # every row once, in order, the last one last
    browser.assert_clean()


def test_live_refresh_keeps_the_query_and_the_scroll_position(browser: Browser, server: ServerProcess) -> None:
    url = server.url + "/?" + urlencode({"match": '{job=~"batch|live"}'})
    load_alerts(browser, url)
    browser.css("#live")[0].click()
    browser.js("window.scrollTo(0, 900)")
    y = browser.js("return window.scrollY")
    assert y >= 800
    server.post(
        "/webhook",
        webhook([alert({"alertname": "LiveNew", "job": "live"}, datetime.now(timezone.utc))]),
        headers={"content-type": "application/json"},
    )
    browser.wait(
        lambda: browser.css("#alerts-table td.name a") and browser.css("#alerts-table td.name a")[0].text == "LiveNew",
        timeout=25,
        what="the live refresh to show LiveNew",
    )
    assert browser.js("return window.scrollY") == y
    assert browser.driver.current_url == url and browser.css("#live")[0].is_selected()
    browser.css("#live")[0].click()  # off again, for the other tests
    browser.assert_clean()


# -- An alert -----------------------------------------------------------------------------------------


def test_alert_page_shows_labels_annotations_episodes_and_log(browser: Browser, server: ServerProcess) -> None:
    browser.get(f"{server.url}/alerts/{fingerprint(DISKFULL)}")
    browser.wait_css("#timeline")
    assert browser.css("main h1")[0].text == "DiskFull firing"
    link = browser.css("dd a.ext")[0]
    assert link.get_attribute("href") == DISK_ANNOTATIONS["runbook_url"] and "noopener" in link.get_attribute("rel")
    assert browser.css("#timeline .episode.open")  # firing: open-ended
    browser.get(f"{server.url}/alerts/{fingerprint(HIGHCPU)}")
    browser.wait_css("#timeline")
    assert len(browser.css("#timeline .episode")) == 5 and not browser.css("#timeline .episode.open")
    widths = [float(r.get_attribute("width")) for r in browser.css("#timeline rect")]
    assert len({round(w) for w in widths}) == 1  # five 2-minute episodes, same width
    log = texts(browser.css("#log-table tbody tr"))
    assert len(log) == 15  # per episode: a heading row, the firing and the resolved change
    assert sum("resolved after 2m 0s" in t for t in log) == 5
    # Each episode links to what else started around it (±15 min): the neighbours of the oldest one.
    around = browser.css("#log-table a.around")
    assert len(around) == 5
    rerendered(browser, around[-1].click)
    first = NOW - timedelta(minutes=45)
    q = query_of(browser.driver.current_url)
    assert (q["since"], q["until"]) == (
        [iso(first - timedelta(minutes=15)).replace("Z", ".000Z")],
        [iso(first + timedelta(minutes=15)).replace("Z", ".000Z")],
    )
    names = {tc(a) for a in browser.css("#alerts-table td.name a")}
    assert names == {"HighCPU", "PagingTest"}  # PagingTest started 50 min ago, HighCPU's next episodes too
    browser.driver.back()
    browser.wait_css("#timeline")
    # A label links to the Alerts page filtered by it.
    chip = next(c for c in browser.css("ul.chips a.chip") if tc(c) == "team=sre")
    rerendered(browser, chip.click)
    assert query_of(browser.driver.current_url)["match"] == ['{team="sre"}']
    assert len(browser.css("#alerts-table tbody tr")) == 5
    browser.assert_clean()


# -- Overview -----------------------------------------------------------------------------------------


def test_overview_draws_the_charts_and_each_links_to_the_alerts(browser: Browser, server: ServerProcess) -> None:
    browser.get(server.url + "/overview")
    browser.wait_css("#chart-top")
    assert browser.css("#firing-now h2")[0].text.startswith("Firing now: ")
    assert {e.get_attribute("aria-label").split(" firing")[0] for e in browser.css("#chart-firing a")} >= {
        "1",
        "2",
    } or browser.css("#chart-firing a")
    top = browser.css("#chart-top a")
    assert 3 <= len(top) <= 10
    flapping = [a.get_attribute("aria-label") for a in browser.css("#chart-flapping a")]
    assert flapping and flapping[0].startswith("HighCPU") and "10 state changes" in flapping[0]
    ttr = [a.get_attribute("aria-label") for a in browser.css("#chart-ttr a")]
    assert any(t.startswith("HighCPU: median 2m 0s, p90 2m 0s over 5 resolved") for t in ttr)
    bars = browser.css("#histogram a rect.bar")
    assert bars and sum(1 for _ in bars) >= 2
    browser.assert_clean()
    # The flappiest bar opens the Alerts page on that label set.
    rerendered(browser, lambda: browser.css("#chart-flapping a rect.bar")[0].click())
    assert query_of(browser.driver.current_url)["fingerprint"] == [fingerprint(HIGHCPU)]
    assert len(browser.css("#alerts-table tbody tr")) == 5
    # A histogram bar opens the Alerts page on its time slice.
    browser.get(server.url + "/overview")
    browser.wait_css("#histogram")
    rerendered(browser, lambda: browser.css("#histogram a rect.bar")[-1].click())
    q = query_of(browser.driver.current_url)
    assert q["range"] == ["custom"] and q["since"] and q["until"] and browser.css("#alerts-table tbody tr")
    browser.assert_clean()


# -- Hostile values -----------------------------------------------------------------------------------


def test_hostile_label_and_annotation_values_render_as_inert_text(browser: Browser, server: ServerProcess) -> None:
    rows = load_alerts(browser, server.url + selector('{alertname=~"Hostile.*"}'))
    assert len(rows) == 1
    assert rows[0].find_element("css selector", "td.name a").text == HOSTILE_NAME
    values = {tc(c.find_element("css selector", ".k")): c for c in rows[0].find_elements("css selector", ".chip")}
    assert browser.js("return arguments[0].querySelector('.v').textContent", values["xss"]) == XSS
    assert browser.js("return arguments[0].querySelector('.v').textContent", values["quote"]) == BREAKOUT
    assert browser.js("return arguments[0].querySelector('.v').textContent", values["rtl"]) == RTL
    assert browser.js("return arguments[0].querySelector('.v').textContent", values["big"]) == BIG
    # The override stays inside its chip: the value is an isolated bidi run.
    assert (
        browser.js("return getComputedStyle(arguments[0].querySelector('.v')).unicodeBidi", values["rtl"]) == "isolate"
    )
    assert browser.js("return document.querySelectorAll('main img, main script, main svg[onload], main b').length") == 0
    # 64 KB: the chip is clipped, the row stays a row.
    assert browser.js("return arguments[0].getBoundingClientRect().width", values["big"]) < 600
    browser.get(f"{server.url}/alerts/{fingerprint(HOSTILE)}")
    browser.wait_css("#timeline")
    dds = {
        dt.text: dd for dt, dd in zip(browser.css("dl.annotations dt"), browser.css("dl.annotations dd"), strict=True)
    }
    assert dds["runbook_url"].text == HOSTILE_ANNOTATIONS["runbook_url"]
    assert dds["description"].text == HOSTILE_ANNOTATIONS["description"]
    assert not dds["runbook_url"].find_elements("css selector", "a") and not dds["data"].find_elements(
        "css selector", "a"
    )
    links = browser.css("main a[href]")
    assert links and all(urlsplit(a.get_attribute("href")).scheme in ("http", "https") for a in links)
    assert dds["dashboard"].find_element("css selector", "a").get_attribute("href") == HOSTILE_ANNOTATIONS["dashboard"]
    assert browser.css("main h1 .text")[0].text == HOSTILE_NAME
    assert browser.driver.title.startswith(HOSTILE_NAME)
    # Nothing ran: no script of the values, no handler, no javascript: link followed.
    for a in browser.css("main a.ext"):
        assert a.get_attribute("target") == "_blank"
    assert browser.js("return window.__pwned === undefined")
    browser.assert_clean()
    # A chip of markup and quotes becomes a correctly quoted matcher that finds its row again.
    load_alerts(browser, server.url + selector('{alertname=~"Hostile.*"}'))
    quote_chip = next(
        c for c in browser.css("#alerts-table .chip") if tc(c.find_element("css selector", ".k")) == "quote"
    )
    rerendered(browser, quote_chip.click)
    assert query_of(browser.driver.current_url)["match"] == [
        '{alertname=~"Hostile.*",quote=' + orjson.dumps(BREAKOUT).decode() + "}"
    ]
    assert len(browser.css("#alerts-table tbody tr")) == 1
    assert browser.js("return window.__pwned === undefined")
    # The 64 KB chip cannot be a matcher (the API takes values up to 4 KB): said in place, no request.
    load_alerts(browser, server.url + selector('{alertname=~"Hostile.*"}'))
    url = browser.driver.current_url
    big = next(c for c in browser.css("#alerts-table .chip") if tc(c.find_element("css selector", ".k")) == "big")
    big.click()
    assert "too long to filter by (65536 characters" in browser.wait_css("#f-match-error:not([hidden])").text
    assert browser.driver.current_url == url and len(browser.css("#alerts-table tbody tr")) == 1
    assert browser.js("return window.__pwned === undefined")
    browser.assert_clean()


def test_page_helpers_quote_matchers_and_refuse_unsafe_links(browser: Browser, server: ServerProcess) -> None:
    """dom.js's helpers, run in the page (the module the page itself uses)."""
    load_alerts(browser, server.url + "/")
    got = browser.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import("/ui/dom.js").then((m) => done({
          matchers: [
            m.matcherFor("job", 'a"b\\\\c\\nd'), m.matcherFor("dotted.name", "x"),
            m.addMatcher("", 'a="1"'), m.addMatcher("{}", 'a="1"'), m.addMatcher('{b="2"}', 'a="1"'),
            m.addMatcher('HighCPU{b="2"}', 'a="1"'), m.addMatcher("HighCPU", 'a="1"'),
          ],
          hrefs: ["https://x.example/r?a=1", "HTTP://X.EXAMPLE", "javascript:alert(1)", " javascript:alert(1)",
                  "data:text/html,x", "//evil.example", "/relative", "http//broken", "https://"].map(m.safeHref),
          durations: [0, 59499, 61000, 3600000 + 61000, 86400000 * 2 + 3600000].map(m.fmtDuration),
        }));""")
    assert got["matchers"] == [
        r'job="a\"b\\c\nd"',  # Go escapes (JSON's are a subset): quote, backslash, newline
        '"dotted.name"="x"',
        '{a="1"}',
        '{a="1"}',
        '{b="2",a="1"}',
        'HighCPU{b="2",a="1"}',
        'HighCPU{a="1"}',
    ]
    assert got["hrefs"] == ["https://x.example/r?a=1", "http://x.example/", None, None, None, None, None, None, None]
    assert got["durations"] == ["0s", "59s", "1m 1s", "1h 1m", "2d 1h"]
    browser.assert_clean()


# -- Serving, auth, looks -----------------------------------------------------------------------------


def test_page_weight_and_phone_width(browser: Browser, server: ServerProcess, tmp_path: Path) -> None:
    load_alerts(browser, server.url + "/")
    browser.get(server.url + "/overview")  # every module loaded
    browser.wait_css("#chart-top")
    load_alerts(browser, server.url + "/")
    weight = browser.js("""
        const nav = performance.getEntriesByType("navigation")[0];
        let n = nav.decodedBodySize;
        for (const r of performance.getEntriesByType("resource")) if (!r.name.includes("/api/")) n += r.decodedBodySize;
        return n;""")
    static = sum(len(p.read_bytes()) for p in (Path(__file__).parents[1] / "python/webhookfast/ui/static").iterdir())
    assert weight <= 100_000 and static <= 100_000, (weight, static)
    browser.set_size(390, 844)
    try:
        load_alerts(browser, server.url + "/")
        # Nothing wider than the phone: the table scrolls inside its own box.
        assert browser.js("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        browser.screenshot(tmp_path, "alerts-phone-light")
        browser.color_scheme("dark")
        browser.screenshot(tmp_path, "alerts-phone-dark")
    finally:
        browser.set_size(1400, 1000)
    browser.assert_clean()


def test_screenshots_of_every_page_light_and_dark(browser: Browser, server: ServerProcess, tmp_path: Path) -> None:
    pages = {
        "alerts": ("/", "#alerts-table"),
        "overview": ("/overview", "#chart-top"),
        "alert": (f"/alerts/{fingerprint(HIGHCPU)}", "#timeline"),
    }
    backgrounds = {}
    for scheme in ("light", "dark"):
        browser.color_scheme(scheme)
        for name, (path, ready) in pages.items():
            browser.get(server.url + path)
            browser.wait_css(ready)
            backgrounds[scheme] = browser.js("return getComputedStyle(document.body).backgroundColor")
            browser.screenshot(tmp_path, f"{name}-{scheme}")
    assert backgrounds["light"] != backgrounds["dark"]  # the theme follows the system setting
    assert len(list(tmp_path.glob("*.png"))) == 6
    browser.assert_clean()


def test_bearer_only_the_page_asks_for_the_token_once_per_tab(browser: Browser, tmp_path: Path) -> None:
    browser.expect_console(r"status of 401")
    with started(f"sqlite:///{tmp_path}/wf.db", tmp_path, env={"WEBHOOKFAST_BEARER_TOKEN": TOKEN}) as s:
        fill(s, headers={"authorization": f"Bearer {TOKEN}"})
        shell = s.get("/")
        assert shell.status == 200 and b"HighCPU" not in shell.body  # the shell is public and holds no data
        assert s.get("/api/v1/alerts").status == 401
        browser.get(s.url + "/")
        form = browser.wait_css("#token-form:not([hidden])")
        assert form.is_displayed() and not browser.css("#alerts-table")
        browser.css("#token")[0].send_keys("wrong\n")
        browser.wait(lambda: browser.css("#token-error")[0].is_displayed(), what="the refusal")
        assert browser.css("#token-error")[0].text == "That token was refused."
        browser.css("#token")[0].send_keys(TOKEN + "\n")
        browser.wait_css("#alerts-table")
        assert len(browser.css("#alerts-table tbody tr")) == 100
        browser.css('a[data-nav="overview"]')[0].click()
        browser.wait_css("#chart-top")
        browser.driver.refresh()  # kept for the tab
        browser.wait_css("#chart-top")
        assert not browser.css("#token-form")[0].is_displayed()
        assert browser.js("return sessionStorage.getItem('webhookfast.token')") == TOKEN
        browser.css("#signout")[0].click()
        browser.wait_css("#token-form:not([hidden])")
        assert browser.js("return sessionStorage.getItem('webhookfast.token')") is None
        browser.screenshot(tmp_path, "token-prompt-light")
        browser.assert_clean()


def test_basic_auth_protects_the_page_and_its_fetches(browser: Browser, tmp_path: Path) -> None:
    env = {"WEBHOOKFAST_BASIC_AUTH_USER": "oncall", "WEBHOOKFAST_BASIC_AUTH_PASSWORD": "pa ss:wörd"}
    creds = "Basic " + base64.b64encode("oncall:pa ss:wörd".encode()).decode()
    with started(f"sqlite:///{tmp_path}/wf.db", tmp_path, env=env) as s:
        fill(s, headers={"authorization": creds})
        for path in ("/", "/overview", f"/alerts/{fingerprint(HIGHCPU)}", "/ui/app.js", "/ui/app.css"):
            resp = s.get(path)
            assert resp.status == 401 and resp.headers["www-authenticate"].startswith("Basic"), path
            assert s.get(path, headers={"authorization": creds}).status == 200, path
        # What the browser sends after its prompt: credentials in the URL, kept for the page's fetches.
        browser.get(f"http://oncall:{quote('pa ss:wörd', safe='')}@127.0.0.1:{s.port}/")
        browser.wait_css("#alerts-table")
        assert len(browser.css("#alerts-table tbody tr")) == 100
        assert not browser.css("#token-form")[0].is_displayed()
        browser.css('a[data-nav="overview"]')[0].click()
        browser.wait_css("#chart-top")
        browser.assert_clean()


def test_bearer_and_basic_the_browser_takes_the_basic_challenge(browser: Browser, tmp_path: Path) -> None:
    """Browsers read one challenge per WWW-Authenticate line: with a token and basic auth both
    configured, the Basic challenge must have a line of its own for the browser to answer it."""
    import http.client

    env = {
        "WEBHOOKFAST_BEARER_TOKEN": TOKEN,
        "WEBHOOKFAST_BASIC_AUTH_USER": "oncall",
        "WEBHOOKFAST_BASIC_AUTH_PASSWORD": "pw",
    }
    with started(f"sqlite:///{tmp_path}/wf.db", tmp_path, env=env) as s:
        fill(s, headers={"authorization": f"Bearer {TOKEN}"})
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        conn.close()
        assert resp.status == 401
        assert sorted(resp.headers.get_all("www-authenticate") or []) == [
            'Basic realm="webhookfast", charset="UTF-8"',
            'Bearer realm="webhookfast"',
        ]
        browser.get(f"http://oncall:pw@127.0.0.1:{s.port}/overview")
        browser.wait_css("#chart-top")
        assert not browser.css("#token-form")[0].is_displayed()
        browser.assert_clean()


def test_ui_off_leaves_only_the_api(tmp_path: Path) -> None:
    with started(f"sqlite:///{tmp_path}/wf.db", tmp_path, env={"WEBHOOKFAST_UI": "false"}) as s:
        for path in ("/", "/overview", "/alerts/0123456789abcdef", "/ui/app.js"):
            resp = s.get(path)
            assert resp.status == 404 and resp.json()["error"]["code"] == "not_found", path
        assert s.get("/api/v1/alerts").status == 200


def test_served_files_carry_a_strict_csp(server: ServerProcess) -> None:
    for path, kind in (
        ("/", "text/html"),
        ("/overview", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ):
        resp = server.get(path)
        assert resp.status == 200 and resp.headers["content-type"].startswith(kind), path
        csp = resp.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp, csp
        assert "," not in csp  # one policy, not the API's default beside it
        assert resp.headers["x-content-type-options"] == "nosniff"
    html = server.get("/").text
    assert "<script>" not in html and "style=" not in html and "<style" not in html
    assert "http://" not in html.replace('xmlns="http://', "") and "https://" not in html
    for path in ("/ui/nope.js", "/ui/", "/alerts/", "/alerts/a/b", "/index.html"):
        assert server.get(path).status == 404, path
    assert server.get("/api/v1/alerts").headers["content-security-policy"].startswith("default-src 'none'; frame")


# -- Other stores and senders -------------------------------------------------------------------------


def test_pages_on_postgresql(browser: Browser, postgres_server: Any, tmp_path: Path) -> None:
    from test_api_history import _pg_database

    with _pg_database(postgres_server) as url, started(url, tmp_path) as s:
        fill(s)
        rows = load_alerts(browser, s.url + selector('{alertname="PagingTest"}'))
        assert len(rows) == 100
        while browser.css("#next-page"):
            rerendered(browser, browser.css("#next-page")[0].click)
        assert label(browser.css("#alerts-table tbody tr")[-1], "i") == "000"
        browser.get(s.url + "/overview")
        browser.wait_css("#chart-top")
        assert browser.css("#chart-flapping a")[0].get_attribute("aria-label").startswith("HighCPU")
        assert browser.css("#histogram a rect.bar")
        browser.get(f"{s.url}/alerts/{fingerprint(HIGHCPU)}")
        browser.wait_css("#timeline")
        assert len(browser.css("#timeline .episode")) == 5
        browser.assert_clean()


def test_an_alert_sent_through_a_real_alertmanager_shows_up(
    browser: Browser, server_factory: Any, alertmanager_factory: Any
) -> None:
    s = server_factory()
    am = alertmanager_factory(s.url + "/webhook")
    labels = {"alertname": "ThroughAlertmanager", "severity": "critical", "cluster": "eu-1"}
    am.post_alerts(
        [
            {
                "labels": labels,
                "annotations": {"runbook_url": "https://runbooks.example/am"},
                "startsAt": iso(datetime.now(timezone.utc) - timedelta(minutes=1)),
            }
        ]
    )
    am.wait_notifications(1)
    rows = load_alerts(browser, s.url + "/")
    assert len(rows) == 1 and rows[0].get_attribute("data-fingerprint") == fingerprint(labels)
    assert rows[0].find_element("css selector", "td.name").text == "ThroughAlertmanager"
    browser.get(f"{s.url}/alerts/{fingerprint(labels)}")
    browser.wait_css("#timeline")
    assert browser.css("dd a.ext")[0].get_attribute("href") == "https://runbooks.example/am"
    assert "via" in browser.css("#log-table tbody")[0].text  # the source of the delivery
    browser.assert_clean()
