"""Session: one page's network, trained live in a worker thread, and the frames it publishes.

Every use of a session's model (training steps, frames, the inspector, weight edits, rebuilds) holds the
process-wide ``LOCK``: minidl's trainer is not thread-safe, and dropout draws from torch's global RNG, whose
state each session keeps for itself (swapped in around its steps) so that sessions never disturb each other
and the export's ``minidl train`` draws the same masks. Training runs only while a page is connected.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from minidl.errors import MinidlError
from minidl.playground.model import Built, build_session_model
from minidl.playground.owndata import session_data
from minidl.playground.render import net_message, render_frame
from minidl.playground.setup import LIVE, Setup, SetupError
from minidl.playground.stepping import advance

LOCK = threading.RLock()
FPS = 30  # frames per second at most while playing
CHUNK_SECONDS = 0.6 / FPS  # training time between two frames


class Session:
    def __init__(self, sid: str, setup: Setup, publish: Callable[[str, str], None]) -> None:
        self.sid, self.publish = sid, publish
        self.folder = Path(tempfile.mkdtemp(prefix="minidl-playground-"))
        self.custom: list[tuple[float, float, float]] = []  # points added by clicks or an upload
        self.class_names: list[str] = []
        self.cond = threading.Condition()
        self.playing = False
        self.connections = 0
        self.pending: dict[str, int] = {}
        self.frame_wanted = True
        self.closed = False
        self.last_seen = time.monotonic()
        self.seq = 0
        self.step_seconds = 1e-3
        self.grad_norms: list[float] = []
        self.edits: list[str] = []  # changes made during training that a config cannot replay
        self.error: str | None = None
        self.built: Built | None = None
        self.rebuild(setup)
        self.thread = threading.Thread(target=self._work, name=f"playground-{sid}", daemon=True)
        self.thread.start()

    # -- data and model ---------------------------------------------------------------------------
    def rebuild(self, setup: Setup) -> None:
        """Build ``setup`` from scratch (new data, weights and optimizer); on error keep the old one."""
        x, y, extent = session_data(self, setup)
        with LOCK:
            try:
                built = build_session_model(setup, x, y, self.folder)
            except MinidlError as error:
                raise SetupError(str(error)) from None
            self.rng = torch.get_rng_state()  # right after the weights: what minidl train's fit starts from
            self.built, self.points, self.targets, self.extent = built, x, y, extent
            self.grad_norms = [0.0] * len(built.linears)
            self.edits, self.error = [], None
            self.version = getattr(self, "version", 0) + 1
            self.net = net_message(self)
            self.publish("net", self.net)
        self.want_frame()

    def change(self, values: dict[str, Any]) -> Setup:
        """Apply control values: live ones (lr, regularization rate) to the running optimizer, else rebuild."""
        setup = Setup.parse(values, self.built.setup)
        if set(values) <= LIVE and self.built.trainer.loop.global_step > 0:
            with LOCK:
                self._apply_live(setup)
            self.want_frame()
        else:
            self.rebuild(setup)
        return self.built.setup

    def _apply_live(self, setup: Setup) -> None:
        built, old = self.built, self.built.setup
        step = built.trainer.loop.global_step
        if setup.reg != old.reg:
            raise SetupError("changing the regularization type rebuilds the network; send it with the rate")
        for group in built.optimizer.param_groups:
            group["lr"] = setup.lr
            if setup.reg == "l2":
                group["weight_decay"] = setup.reg_rate
        if setup.lr != old.lr:
            self.edits.append(f"learning rate changed to {setup.lr} at step {step}")
        if setup.reg_rate != old.reg_rate:
            self.edits.append(f"{setup.reg} rate changed to {setup.reg_rate} at step {step}")
        built.setup = setup

    # -- controls ---------------------------------------------------------------------------------
    def control(self, action: str, count: int = 1) -> None:
        with self.cond:
            if action == "play":
                self.playing = True
            elif action == "pause":
                self.playing = False
            elif action in ("step", "epoch"):
                self.playing = False
                self.pending[action] = self.pending.get(action, 0) + count
            self.frame_wanted = True
            self.cond.notify()
        if action == "reset":
            self.rebuild(self.built.setup)

    def want_frame(self) -> None:
        with self.cond:
            self.frame_wanted = True
            self.cond.notify()

    def connect(self, delta: int) -> None:
        with self.cond:
            self.connections += delta
            self.last_seen = time.monotonic()
            if self.connections <= 0:
                self.playing = False  # nobody watches: training stops
            self.frame_wanted = True
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        self.thread.join(timeout=5)
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- the worker -------------------------------------------------------------------------------
    def _work(self) -> None:
        last_frame = 0.0
        while True:
            with self.cond:
                while not self.closed and not (self.watched_play() or self.pending or self.frame_wanted):
                    self.cond.wait()
                if self.closed:
                    return
                pending, self.pending = self.pending, {}
                playing = self.watched_play()
                self.frame_wanted = False
            with LOCK:
                try:
                    if pending.get("epoch"):
                        self._advance(epochs=pending["epoch"])
                    elif pending.get("step"):
                        self._advance(steps=pending["step"])
                    elif playing:
                        self._advance(steps=max(1, min(2000, int(CHUNK_SECONDS / self.step_seconds))))
                except (MinidlError, RuntimeError, ValueError) as error:
                    self._stop(f"training stopped: {error}")
                now = time.monotonic()
                if not playing or now - last_frame >= 1 / FPS:
                    self.seq += 1
                    self.publish("frame", render_frame(self))
                    last_frame = now
            if playing:
                time.sleep(0.0005)  # let the event loop send what was published

    def watched_play(self) -> bool:
        """Playing, and a page is connected to watch it (training stops when no page is)."""
        return self.playing and self.connections > 0

    def _stop(self, message: str) -> None:
        with self.cond:
            self.playing = False
        self.error = message
        self.publish("notice", message)

    def _advance(self, steps: int | None = None, epochs: int | None = None) -> None:
        """Train ``steps`` steps or ``epochs`` epochs; record the gradient norms and the time per step."""
        built = self.built
        begin, before = time.perf_counter(), built.trainer.loop.global_step
        self.rng = advance(built, self.rng, steps, epochs)
        done = built.trainer.loop.global_step - before
        if done:
            self.step_seconds = 0.8 * self.step_seconds + 0.2 * (time.perf_counter() - begin) / done
        self.grad_norms = [float(layer.weight.grad.norm()) for layer in built.linears]
        if not all(math.isfinite(v) for v in self.grad_norms) or not all(
            bool(torch.isfinite(p.data).all()) for p in built.model.parameters()
        ):
            self._stop("training diverged (a weight or gradient is not finite): lower the learning rate and reset")

    def edit_weight(self, layer: int, row: int, col: int, value: float) -> None:
        """Set one weight (``col`` = -1: the bias) of the ``layer``-th Linear."""
        with LOCK:
            linears = self.built.linears
            if not 0 <= layer < len(linears):
                raise SetupError(f"weight edit: layer must be from 0 to {len(linears) - 1}, got {layer}")
            lin = linears[layer]
            if not 0 <= row < lin.out_features or not -1 <= col < lin.in_features:
                raise SetupError(f"weight edit: no weight [{row}, {col}] in {lin!r}")
            if col == -1:
                lin.bias.data[row] = value
            else:
                lin.weight.data[row, col] = value
            self.edits.append(
                f"weight {layer}.{'bias' if col < 0 else 'weight'}[{row}{'' if col < 0 else f', {col}'}] "
                f"set to {value} by hand at step {self.built.trainer.loop.global_step}"
            )
        self.want_frame()
