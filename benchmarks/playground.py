"""The playground's performance: frames per second reaching a client, steps per second, frame size, CPU.

    python -m benchmarks.playground [--seconds 8] [--runs 3]

Starts ``minidl playground --port 0`` in its own process (as a user does), creates a session with the
issue's network (6 inputs X1, X2, X1², X2², sin X1, sin X2; 4 hidden layers of 8 tanh; batch 10; 500
points; circle data), connects to its Server-Sent Events stream as the page does, presses play and reads
frames for ``--seconds``: each frame is parsed (JSON + base64) as the page parses it. Then it pauses and
reads the server's CPU time while paused. The server's CPU comes from /proc/PID/stat (user + system).
Medians over ``--runs`` runs; on a shared machine the numbers move with the load of other processes.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time

SETUP = {
    "dataset": "circle",
    "points": 500,
    "batch": 10,
    "features": ["x1", "x2", "x1sq", "x2sq", "sinx1", "sinx2"],
    "layers": [8, 8, 8, 8],
    "acts": ["tanh"] * 4,
}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post(port: int, path: str, body: dict) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    data = json.loads(conn.getresponse().read())
    conn.close()
    return data


def read_frames(port: int, sid: str, out: queue.Queue, stop: threading.Event) -> None:
    """The page's side: read the event stream, decode every frame (JSON, then base64)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", f"/api/s/{sid}/events")
    response = conn.getresponse()
    kind = None
    while not stop.is_set():
        line = response.fp.readline()
        if not line:
            break
        line = line.rstrip(b"\n")
        if line.startswith(b"event: "):
            kind = line[7:].decode()
        elif line.startswith(b"data: ") and kind == "frame":
            message = json.loads(line[6:])
            body = base64.b64decode(message["b"])
            out.put((time.perf_counter(), len(line) - 6, len(body), message["h"]["step"]))
    conn.close()


def one_run(seconds: float) -> dict:
    proc = subprocess.Popen(
        [sys.executable, "-m", "minidl", "playground", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        port = int(line.split("127.0.0.1:", 1)[1].split("/", 1)[0])
        sid = post(port, "/api/session", {"setup": SETUP})["sid"]
        frames: queue.Queue = queue.Queue()
        stop = threading.Event()
        reader = threading.Thread(target=read_frames, args=(port, sid, frames, stop), daemon=True)
        reader.start()
        time.sleep(1.0)  # connected, first frame drawn
        while not frames.empty():
            frames.get()
        post(port, f"/api/s/{sid}/control", {"action": "play"})
        time.sleep(0.5)  # warm up
        while not frames.empty():
            frames.get()
        cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(seconds)
        cpu1, t1 = cpu_seconds(proc.pid), time.perf_counter()
        got = []
        while not frames.empty():
            got.append(frames.get())
        post(port, f"/api/s/{sid}/control", {"action": "pause"})
        time.sleep(1.0)
        paused0, p0 = cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(seconds / 2)
        paused1, p1 = cpu_seconds(proc.pid), time.perf_counter()
        stop.set()
        got = [g for g in got if t0 <= g[0] <= t1]
        steps = (got[-1][3] - got[0][3]) / (got[-1][0] - got[0][0]) if len(got) > 1 else 0.0
        return {
            "frames_per_s": len(got) / (t1 - t0),
            "steps_per_s": steps,
            "frame_bytes_wire": statistics.median(g[1] for g in got),
            "frame_bytes_binary": statistics.median(g[2] for g in got),
            "server_cpu_playing": (cpu1 - cpu0) / (t1 - t0),
            "server_cpu_paused": (paused1 - paused0) / (p1 - p0),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    runs = [one_run(args.seconds) for _ in range(args.runs)]
    for i, r in enumerate(runs, 1):
        print(f"run {i}: " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print("median: " + "  ".join(f"{k} {v:,.3f}" for k, v in median.items()))
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
