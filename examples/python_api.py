"""evalkit from Python: `evalkit.evaluate`, the same code path as `evalkit run`.

    python examples/python_api.py --limit 8 --output results/examples

1. A model named as on the command line (here the bundled reference model).
2. A model object already in memory, as in a training loop: its current weights are evaluated without being saved,
   and the model is left as it was (train mode, tokenizer padding side, RNG state). Each evaluation is a run folder
   like any other, so `evalkit compare` and `evalkit leaderboard` read them.
"""

from __future__ import annotations

import argparse

import evalkit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=16, help="samples per task")
    ap.add_argument("--output", default="results/examples", help="folder that receives the run folders")
    args = ap.parse_args()

    # 1. By name: any --model value works ("reference", a family, a local folder, a hub id).
    result = evalkit.evaluate(model="reference", tasks=["shapes_vqa"], limit=args.limit, output=args.output,
                              gen_kwargs={"max_new_tokens": 8}, progress=False)
    print(f"by name: {result.scores} -> {result.run_dir}")

    # 2. In memory: a transformers model and its processor, e.g. inside a training loop.
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from evalkit.reference_model import PATH

    model = LlavaForConditionalGeneration.from_pretrained(PATH)
    processor = AutoProcessor.from_pretrained(PATH)
    model.train()
    for step in (0, 1):
        if step:  # stands in for an optimizer step: the weights change, nothing is saved
            with torch.no_grad():
                model.lm_head.weight.add_(1e-3 * torch.randn_like(model.lm_head.weight))
        result = evalkit.evaluate(model=model, processor=processor, name=f"reference-step{step}",
                                  tasks="shapes_vqa,shapes_grounding", limit=args.limit, output=args.output,
                                  progress=False)
        print(f"step {step}: {result.scores} weights {result.model.fingerprint} -> {result.run_dir} "
              f"(still training: {model.training})")


if __name__ == "__main__":
    main()
