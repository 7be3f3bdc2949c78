"""Train the bundled reference model: a tiny LlavaForConditionalGeneration on the shapes suite.

    python scripts/train_reference.py --out evalkit/reference_model --seed 0 [--steps N]

Recipe (CPU, 2 cores: two data-parallel processes of one thread each; the defaults take 11 minutes on
this project's 2-core machine, see docs/reference_model.md for the measured figure):
1. A byte-level BPE tokenizer trained on chat-rendered training conversations. Its pieces are whole
   space-separated words (a box coordinate such as "0.27," is one token), and the suite's fixed instructions
   and the chat template's parts are one added token each (PHRASES). Against GPT-2-style pieces this cuts a
   batch from 58 to 38 positions (a step from 0.41 s to 0.31 s) and a box reply from 18 tokens to 5, which
   is what made boxes learnable in budget (box replies were learned last, after ~4000 steps, before).
2. Stage 1 (200 steps): the CLIP vision tower alone, with throw-away linear heads predicting for every 16 px
   patch (= grid cell) its shape's colour, kind, size and offset inside the cell, and the patch's own row and
   column (so the features keep position, which left/right and boxes need).
3. Stage 2 (2500 steps, batch 48, peak lr 4e-4, cosine): the whole model on a mix of the four shapes tasks,
   reply tokens averaged per sample (a one-word answer weighs as much as a box), keeping the dense probes
   as an auxiliary loss on the vision features AND on the projected image tokens the LM reads. The stage-2
   lr matters most: at 1e-3 the LM stays in the answer-prior basin (colour/shape at chance, captions "a blue
   square" for every image). The LM head runs only where a reply token is predicted.
   Training data comes from seeds >= 1000 and never holds a scene of the evaluation suite (EVAL_SEED).
4. Save with evalkit.testing.tiny_llava.save_checkpoint (hub key layout) and evaluate greedily on the
   evaluation suite through the chat-template prompt.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalkit.synthetic import shapes as S  # noqa: E402
from evalkit.testing.tiny_llava import build_tiny_llava, save_checkpoint, train_tokenizer  # noqa: E402

TRAIN_SEED_BASE = 1000
MIX = {"vqa": 0.4, "caption": 0.05, "grounding": 0.3, "pairs": 0.25}
# The suite's fixed instructions and the chat template's parts: one token each in the reference tokenizer
# (its BPE pieces are whole space-separated words, so a box coordinate such as "0.27," is one token too).
# Shorter sequences make a step cheaper, and a box reply is 5 tokens instead of 18.
PHRASES = ("USER: ", " ASSISTANT:", S.VQA_SUFFIX, S.CAPTION_PROMPT, S.GROUNDING_PROMPT.split("{expr}")[0].rstrip(), S.PAIR_SUFFIX)
DENSE_HEADS = {"color": len(S.COLORS) + 1, "kind": len(S.KINDS) + 1, "size": len(S.SIZES) + 1,
               "offx": 6, "offy": 6, "row": S.GRID, "col": S.GRID}


def log(msg: str) -> None:
    print(msg, flush=True)


# --- data ------------------------------------------------------------------------------------------


def training_pools(seed: int, steps: int, batch: int, eval_keys: set) -> dict[str, list]:
    """Per-task item pools from training seeds, with every evaluation scene removed."""
    need = {k: int(steps * batch * f * 1.05) + 64 for k, f in MIX.items()}
    s = TRAIN_SEED_BASE + seed
    pools = {
        "vqa": S.vqa_items(s, need["vqa"]),
        "caption": S.caption_items(s, need["caption"]),
        "grounding": S.grounding_items(s, need["grounding"]),
        "pairs": S.pair_items(s, need["pairs"] // 2),
    }
    for name, items in pools.items():
        kept = [it for it in items if it.scene.key not in eval_keys]
        log(f"  {name}: {len(kept)} training items ({len(items) - len(kept)} dropped: scene in eval suite)")
        pools[name] = kept
    return pools


def dense_labels(scene: S.Scene) -> dict[str, np.ndarray]:
    """Per-patch (16) class labels: colour, kind, size, x/y offset in the cell (0 = empty), row, column."""
    n = S.GRID * S.GRID
    out = {k: np.zeros(n, dtype=np.int64) for k in DENSE_HEADS}
    out["row"] = np.arange(n) // S.GRID
    out["col"] = np.arange(n) % S.GRID
    colors, sizes = list(S.COLORS), list(S.SIZES)
    for sh in scene.shapes:
        i = sh.row * S.GRID + sh.col
        out["color"][i] = colors.index(sh.color) + 1
        out["kind"][i] = S.KINDS.index(sh.kind) + 1
        out["size"][i] = sizes.index(sh.box[2] - sh.box[0]) + 1
        out["offx"][i] = sh.box[0] - sh.col * S.CELL
        out["offy"][i] = sh.box[1] - sh.row * S.CELL
    return out


def reply(item) -> str:
    """The training reply. A pair question is answered with the chosen option's text ("red"), which the
    MMVP scorer (evalkit.metrics.choice.extract_choice) reads through its option-text tier: naming the
    letter directly needs a compare-and-copy step a 1.6M-parameter model does not learn in budget (trained
    on "(a)"/"(b)" it answered "(a)" for every pair: pair accuracy 0.00)."""
    if isinstance(item, S.PairItem):
        return item.options["ab".index(item.answer)]
    return item.target


class Encoder:
    """Turns items into model inputs exactly as the processor + chat template would."""

    def __init__(self, processor) -> None:
        self.tok = processor.tokenizer
        ip = processor.image_processor
        self.mean = np.array(ip.image_mean, dtype=np.float32)[:, None, None]
        self.std = np.array(ip.image_std, dtype=np.float32)[:, None, None]
        self.n_img = (S.IMAGE_SIZE // processor.patch_size) ** 2
        self.image_id = self.tok.convert_tokens_to_ids("<image>")
        self._cache: dict[str, list[int]] = {}

    def prompt(self, question: str) -> str:
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        return self.tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def _ids(self, text: str, special: bool) -> list[int]:
        key = f"{special}|{text}"
        if key not in self._cache:
            ids = self.tok(text, add_special_tokens=special)["input_ids"]
            if special:  # expand the single <image> token as the processor does
                i = ids.index(self.image_id)
                ids = ids[:i] + [self.image_id] * self.n_img + ids[i + 1 :]
            self._cache[key] = ids
        return self._cache[key]

    def pixels(self, items) -> torch.Tensor:
        arr = np.stack([np.asarray(it.render(), dtype=np.float32).transpose(2, 0, 1) for it in items])
        return torch.from_numpy((arr / 255.0 - self.mean) / self.std)

    def batch(self, items) -> dict[str, torch.Tensor]:
        seqs, labels = [], []
        for it in items:
            p = self._ids(self.prompt(it.question), True)
            a = self._ids(f" {reply(it)}</s>", False)
            seqs.append(p + a)
            labels.append([-100] * len(p) + a)
        width = max(map(len, seqs))
        pad = self.tok.pad_token_id
        ids = torch.full((len(seqs), width), pad)
        lab = torch.full((len(seqs), width), -100)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, (s, l) in enumerate(zip(seqs, labels)):
            ids[i, : len(s)] = torch.tensor(s)
            lab[i, : len(l)] = torch.tensor(l)
            mask[i, : len(s)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": lab, "pixel_values": self.pixels(items)}

    def dense(self, items) -> dict[str, torch.Tensor]:
        rows = [dense_labels(it.scene) for it in items]
        return {k: torch.from_numpy(np.stack([r[k] for r in rows])) for k in DENSE_HEADS}


# --- model pieces ----------------------------------------------------------------------------------


class DenseHeads(nn.Module):
    """Throw-away linear probes on the patch features (not part of the saved checkpoint)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({k: nn.Linear(hidden, n) for k, n in DENSE_HEADS.items()})

    def loss(self, feats: torch.Tensor, labels: dict[str, torch.Tensor]) -> torch.Tensor:
        ce = nn.functional.cross_entropy
        return sum(ce(h(feats).flatten(0, 1), labels[k].flatten()) for k, h in self.heads.items()) / len(self.heads)


def patch_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    out = model.model.vision_tower(pixel_values, output_hidden_states=True)
    return out.hidden_states[model.config.vision_feature_layer][:, 1:]


def reply_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Reply-token cross-entropy averaged per sample, then over the batch: a one-word VQA answer weighs
    as much as a 20-token box (a plain token mean lets captions and boxes drown the short answers).
    The LM head runs only where a reply token is predicted (most positions are prompt and image)."""
    hidden = model.model(**{k: v for k, v in batch.items() if k != "labels"}).last_hidden_state[:, :-1]
    labels = batch["labels"][:, 1:]
    rows, cols = (labels != -100).nonzero(as_tuple=True)
    ce = nn.functional.cross_entropy(model.lm_head(hidden[rows, cols]), labels[rows, cols], reduction="none")
    per_row = torch.zeros(labels.shape[0]).index_add_(0, rows, ce)
    return (per_row / (labels != -100).sum(1).clamp(min=1)).mean()


class GradSync:
    """Plain data parallelism over gloo: one flat all-reduce of the gradients per step (a parameter
    without a gradient, such as the CLIP pooler's layer norm, has none in every process)."""

    def __init__(self, world: int) -> None:
        self.world = world

    def broadcast(self, params: list[torch.nn.Parameter]) -> None:
        if self.world > 1:
            import torch.distributed as dist

            for p in params:
                dist.broadcast(p.data, 0)

    def average(self, params: list[torch.nn.Parameter]) -> None:
        if self.world == 1:
            return
        import torch.distributed as dist

        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


@torch.no_grad()
def probe(model, enc: Encoder, items) -> str:
    """Teacher-forced first-reply-token accuracy per VQA qtype on held-out training-seed items (cheap)."""
    model.eval()
    batch = enc.batch(items)
    labels = batch.pop("labels")
    pred = model(**batch).logits[:, :-1].argmax(-1)
    labels = labels[:, 1:]
    first = (labels != -100).float().argmax(1)
    ok = (pred.gather(1, first[:, None]) == labels.gather(1, first[:, None]))[:, 0]
    model.train()
    by: dict[str, list[bool]] = {}
    for it, o in zip(items, ok.tolist()):
        by.setdefault(it.metadata["qtype"], []).append(o)
    return " ".join(f"{k}={np.mean(v):.2f}" for k, v in by.items())


def cosine(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))) * 0.95 + 0.05


def sample_batch(rng: random.Random, pools: dict[str, list], batch: int) -> list:
    names = list(MIX)
    picks = rng.choices(names, weights=[MIX[n] for n in names], k=batch)
    return [rng.choice(pools[n]) for n in picks]


# --- evaluation ------------------------------------------------------------------------------------


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@torch.no_grad()
def generate(model, processor, items, max_new_tokens: int, batch: int = 100) -> list[str]:
    """Greedy replies through processor + chat template, left padded, batched."""
    enc = Encoder(processor)
    tok = processor.tokenizer
    tok.padding_side = "left"
    out: list[str] = []
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        inputs = processor(images=[it.render() for it in chunk], text=[enc.prompt(it.question) for it in chunk],
                           return_tensors="pt", padding=True)
        gen = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        out += [t.strip() for t in tok.batch_decode(gen[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)]
    return out


def cider(preds: dict[str, str], refs: dict[str, list[str]]) -> float:
    from pycocoevalcap.cider.cider import Cider

    def norm(t: str) -> str:
        return " ".join(t.lower().replace(".", " .").replace(",", " ,").split())

    score, _ = Cider().compute_score({k: [norm(r) for r in v] for k, v in refs.items()},
                                     {k: [norm(preds[k])] for k in refs})
    return float(score)


def grounding_acc(model, processor, items) -> float:
    from evalkit.core.boxes import decode_box

    preds = generate(model, processor, items, 28)
    hits = []
    for p, it in zip(preds, items):
        box = decode_box(p, "norm_xyxy", S.IMAGE_SIZE, S.IMAGE_SIZE)
        hits.append(box is not None and box_iou(box, it.box) >= 0.5)
    return float(np.mean(hits))


def grounding_probe(model, processor, items) -> float:
    model.eval()
    acc = grounding_acc(model, processor, items)
    model.train()
    return acc


def evaluate(model, processor, seed: int = S.EVAL_SEED) -> dict[str, float]:
    """The four headline scores (and VQA per qtype) on the shapes suite of ``seed``."""
    from evalkit.metrics.choice import extract_choice
    from evalkit.metrics.vqa import vqa_accuracy

    model.eval()
    suite = S.suite(seed)
    res: dict[str, float] = {}
    vqa = suite["vqa"]
    preds = generate(model, processor, vqa, 6)
    accs = [vqa_accuracy(p, list(it.answers)) for p, it in zip(preds, vqa)]
    res["vqa"] = float(np.mean(accs))
    for q in S.VQA_QTYPES:
        res[f"vqa/{q}"] = float(np.mean([a for a, it in zip(accs, vqa) if it.metadata["qtype"] == q]))
    cap = suite["caption"]
    preds = generate(model, processor, cap, 48)
    res["caption_cider"] = cider({it.id: p for it, p in zip(cap, preds)}, {it.id: list(it.captions) for it in cap})
    res["grounding_acc50"] = grounding_acc(model, processor, suite["grounding"])
    pairs = suite["pairs"]
    preds = generate(model, processor, pairs, 6)
    ok = [extract_choice(p, it.options) == "ab".index(it.answer) for p, it in zip(preds, pairs)]
    res["pairs_question_acc"] = float(np.mean(ok))
    res["pairs_pair_acc"] = float(np.mean([ok[i] and ok[i + 1] for i in range(0, len(ok), 2)]))
    return res


# --- main ------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="checkpoint folder to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=2500, help="stage-2 steps")
    ap.add_argument("--stage1-steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=4e-4, help="stage-2 peak lr (1e-3 stays in the prior basin)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, nargs=2, default=(3, 3), metavar=("VISION", "TEXT"))
    ap.add_argument("--vocab", type=int, default=1000, help="BPE vocabulary (the phrases come on top)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mix", default=",".join(f"{k}={v}" for k, v in MIX.items()),
                    help="task weights of stage 2, e.g. vqa=0.4,caption=0.05,grounding=0.3,pairs=0.25")
    ap.add_argument("--procs", type=int, default=0,
                    help="data-parallel processes, one thread each (default: --threads); 1 = one process")
    ap.add_argument("--no-eval", action="store_true")
    ap.add_argument("--proj-dense", type=float, default=1.0, help="weight of the dense probes on projected tokens")
    args = ap.parse_args()

    mix = dict(kv.split("=") for kv in args.mix.split(","))
    if set(mix) != set(MIX):
        ap.error(f"--mix needs weights for exactly {sorted(MIX)}")
    MIX.update({k: float(v) for k, v in mix.items()})
    procs = args.procs or args.threads
    t0 = time.time()

    log("building data ...")
    eval_suite = S.suite(S.EVAL_SEED)
    eval_keys = {it.scene.key for items in eval_suite.values() for it in items}
    pools = training_pools(args.seed, args.steps + args.stage1_steps, args.batch, eval_keys)
    eval_q = {(it.scene.key, it.question) for items in eval_suite.values() for it in items}
    assert not any((it.scene.key, it.question) in eval_q for p in pools.values() for it in p)

    corpus_rng = random.Random(args.seed + 1)
    corpus = []
    for name, items in pools.items():
        for it in corpus_rng.sample(items, min(3000, len(items))):
            corpus.append(f"USER: <image>\n{it.question} ASSISTANT: {reply(it)}</s>")
    corpus += sorted({f" {reply(it)}" for it in pools["grounding"]})  # every coordinate piece gets a token
    tokenizer = train_tokenizer(corpus, vocab_size=args.vocab, whole_words=True, phrases=PHRASES)
    if procs == 1:
        torch.set_num_threads(args.threads)
        train(0, 1, args, pools, tokenizer, t0)
        return
    # Data parallel: every process draws the same global batch and trains on its share, gradients are
    # averaged before each step, so a step is the same batch-`--batch` step as with one process. Forked
    # (the pools are shared copy-on-write); nothing in this process has run a torch kernel yet.
    import torch.multiprocessing as tmp

    with tempfile.TemporaryDirectory() as rendezvous:  # a file, not a TCP port: nothing to collide with
        tmp.start_processes(train, args=(procs, args, pools, tokenizer, t0, Path(rendezvous) / "gloo"),
                            nprocs=procs, start_method="fork")


def train(rank: int, world: int, args, pools: dict[str, list], tokenizer, t0: float,
          rendezvous: Path | None = None) -> None:
    """Stages 1 and 2 on this process's share of every batch; rank 0 logs, saves and evaluates."""
    if world > 1:
        import torch.distributed as dist

        torch.set_num_threads(max(1, args.threads // world))
        dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    say = log if rank == 0 else (lambda _msg: None)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)  # the same stream in every process: the same global batches
    model, processor = build_tiny_llava(tokenizer, hidden=args.hidden, layers=tuple(args.layers), seed=args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model: {n_params / 1e6:.2f}M parameters, vocab {len(tokenizer)}, {world} process(es)  [{time.time() - t0:.0f}s]")
    enc = Encoder(processor)
    heads = DenseHeads(args.hidden)
    proj_heads = DenseHeads(args.hidden)  # the same probes on the projected image tokens the LM reads
    everything = list(model.parameters()) + list(heads.parameters()) + list(proj_heads.parameters())
    sync = GradSync(world)
    sync.broadcast(everything)

    def share(items: list) -> list:
        return items[rank::world]

    # stage 1: vision tower + dense heads
    vt = model.model.vision_tower
    params = list(vt.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.01, fused=True)
    model.train()
    for step in range(args.stage1_steps):
        for g in opt.param_groups:
            g["lr"] = 2e-3 * cosine(step, args.stage1_steps, 50)
        items = share(sample_batch(rng, pools, 64))
        loss = heads.loss(patch_features(model, enc.pixels(items)), enc.dense(items))
        opt.zero_grad()
        loss.backward()
        sync.average(params)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step == args.stage1_steps - 1:
            say(f"stage1 {step:5d} dense loss {loss.item():.4f}  [{time.time() - t0:.0f}s]")

    # stage 2: everything, LM loss + auxiliary dense loss (on the features the model itself computed)
    probe_items = S.vqa_items(TRAIN_SEED_BASE - 1, 200)
    grd_items = S.grounding_items(TRAIN_SEED_BASE - 1, 100)
    captured: dict = {}
    hooks = [vt.register_forward_hook(lambda _m, _a, output: captured.__setitem__("out", output)),
             model.model.multi_modal_projector.register_forward_hook(
                 lambda _m, _a, output: captured.__setitem__("proj", output))]
    opt = torch.optim.AdamW(everything, lr=args.lr, weight_decay=0.01, fused=True)
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = args.lr * cosine(step, args.steps, 100)
        items = share(sample_batch(rng, pools, args.batch))
        batch = enc.batch(items)
        lm_loss = reply_loss(model, batch)
        feats = captured["out"].hidden_states[model.config.vision_feature_layer][:, 1:]
        dense = enc.dense(items)
        aux = heads.loss(feats, dense) + args.proj_dense * proj_heads.loss(captured["proj"], dense)
        loss = lm_loss + 0.3 * aux
        opt.zero_grad()
        loss.backward()
        sync.average(everything)
        torch.nn.utils.clip_grad_norm_(everything, 1.0)
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            say(f"stage2 {step:5d} lm loss {lm_loss.item():.4f} dense {aux.item():.4f}  [{time.time() - t0:.0f}s]")
        if rank == 0 and step % 200 == 199:
            log(f"  probe (held-out seed, teacher-forced): {probe(model, enc, probe_items)}")
        if rank == 0 and step % 500 == 499:
            log(f"  grounding acc@0.5 (held-out seed, greedy, 100 items): {grounding_probe(model, processor, grd_items):.2f}")

    for h in hooks:
        h.remove()
    if world > 1:
        dist.destroy_process_group()
    if rank != 0:
        return
    torch.set_num_threads(args.threads)
    model.eval()
    folder = save_checkpoint(model, processor, args.out)
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    log(f"saved {folder} ({size / 1e6:.1f} MB); training took {time.time() - t0:.0f}s")
    if not args.no_eval:
        t1 = time.time()
        scores = evaluate(model, processor)
        log(f"eval on seed {S.EVAL_SEED} ({time.time() - t1:.0f}s): " + ", ".join(f"{k}={v:.3f}" for k, v in scores.items()))


if __name__ == "__main__":
    main()
