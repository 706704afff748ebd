"""Throughput of ``facespot detect DIR --json`` locally and with ``--engine ray`` (1 and 2 actors),
and Ray's overhead per image, on this machine.

Every configuration is the real command in a fresh process on the same folder of N photos.
The JSON-lines output is flushed image by image, so watching it grow gives both numbers
without the noise of start-up on a busy machine: the steady rate is the number of lines
written between 10 % and 90 % of the run divided by the time it took, and the start-up is the
time to the first line (model loading; for Ray also starting Ray and the actors). Ray's
overhead per image is its per-image time minus the local run's at the same thread count
(1 actor x 1 thread against ``--threads 1``), in wall time and in CPU time: the CPU seconds of
every process of the run (the command, and for Ray its GCS, raylet, agents and actors: one
session) spent per image in the same window. On a machine shared with other work the CPU
figure is the steadier one (more processes get a larger share of a busy CPU). Photos: WIDER FACE val
(``../shared/data/wider-val-eval``, evenly spaced through the sorted list) when present, else
the four fixture photos in flips and rescales.

    python benchmarks/ray_detect.py                    # N=400, best of 2
    python benchmarks/ray_detect.py --n 800 --repeats 3 --json ray_bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDER = ROOT.parent / "shared" / "data" / "wider-val-eval" / "images"
FIXTURES = ROOT / "tests" / "fixtures" / "photos"

CONFIGS = [  # (label, extra CLI arguments)
    ("local (default threads)", []),
    ("local --threads 1", ["--threads", "1"]),
    ("ray 1 actor x 1 thread", ["--engine", "ray", "--actors", "1", "--threads", "1"]),
    ("ray 1 actor x 2 threads", ["--engine", "ray", "--actors", "1", "--threads", "2"]),
    ("ray 2 actors x 1 thread", ["--engine", "ray", "--actors", "2", "--threads", "1"]),
]


def photo_files(n: int) -> tuple[list[Path], str]:
    files = sorted(WIDER.rglob("*.jpg")) if WIDER.is_dir() else []
    if len(files) >= n:
        step = len(files) / n
        return [files[int(i * step)] for i in range(n)], "WIDER FACE val photos (wider-val-eval)"
    return [], "fixture photos (flips and rescales)"


def build_folder(folder: Path, n: int, files: list[Path]) -> None:
    """``n`` photos in ``folder``: links to the WIDER files, else variants of the fixtures."""
    import cv2

    folder.mkdir(parents=True)
    if files:
        for i, f in enumerate(files[:n]):
            (folder / f"{i:05d}_{f.name}").symlink_to(f)
        return
    base = [cv2.imread(str(p)) for p in sorted(FIXTURES.glob("*.jpg"))]
    for i in range(n):
        img = base[i % len(base)]
        scale = 0.8 + 0.1 * ((i // len(base)) % 6)
        img = cv2.resize(img, None, fx=scale, fy=scale)
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), img[:, ::-1] if (i // 24) % 2 else img)


def session_cpu(sid: int) -> dict[int, float]:
    """CPU seconds (user + system) of every live process in session ``sid``, by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # field 6 of stat: the session
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def run_once(folder: Path, extra: list[str], out: Path, n: int) -> dict:
    """Run one command; time its JSON lines as they appear."""
    cmd = [sys.executable, "-m", "facespot", "detect", str(folder), "--json", str(out), "--no-progress", *extra]
    out.unlink(missing_ok=True)
    seen: list[tuple[float, int, float]] = []  # (seconds, lines, CPU seconds so far) when the count changed
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        cpu: dict[int, float] = {}  # every process of the run (Ray's too: same session), last CPU time seen
        while proc.poll() is None:
            cpu.update(session_cpu(proc.pid))
            lines = out.read_bytes().count(b"\n") if out.exists() else 0
            if lines and (not seen or lines != seen[-1][1]):
                seen.append((time.perf_counter() - t0, lines, sum(cpu.values())))
            time.sleep(0.05)  # coarse enough that watching costs little CPU on a 2-core machine
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read()[-2000:]}")
    # lines written after the last poll (the last ones, or all of them in a fast run) count too
    lines = out.read_bytes().count(b"\n") if out.exists() else 0
    if lines and (not seen or lines != seen[-1][1]):
        seen.append((wall, lines, sum(cpu.values())))
    # Ray hands results over a few blocks at a time: take the real counts at the first
    # arrivals past 10 % and past 90 %, not the marks themselves
    first = next((p for p in seen if p[1] >= n // 10), None)
    last = next((p for p in seen if p[1] >= (9 * n) // 10), None)
    if first is None or last is None:
        got = seen[-1][1] if seen else 0
        raise SystemExit(f"{' '.join(cmd)}: wrote {got} of {n} JSON lines; nothing to time")
    (t1, c1, cpu1), (t2, c2, cpu2) = first, last
    if c2 <= c1:
        raise SystemExit(f"{' '.join(cmd)}: the results came in one burst; use a larger --n")
    per_image = (t2 - t1) / (c2 - c1)
    cpu_per_image = (cpu2 - cpu1) / (c2 - c1)
    return {"wall_s": wall, "startup_s": seen[0][0], "ms_per_image": 1000 * per_image, "images_per_s": 1 / per_image,
            "cpu_ms_per_image": 1000 * cpu_per_image, "json": out.read_text()}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="photos in the folder (default: 400)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per configuration; the fastest steady rate counts")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    files, what = photo_files(args.n)
    results = []
    with tempfile.TemporaryDirectory(prefix="facespot-raybench-") as tmp:
        folder = Path(tmp) / "photos"
        build_folder(folder, args.n, files)
        reference = None
        for label, extra in CONFIGS:
            runs = [run_once(folder, extra, Path(tmp) / "out.jsonl", args.n) for _ in range(args.repeats)]
            best = min(runs, key=lambda r: r["ms_per_image"])
            reference = reference or best["json"]
            row = {"config": label, **{k: v for k, v in best.items() if k != "json"}, "same_json": best["json"] == reference,
                   "startup_s": min(r["startup_s"] for r in runs), "wall_s": min(r["wall_s"] for r in runs)}  # fmt: skip
            results.append(row)
            print(f"  {label}: {row['images_per_s']:.1f} images/s, start-up {row['startup_s']:.1f} s", file=sys.stderr)
    local1 = next(r for r in results if r["config"] == "local --threads 1")
    ray1 = next(r for r in results if r["config"] == "ray 1 actor x 1 thread")
    print(f"\n{args.n} {what}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the end; "
          f"best of {args.repeats}\n")  # fmt: skip
    print("| configuration | images/s (steady) | wall ms/image | CPU ms/image | start-up to first result (s) | wall (s) | same JSON as local |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['config']} | {r['images_per_s']:.1f} | {r['ms_per_image']:.1f} | {r['cpu_ms_per_image']:.1f} | "
              f"{r['startup_s']:.1f} | {r['wall_s']:.1f} | {'yes' if r['same_json'] else 'NO'} |")  # fmt: skip
    overhead = ray1["ms_per_image"] - local1["ms_per_image"]
    cpu_overhead = ray1["cpu_ms_per_image"] - local1["cpu_ms_per_image"]
    print(f"\nRay's overhead per image (1 actor x 1 thread against local --threads 1): {overhead:+.1f} ms wall "
          f"({100 * overhead / local1['ms_per_image']:+.0f} %), {cpu_overhead:+.1f} ms CPU "
          f"({100 * cpu_overhead / local1['cpu_ms_per_image']:+.0f} %); its extra start-up: "
          f"{ray1['startup_s'] - local1['startup_s']:+.1f} s")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"photos": what, "n": args.n, "results": results, "overhead_ms": overhead,
                                               "cpu_overhead_ms": cpu_overhead}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
