"""Measure the sample viewer page (`evalkit view`) for large runs: file size, time to build it in Python, and
time to decode and render it in headless Chromium.

    .venv/bin/python scripts/viewer_size.py                       # 1k, 10k, 200k samples
    .venv/bin/python scripts/viewer_size.py --sizes 1000 --no-browser

Each size gets a synthetic VQAv2-shaped run (chat-template prompts, ten answers per question, answer and
question types, 30% wrong, 10% partly right, 1% failed) written with the result-file models, read back the way
`evalkit view` reads it. Thumbnails: the samples the viewer chooses (wrong first, --images of them) get
distinct 160 px JPEG crops of a real photograph (matplotlib's sample image when installed), since the
synthetic run has no dataset to read them from. Browser figures come from the page itself, in a headless
Chromium driven over the DevTools protocol: performance.now() when the first page of cards is on screen (from
navigation start), the gzip decode, the JSON parse, one filter pass (a search plus a status filter over all
rows, and the page of cards it shows), and the seconds from navigation to the first page as seen from Python.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

QUESTIONS = ["What color is the {o}?", "How many {o}s are there?", "Is there a {o} in the picture?",
             "What is the man holding next to the {o}?", "Where is the {o}?", "What is on the {o}?"]
OBJECTS = ["cat", "dog", "bus", "umbrella", "table", "kite", "train", "clock", "pizza", "horse", "bench", "car"]
ANSWERS = ["red", "blue", "2", "3", "yes", "no", "left", "frisbee", "kitchen", "white", "1", "black"]


def synthetic_run(root: Path, n: int, seed: int = 0) -> Path:
    from evalkit.core.results import (DatasetInfo, MetricValue, ModelInfo, RunConfig, RunRecord, SampleRecord,
                                      TaskResult, write_run)

    rng = random.Random(seed)
    run = root / f"synthetic-{n}"
    (run / "samples").mkdir(parents=True)
    scores = []
    with open(run / "samples" / "vqav2_val.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n):
            question = rng.choice(QUESTIONS).format(o=rng.choice(OBJECTS))
            truth = rng.choice(ANSWERS)
            target = [truth] * rng.randint(4, 10)
            target += [rng.choice(ANSWERS) for _ in range(10 - len(target))]
            u = rng.random()
            output = truth if u < 0.59 else rng.choice(ANSWERS)
            acc = min(1.0, sum(a == output for a in target) / 3)
            failed = u > 0.99
            rec = SampleRecord(
                id=str(1_000_000 + i), task="vqav2_val",
                prompt=f"USER: <image>\n{question}\nAnswer the question using a single word or phrase. ASSISTANT:",
                output=None if failed else " " + output, parsed=None if failed else output, target=target,
                scores={} if failed else {"accuracy": round(acc, 4)},
                error="CUDA out of memory" if failed else None, error_category="generation" if failed else None,
                n_prompt_tokens=620, n_generated_tokens=2,
                metadata={"question_id": 1_000_000 + i, "image_id": rng.randint(1, 40_000),
                          "answer_type": "yes/no" if truth in ("yes", "no") else "number" if truth.isdigit()
                          else "other", "question_type": " ".join(question.lower().split()[:2])})
            if not failed:
                scores.append(acc)
            fh.write(rec.model_dump_json() + "\n")
    mean = 100 * sum(scores) / len(scores)
    write_run(run, RunRecord(
        run_id=run.name, status="completed", created_at="2026-01-01T00:00:00+00:00",
        model=ModelInfo(name="synthetic", family="llava", checkpoint="/ckpt"), backend="hf",
        config=RunConfig(tasks=["vqav2_val"], batch_size=32),
        tasks={"vqav2_val": TaskResult(
            metrics={"accuracy": MetricValue(value=round(mean, 4), stderr=0.1, n=len(scores))},
            primary_metric="accuracy", n=n, n_errors=n - len(scores),
            dataset=DatasetInfo(id="lmms-lab/VQAv2", split="validation", n=n))}))
    return run


def photo_thumbnails(count: int, px: int) -> list[str]:
    """``count`` distinct thumbnails: random crops of a real photograph (or of noise, without matplotlib)."""
    from PIL import Image

    from evalkit.commands.viewer_data import thumbnail

    try:
        import matplotlib.cbook as cbook

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            photo = Image.open(f).convert("RGB")
    except (ImportError, OSError, ValueError):
        photo = Image.effect_noise((640, 480), 64).convert("RGB")
    rng = random.Random(0)
    out = []
    for _ in range(count):
        w, h = rng.randint(photo.width // 2, photo.width), rng.randint(photo.height // 2, photo.height)
        x, y = rng.randint(0, photo.width - w), rng.randint(0, photo.height - h)
        out.append(thumbnail(photo.crop((x, y, x + w, y + h)), px))
    return out


def build(run: Path, images: int) -> tuple[str, float]:
    """The page's HTML, as `evalkit view` builds it (rows from the run folder), and seconds taken."""
    from evalkit.commands.compare import load_side
    from evalkit.commands.viewer_data import THUMB_PX, PageData, choose_images, run_view
    from evalkit.commands.viewer_html import render_page

    thumbs = photo_thumbnails(images, THUMB_PX)  # stands in for reading the dataset: not timed
    t0 = time.perf_counter()
    side = load_side(run)
    views = run_view(side)
    chosen = choose_images(views, images)
    k = 0
    for view in views:
        for row in view.rows:
            if row["i"] in chosen[view.name]:
                row["im"], row["wh"] = [k], [640, 480]
                k += 1
    html = render_page(PageData("run", views, thumbs[:k]), side=side)
    return html, time.perf_counter() - t0


class Chromium:
    """A headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: fd 3 in, fd 4
    out, NUL-separated JSON), so the page runs in real time: --dump-dom's virtual time would freeze the page's
    clock while its script runs."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_chrome, self._write = os.pipe()
        self._read, from_chrome = os.pipe()

        def fds() -> None:
            os.dup2(to_chrome, 3)
            os.dup2(from_chrome, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome)
        os.close(from_chrome)
        self._buf, self._id = b"", 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._write, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str) -> Any:
        out = self.call("Runtime.evaluate", self.session, expression=expression, returnByValue=True)
        return out.get("result", {}).get("value")

    def open(self, url: str, timeout: float = 600.0) -> tuple[dict[str, str], float]:
        """Load ``url``; the page's timing attributes once it has rendered, and the seconds until then."""
        t0 = time.perf_counter()
        self.call("Page.navigate", self.session, url=url)
        while time.perf_counter() - t0 < timeout:
            if self.evaluate("document.body && document.body.dataset.ready") == "1":
                return json.loads(self.evaluate("JSON.stringify(document.body.dataset)")), time.perf_counter() - t0
            time.sleep(0.05)
        raise RuntimeError(f"{url} did not render in {timeout:.0f} s")

    def filter(self, fragment: str) -> float:
        """Apply a filter through the URL hash; the page's own time for the filter pass and one page of cards."""
        self.evaluate("delete document.body.dataset.applyMs")
        self.evaluate(f"location.hash = {json.dumps(fragment)}")
        for _ in range(6000):
            value = self.evaluate("document.body.dataset.applyMs")
            if value is not None:
                return float(value)
            time.sleep(0.05)
        raise RuntimeError(f"filter {fragment} did not finish")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self._read)
        os.close(self._write)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,200000", help="comma list of sample counts")
    ap.add_argument("--images", type=int, default=1000, help="thumbnails per page (evalkit view's default)")
    ap.add_argument("--no-browser", action="store_true", help="sizes and build times only")
    ap.add_argument("--keep", type=Path, default=None, help="keep the runs and pages in this folder")
    args = ap.parse_args()
    chromium = None if args.no_browser else next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    root = args.keep or Path(tempfile.mkdtemp(prefix="viewer-size-"))
    root.mkdir(parents=True, exist_ok=True)
    print("| samples | thumbnails | page MB | build s | first page ms | decode ms | parse ms | search+filter ms "
          "| load to ready s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in (int(s) for s in args.sizes.split(",")):
        run = synthetic_run(root, n)
        html, build_s = build(run, args.images)
        page = run / "view.html"
        page.write_text(html, encoding="utf-8")
        mb = page.stat().st_size / 1e6
        cells = ["-"] * 5
        if chromium:
            browser = Chromium(chromium, root / f"profile-{n}")
            try:
                attrs, wall = browser.open(page.as_uri())
                applied = browser.filter("q=color&status=wrong")
            finally:
                browser.close()
            cells = [attrs["renderMs"], attrs["decodeMs"], attrs["parseMs"], f"{applied:.0f}", f"{wall:.1f}"]
        print(f"| {n:,} | {min(args.images, n):,} | {mb:.1f} | {build_s:.1f} | " + " | ".join(cells) + " |",
              flush=True)
        if not args.keep:
            shutil.rmtree(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
