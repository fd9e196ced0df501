"""The playground in a real browser: Playwright driving Debian's chromium against ``minidl playground``.

One server process and one browser for the module. Without chromium (or playwright) the tests skip with a
one-line reason, unless MINIDL_REQUIRE_BROWSER=1 (``.ci/run`` sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import io
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
import torch

CHROMIUM = Path("/usr/bin/chromium")
REQUIRED = os.environ.get("MINIDL_REQUIRE_BROWSER") == "1"


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        return f"browser tests need the dev extra ({error.name} is missing)"
    if not CHROMIUM.exists():
        return "browser tests need Debian's chromium: apt-get install -y --no-install-recommends chromium"
    return None


if (_reason := _missing()) is not None:
    if REQUIRED:
        pytest.fail(f"MINIDL_REQUIRE_BROWSER=1 but {_reason}", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    """``minidl playground --port 0`` on 127.0.0.1; its URL; stopped by PID at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "minidl", "playground", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        line = lines.get(timeout=30)
        assert "serving http://127.0.0.1:" in line, line
        yield line.split("serving ", 1)[1].split()[0].rstrip("/")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def log():
    return {"console": [], "requests": []}


@pytest.fixture
def page(browser, server, log):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.on("console", lambda m: log["console"].append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: log["console"].append(f"pageerror: {e}"))
    pg.on("request", lambda r: log["requests"].append(r.url))
    pg.base = server
    yield pg
    context.close()  # pagehide: the page's beacon ends its session


def wait(page, condition: str, timeout: float = 15.0) -> None:
    """Poll a JavaScript condition (``wait_for_function`` evaluates strings, which the page's CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"!!({condition})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {condition}")
        time.sleep(0.03)


def open_page(page, query: str = "") -> None:
    page.goto(f"{page.base}/#{query}")
    wait(page, "window.playground && window.playground.frames > 0")


def state(page) -> dict:
    return page.evaluate("fetch(`/api/s/${window.playground.sid}/state`).then(r => r.json())")


def frame_header(page) -> dict:
    return page.evaluate("window.playground.frame.header")


def test_play_brings_test_loss_under_0_1_and_heatmap_changes(page):
    open_page(page)
    before = page.evaluate("document.getElementById('heatmap').toDataURL()")
    page.click("#play")
    wait(page, "window.playground.frame.header.test_loss < 0.1", 25)
    page.click("#play")
    wait(page, "!window.playground.frame.header.playing")
    assert page.evaluate("document.getElementById('heatmap').toDataURL()") != before
    assert page.evaluate("window.playground.frames") >= 5


def test_step_advances_exactly_one_batch(page):
    open_page(page, "points=100&ratio=50&batch=10")
    assert frame_header(page)["step"] == 0
    for expected in (1, 2):
        page.click("#step")
        wait(page, f"window.playground.frame.header.step === {expected}")
    time.sleep(0.2)
    assert state(page)["step"] == 2 and page.inner_text("#global-step") == "2"
    page.click("#epoch-step")  # 5 steps per epoch: to the end of epoch 1
    wait(page, "window.playground.frame.header.epoch === 1")
    assert frame_header(page)["step"] == 5 and page.inner_text("#epoch") == "000001"


def test_changing_data_features_and_layers_rebuilds(page):
    open_page(page)
    version = page.evaluate("window.playground.net.version")
    page.click("button[data-dataset=xor]")
    wait(page, f"window.playground.net.version > {version}")
    assert state(page)["setup"]["dataset"] == "xor"
    nodes = page.locator(".node").count()
    page.click(".node[data-feature=x1x2] .feature")
    wait(page, "window.playground.net.setup.features.includes('x1x2')")
    assert page.evaluate("window.playground.net.nodes")[0] == 3
    page.click("#add-layer")
    wait(page, "window.playground.net.setup.layers.length === 3")
    wait(page, "window.playground.frame.header.version === window.playground.net.version")
    assert page.locator(".node").count() == nodes + 2  # a new layer of 2 neurons
    assert page.locator("#edges line").count() == 3 * 4 + 4 * 2 + 2 * 2 + 2 * 1
    assert "layers=4,2,2" in page.evaluate("location.hash")


def test_inspector_equals_minidl_modules(page):
    from minidl.experiment.saved_model import SavedModel

    open_page(page, "dataset=gauss&layers=3&acts=sigmoid&lr=0.1")
    page.click("#epoch-step")
    wait(page, "window.playground.frame.header.epoch === 1")
    point = page.evaluate(
        """(() => { const n = window.playground.net, c = document.getElementById('heatmap');
        const r = c.getBoundingClientRect();
        for (let i = 0; i < n.n; i++) if (n.split[i] === 1) {
          const [x, y] = toCanvas(n, c, n.points[2 * i], n.points[2 * i + 1]);
          return [i, r.left + x * r.width / c.width, r.top + y * r.height / c.height]; } })()"""
    )
    page.mouse.click(point[1], point[2])
    page.wait_for_selector(".insp")
    r = page.evaluate("window.playground.inspection")
    assert r["index"] == point[0] and r["split"] == "train"
    raw = urllib.request.urlopen(f"{page.base}/api/s/{page.evaluate('window.playground.sid')}/export/model.safetensors")
    saved = SavedModel.from_bytes(raw.read())
    model = saved.model
    model.eval()
    h = saved.inputs(torch.tensor([r["features"]]))
    outputs = []
    for module in model:
        h = module(h)
        outputs.append(h[0])
    loss = saved.loss_fn(h, torch.tensor([r["target"]]))
    model.zero_grad()
    g = saved.loss_fn.backward()
    grads = []
    for module in reversed(list(model)):
        grads.append(g[0])
        g = module.backward(g)
    grads.reverse()
    assert r["loss"] == pytest.approx(float(loss), rel=1e-6)
    for layer, out, grad in zip(r["layers"], outputs, grads, strict=True):
        assert torch.allclose(torch.tensor(layer["output"]), out, atol=1e-6)
        assert torch.allclose(torch.tensor(layer["grad_output"]), grad, atol=1e-6)
    assert torch.allclose(torch.tensor(r["layers"][0]["params"]["weight"]["grad"]), model[0].weight.grad, atol=1e-6)
    shown = page.inner_text("#inspect-body")  # the page shows those numbers, with the formulas
    assert "dL/dW = gᵀ x" in shown and f"{r['loss']:.4f}" in shown


def test_export_config_reproduces_weights(page, tmp_path, monkeypatch):
    open_page(page, "dataset=spiral&layers=6,4&acts=tanh,relu&optim=sgd&momentum=0.9&lr=0.01&batch=16")
    page.click("#epoch-step")
    wait(page, "window.playground.frame.header.epoch === 1")
    page.click("#epoch-step")
    wait(page, "window.playground.frame.header.epoch === 2")
    with page.expect_download() as download:
        page.click("#exports a[download='playground.zip']")
    zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())).extractall(tmp_path)
    from minidl.cli.main import main

    monkeypatch.chdir(tmp_path)  # the config names data.csv, next to it
    assert main(["train", "--config", "config.toml", "--out", "again", "--no-plots", "--quiet"]) == 0
    from safetensors.torch import load_file

    ours, again = load_file(tmp_path / "model.safetensors"), load_file(tmp_path / "again" / "model.safetensors")
    assert ours.keys() == again.keys() and all(torch.equal(ours[k], again[k]) for k in ours)
    page_weights = torch.tensor(page.evaluate("Array.from(window.playground.frame.sections.weights)"))
    keys = sorted(
        (k for k in ours if not k.startswith("standardizer")), key=lambda k: (int(k.split(".")[0]), k[-4:] == "bias")
    )
    assert torch.equal(page_weights, torch.cat([ours[k].reshape(-1) for k in keys]))  # what the page drew


def test_url_state_round_trips(page):
    query = "dataset=blobs&noise=10&layers=5,3&acts=relu,elu&loss=cross-entropy&optim=adam&lr=0.003&features=x1,x2,x1x2"
    open_page(page, query)
    setup = state(page)["setup"]
    assert setup["dataset"] == "blobs" and setup["layers"] == [5, 3] and setup["acts"] == ["relu", "elu"]
    assert setup["loss"] == "cross-entropy" and setup["lr"] == 0.003 and setup["features"] == ["x1", "x2", "x1x2"]
    link, sid = page.evaluate("location.hash").lstrip("#"), page.evaluate("window.playground.sid")
    page.goto("about:blank")  # a new document: the link alone must bring the setup back
    open_page(page, link)
    assert page.evaluate("window.playground.sid") != sid
    assert state(page)["setup"] == setup
    assert page.input_value("#lr") == "0.003" and page.input_value("#optim") == "adam"


def test_bad_values_show_an_error_while_training_continues(page):
    open_page(page)
    page.click("#play")
    wait(page, "window.playground.frame.header.step > 0")
    page.fill("#lr", "abc")
    page.dispatch_event("#lr", "change")
    page.wait_for_selector("#error:not([hidden])")
    assert "learning rate must be a number, got 'abc'" in page.inner_text("#error")
    assert page.input_value("#lr") == "0.03"  # the control shows the value in force again
    page.evaluate("change({layers: [1000]})")
    wait(page, "document.getElementById('error').textContent.includes('1000')")
    step = frame_header(page)["step"]
    wait(page, f"window.playground.frame.header.step > {step}")  # still training
    assert state(page)["setup"]["layers"] == [4, 2]
    page.click("#play")


def test_no_console_error_and_no_request_leaves_the_server(page, log):
    start = len(log["console"])
    open_page(page)  # also the last test: the log holds every page of the module
    wait(page, "document.querySelectorAll('#edges line').length === 18")  # drawn after the first layout
    box = page.evaluate(
        "(() => { const r = document.querySelector('#edges line:nth-child(2)').getBoundingClientRect(); "
        "return [r.left + r.width / 2, r.top + r.height / 2]; })()"
    )
    page.mouse.move(0, 0)
    page.mouse.move(*box, steps=3)  # the middle of a straight line's box lies on the line
    page.wait_for_selector("#card:not([hidden])")
    assert "weight" in page.inner_text("#card")
    assert log["console"][start:] == []
    refused = "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    assert all(line == f"error: {refused}" for line in log["console"])  # only the bad values' 400s, on purpose
    outside = [url for url in log["requests"] if not url.startswith(page.base + "/")]
    assert outside == [] and len(log["requests"]) > 10
