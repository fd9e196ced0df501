"""The playground's server logic through Starlette's TestClient: validation, training, inspector, export."""

from __future__ import annotations

import io
import json
import sys
import time
import zipfile

import pytest
import torch

pytest.importorskip("starlette")
pytest.importorskip("httpx")

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note that httpx2 will replace httpx in TestClient
    from starlette.testclient import TestClient

from minidl.experiment.saved_model import SavedModel
from minidl.playground.frames import GRID, THUMB, unpack
from minidl.playground.hub import MAX_SESSIONS
from minidl.playground.render import render_frame
from minidl.playground.server import create_app
from minidl.playground.session import LOCK
from minidl.playground.setup import Setup, SetupError


@pytest.fixture(scope="module")
def client():
    app = create_app()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with TestClient(app) as c:
            c.app_ref = app
            yield c


def new_session(client, **setup) -> str:
    r = client.post("/api/session", json={"setup": setup})
    assert r.status_code == 200, r.text
    return r.json()["sid"]


def close(client, sid: str) -> None:
    client.post(f"/api/s/{sid}/close")


def wait_epochs(client, sid: str, epochs: int, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/s/{sid}/state").json()
        if state["epoch"] >= epochs:
            return state
        time.sleep(0.02)
    raise AssertionError(f"{epochs} epochs not reached in {timeout}s: {state}")


BAD = [
    ({"lr": "abc"}, "learning rate must be a number, got 'abc'"),
    ({"lr": 0}, "learning rate must be > 0.0"),
    ({"lr": float("inf")}, "learning rate must be a finite number"),
    ({"layers": [1000]}, "neurons per layer must be an integer from 1 to 16, got 1000"),
    ({"layers": [2] * 7}, "hidden layers: expected a list of 0 to 6 items"),
    ({"points": 10**6}, "number of points must be an integer from 20 to 2000"),
    ({"batch": 0}, "batch size must be an integer from 1 to 500"),
    ({"dataset": "../etc/passwd"}, "data set: unknown value '../etc/passwd'"),
    ({"features": []}, "features: expected a list of 1 to 7 items"),
    ({"acts": ["swish", "tanh"]}, "activation: unknown value 'swish'"),
    ({"loss": "cross-entropy", "dataset": "plane"}, "loss 'cross-entropy' does not fit regression"),
    ({"optim": "adam", "momentum": 0.9}, "momentum: optimizer 'adam' has no momentum"),
    ({"bn": "maybe"}, "bn must be true or false"),
    ({"nope": 1}, "unknown control 'nope'"),
]


@pytest.mark.parametrize(("values", "message"), BAD)
def test_bad_values_are_refused_with_a_message(values, message):
    with pytest.raises(SetupError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        Setup.parse(values)


def test_bad_value_is_a_400_and_training_goes_on(client):
    sid = new_session(client, dataset="circle")
    session = client.app_ref.state.hub.sessions[sid]
    session.connect(+1)  # as if a page watched (training stops without one)
    try:
        assert client.post(f"/api/s/{sid}/control", json={"action": "play"}).json() == {"ok": True}
        for values in ({"lr": "abc"}, {"layers": [1000]}):
            r = client.post(f"/api/s/{sid}/setup", json=values)
            assert r.status_code == 400 and "must be" in r.json()["error"]
        before = client.get(f"/api/s/{sid}/state").json()["step"]
        time.sleep(0.3)
        state = client.get(f"/api/s/{sid}/state").json()
        assert state["step"] > before and state["playing"] and state["setup"]["lr"] == 0.03
        for body in ({"action": "fly"}, {"action": "step", "count": 10**6}):
            assert client.post(f"/api/s/{sid}/control", json=body).status_code == 400
        bad_weight = {"layer": 9, "row": 0, "col": 0, "value": 1}
        assert client.post(f"/api/s/{sid}/weight", json=bad_weight).status_code == 400
        assert client.post(f"/api/s/{sid}/setup", content=b"x" * 20_000).status_code == 400
    finally:
        session.connect(-1)
        close(client, sid)


def test_training_stops_when_no_page_is_connected(client):
    sid = new_session(client)
    client.post(f"/api/s/{sid}/control", json={"action": "play"})
    time.sleep(0.3)
    assert client.get(f"/api/s/{sid}/state").json()["step"] == 0
    close(client, sid)


def test_step_advances_exactly_one_batch_and_epoch_to_the_boundary(client):
    sid = new_session(client, points=100, ratio=50, batch=10)  # 50 training points: 5 steps per epoch
    client.post(f"/api/s/{sid}/control", json={"action": "step"})
    deadline = time.monotonic() + 10
    while client.get(f"/api/s/{sid}/state").json()["step"] != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    assert client.get(f"/api/s/{sid}/state").json()["step"] == 1
    client.post(f"/api/s/{sid}/control", json={"action": "epoch"})
    state = wait_epochs(client, sid, 1)
    assert state["step"] == 5 and state["epoch"] == 1
    close(client, sid)


def test_session_cap_headers_and_unknown_session(client):
    sids = [new_session(client) for _ in range(MAX_SESSIONS)]
    r = client.post("/api/session", json={"setup": {}})
    assert r.status_code == 429 and "too many" in r.json()["error"]
    for sid in sids:
        close(client, sid)
    page = client.get("/")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/../server.py").status_code == 404
    assert client.get("/api/s/nope/state").status_code == 410


def test_url_query_round_trips():
    setup = Setup.parse(
        {
            "dataset": "spiral3",
            "layers": [8, 3],
            "acts": ["relu", "elu"],
            "loss": "cross-entropy",
            "optim": "rmsprop",
            "momentum": 0.5,
            "lr": 0.003,
            "features": ["sinx2", "x1"],
            "bn": True,
        }
    )
    values = dict(part.split("=", 1) for part in setup.to_query().split("&"))
    assert Setup.parse(values) == setup
    assert setup.features == ("x1", "sinx2")  # the page's order


def test_frame_is_compact_binary(client):
    sid = new_session(client, features=["x1", "x2", "x1sq", "x2sq", "sinx1", "sinx2"], layers=[8, 8, 8, 8])
    session = client.app_ref.state.hub.sessions[sid]
    with LOCK:
        message = render_frame(session)
    header, sections = unpack(message)
    assert len(message) < 100_000
    assert sections["output"].numel() == GRID * GRID
    nodes = 6 + 32 + 1
    assert sections["nodes"].numel() == nodes * THUMB * THUMB and sections["scales"].numel() == nodes
    weights = sum(p.data.numel() for p in session.built.model.parameters())
    assert sections["weights"].numel() == weights
    expected = torch.cat([p.data.reshape(-1) for p in session.built.model.parameters()])
    assert torch.equal(sections["weights"], expected)
    assert int(sections["confusion"].sum()) == 250 and header["step"] == 0
    close(client, sid)


def _minidl_pass(saved: SavedModel, features: list[float], target: list[float]):
    """Forward and backward of one sample through minidl's modules, in eval mode: values, grads, loss."""
    model, loss_fn = saved.model, saved.loss_fn
    model.eval()
    values = [saved.inputs(torch.tensor([features]))]
    for module in model:
        values.append(module(values[-1]))
    loss = loss_fn(values[-1], torch.tensor([target]))
    model.zero_grad()
    grads = [loss_fn.backward()]
    for module in reversed(list(model)):
        grads.append(module.backward(grads[-1]))
    return values, grads[::-1], float(loss)


@pytest.mark.parametrize(
    "setup",
    [
        {"dataset": "circle", "layers": [4, 2], "acts": ["tanh", "relu"], "lr": 0.1},
        {"dataset": "blobs", "layers": [5], "acts": ["sigmoid"], "loss": "cross-entropy", "optim": "adam"},
    ],
)
def test_inspector_equals_minidl_modules(client, setup):
    sid = new_session(client, **setup)
    client.post(f"/api/s/{sid}/control", json={"action": "epoch", "count": 2})
    wait_epochs(client, sid, 2)
    r = client.post(f"/api/s/{sid}/inspect", json={"index": 7}).json()
    saved = SavedModel.from_bytes(client.get(f"/api/s/{sid}/export/model.safetensors").content)
    target = r["target"] if isinstance(r["target"], list) else [r["target"]]
    if saved.loss_fn.class_index_target:
        target = [int(t) for t in target]
        values, grads, loss = _minidl_pass_ce(saved, r["features"], target[0])
    else:
        values, grads, loss = _minidl_pass(saved, r["features"], target)
    assert r["loss"] == pytest.approx(loss, rel=1e-6)
    assert torch.allclose(torch.tensor(r["input"]), values[0][0], atol=1e-7)
    params = list(saved.model.named_parameters())
    for i, layer in enumerate(r["layers"]):
        assert torch.allclose(torch.tensor(layer["output"]), values[i + 1][0], atol=1e-6), layer["module"]
        assert torch.allclose(torch.tensor(layer["grad_output"]), grads[i + 1][0], atol=1e-6), layer["module"]
        assert torch.allclose(torch.tensor(layer["grad_input"]), grads[i][0], atol=1e-6), layer["module"]
        for name, q in layer["params"].items():
            p = dict(params)[f"{i}.{name}"]
            assert torch.allclose(torch.tensor(q["value"]), p.data, atol=1e-7)
            assert torch.allclose(torch.tensor(q["grad"]), p.grad, atol=1e-6)
            if setup.get("optim", "sgd") == "sgd":  # plain SGD: the update is -lr * grad
                assert torch.allclose(torch.tensor(q["update"]), -setup["lr"] * p.grad, atol=1e-6)
    close(client, sid)


def _minidl_pass_ce(saved: SavedModel, features: list[float], label: int):
    model, loss_fn = saved.model, saved.loss_fn
    model.eval()
    values = [saved.inputs(torch.tensor([features]))]
    for module in model:
        values.append(module(values[-1]))
    loss = loss_fn(values[-1], torch.tensor([label]))
    model.zero_grad()
    grads = [loss_fn.backward()]
    for module in reversed(list(model)):
        grads.append(module.backward(grads[-1]))
    return values, grads[::-1], float(loss)


def test_export_reproduces_weights_with_minidl_train_and_loads_in_torch(client, tmp_path, monkeypatch):
    setup = {
        "dataset": "spiral3",
        "layers": [6, 5],
        "acts": ["relu", "tanh"],
        "loss": "cross-entropy",
        "optim": "adam",
        "lr": 0.01,
        "dropout": 0.1,
        "sched": "cosine",
        "features": ["x1", "x2", "sinx1"],
    }
    sid = new_session(client, **setup)
    client.post(f"/api/s/{sid}/control", json={"action": "epoch", "count": 3})
    wait_epochs(client, sid, 3)
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/api/s/{sid}/export/playground.zip").content))
    archive.extractall(tmp_path)
    assert "NOT REPRODUCIBLE" not in (tmp_path / "config.toml").read_text()
    from minidl.cli.main import main

    monkeypatch.chdir(tmp_path)  # the config names data.csv, next to it
    assert main(["train", "--config", "config.toml", "--out", "again", "--no-plots", "--quiet"]) == 0
    from safetensors.torch import load_file

    ours, again = load_file(tmp_path / "model.safetensors"), load_file(tmp_path / "again" / "model.safetensors")
    assert ours.keys() == again.keys()
    for key in ours:
        assert torch.equal(ours[key], again[key]), key
    saved = SavedModel.load(tmp_path / "model.safetensors")  # minidl's reader; evaluate/predict use it
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 6),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(6, 5),
        torch.nn.Tanh(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(5, 3),
    )
    net.load_state_dict({k: v for k, v in ours.items() if not k.startswith("standardizer.")})
    net.eval()
    x = torch.randn(16, 3)
    with torch.no_grad():
        assert torch.allclose(net(saved.inputs(x)), saved.output(x), atol=1e-5)
    assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 3
    close(client, sid)


def test_export_notes_what_cannot_be_reproduced(client):
    sid = new_session(client, reg="l1", reg_rate=0.001)
    client.post(f"/api/s/{sid}/control", json={"action": "step", "count": 3})
    time.sleep(0.3)
    client.post(f"/api/s/{sid}/weight", json={"layer": 0, "row": 0, "col": 1, "value": 0.5})
    text = client.get(f"/api/s/{sid}/export/config.toml").text
    assert (
        "NOT REPRODUCIBLE" in text and "L1" in text and "set to 0.5 by hand" in text and "3 steps into epoch 1" in text
    )
    close(client, sid)
    sid = new_session(client, bn=True)
    r = client.get(f"/api/s/{sid}/export/model.safetensors")
    assert r.status_code == 400 and "batch norm" in r.json()["error"]
    close(client, sid)


def test_own_points_and_upload(client):
    sid = new_session(client)
    for i, (x, y, label) in enumerate([(1, 1, 1), (-1, -1, 0), (2, -1, 1)]):
        r = client.post(f"/api/s/{sid}/points", json={"x": x, "y": y, "label": label}).json()
        assert r["count"] == 500 + i + 1 and r["setup"]["dataset"] == "custom"  # starts from the circle's points
    assert client.post(f"/api/s/{sid}/points", json={"x": 1, "y": 1, "label": 9}).status_code == 400
    good = b"a,b,kind\n" + b"".join(f"{i % 7},{i % 5},{'cat' if i % 2 else 'dog'}\n".encode() for i in range(40))
    r = client.post(f"/api/s/{sid}/upload", content=good)
    assert r.status_code == 200 and r.json()["count"] == 40
    bad = client.post(f"/api/s/{sid}/upload", content=b"a,b,c\n1,2,x\n1,abc,y\n")
    assert bad.status_code == 400 and "line 3" in bad.json()["error"] and "'abc' is not a number" in bad.json()["error"]
    three = client.post(f"/api/s/{sid}/upload", content=b"a,b,c,d\n1,2,3,0\n4,5,6,1\n")
    assert three.status_code == 400 and "2 feature columns" in three.json()["error"]
    big = client.post(f"/api/s/{sid}/upload", content=b"1,2,0\n" * 60_000)
    assert big.status_code == 400 and "at most" in big.json()["error"]
    assert client.get(f"/api/s/{sid}/state").json()["setup"]["dataset"] == "custom"
    close(client, sid)


def test_cli_without_the_extra_says_what_to_install(monkeypatch, capsys):
    from minidl.cli.main import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["playground", "--no-browser"]) == 1
    assert "pip install -c constraints.txt -e '.[playground]' (in the minidl checkout)" in capsys.readouterr().err


def test_cli_warns_when_not_bound_to_localhost(monkeypatch, capsys):
    import minidl.playground.server as server
    from minidl.cli.main import main

    monkeypatch.setattr(server, "serve", lambda host, port, on_ready=None: None)
    assert main(["playground", "--host", "0.0.0.0", "--no-browser"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning: serving on 0.0.0.0" in err[0]


@pytest.mark.parametrize(
    "setup",
    [
        {"dataset": "xor", "loss": "bce"},
        {"dataset": "gauss", "loss": "bce-logits", "optim": "rmsprop", "momentum": 0.5, "sched": "step"},
        {"dataset": "spiral", "loss": "cross-entropy", "optim": "adagrad", "bn": True},
        {"dataset": "blobs", "loss": "mse", "optim": "adamw", "reg": "l2", "reg_rate": 0.01, "sched": "exponential"},
        {"dataset": "spiral3", "acts": ["relu", "leaky_relu"], "dropout": 0.3},
        {"dataset": "plane", "loss": "mae", "layers": []},
        {"dataset": "multigauss", "loss": "huber", "acts": ["gelu", "silu"], "std": False},
    ],
)
def test_every_data_set_trains_draws_and_inspects(client, setup):
    sid = new_session(client, **setup)
    session = client.app_ref.state.hub.sessions[sid]
    client.post(f"/api/s/{sid}/control", json={"action": "epoch"})
    wait_epochs(client, sid, 1)
    with LOCK:
        header, sections = unpack(render_frame(session))
    assert header["epoch"] == 1 and all(torch.isfinite(sections["weights"]))
    classes = {"blobs": 3, "spiral3": 3}.get(setup["dataset"], 2)
    if setup["dataset"] in ("plane", "multigauss"):
        assert "confusion" not in sections and header["test_acc"] is None
    else:
        assert sections["confusion"].numel() == classes**2 and 0 <= header["test_acc"] <= 1
        assert ("confidence" in sections) == (classes > 2)
    r = client.post(f"/api/s/{sid}/inspect", json={"index": 0})
    assert r.status_code == 200 and len(r.json()["layers"]) == len(session.built.model)
    close(client, sid)


def test_live_learning_rate_and_l1_proximal_step(client):
    sid = new_session(client, reg="l1", reg_rate=0.3, lr=0.1, layers=[8])
    session = client.app_ref.state.hub.sessions[sid]
    client.post(f"/api/s/{sid}/control", json={"action": "step", "count": 20})
    deadline = time.monotonic() + 10
    while client.get(f"/api/s/{sid}/state").json()["step"] < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    weights = torch.cat([layer.weight.data.reshape(-1) for layer in session.built.linears])
    assert int((weights == 0).sum()) > 0  # the soft threshold sets weights exactly to zero
    version = session.version
    r = client.post(f"/api/s/{sid}/setup", json={"lr": 0.5})
    assert r.status_code == 200 and session.version == version  # applied live, no rebuild
    assert session.built.optimizer.param_groups[0]["lr"] == 0.5
    assert client.get(f"/api/s/{sid}/state").json()["edits"] == ["learning rate changed to 0.5 at step 20"]
    close(client, sid)


def test_cli_port_in_use_is_one_line(capsys):
    import socket

    from minidl.cli.main import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["playground", "--port", str(taken.getsockname()[1]), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minidl playground: error: cannot listen on 127.0.0.1:") and err.count("\n") == 1


def test_regression_export_reproduces_weights(client, tmp_path, monkeypatch):
    sid = new_session(client, dataset="multigauss", layers=[6], acts=["tanh"], loss="huber", lr=0.1)
    client.post(f"/api/s/{sid}/control", json={"action": "epoch", "count": 2})
    wait_epochs(client, sid, 2)
    zipfile.ZipFile(io.BytesIO(client.get(f"/api/s/{sid}/export/playground.zip").content)).extractall(tmp_path)
    close(client, sid)
    from safetensors.torch import load_file

    from minidl.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", "config.toml", "--out", "again", "--no-plots", "--quiet"]) == 0
    ours, again = load_file(tmp_path / "model.safetensors"), load_file(tmp_path / "again" / "model.safetensors")
    assert ours.keys() == again.keys() and all(torch.equal(ours[k], again[k]) for k in ours)
    assert "standardize_target = false" in (tmp_path / "config.toml").read_text()
    import runpy

    script = runpy.run_path(str(tmp_path / "train.py"), run_name="export")  # trains again, loads torch.nn
    saved = SavedModel.load(tmp_path / "model.safetensors")
    x = torch.randn(8, 2)
    with torch.no_grad():
        assert torch.allclose(script["net"](saved.inputs(x)), saved.output(x), atol=1e-5)
