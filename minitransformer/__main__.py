"""Command line, for teachers who pretrain ahead of class.

    python -m minitransformer train --task reverse --preset tiny --steps 1500 --out runs/reverse
    python -m minitransformer eval --ckpt runs/reverse --split test
    python -m minitransformer decode --ckpt runs/reverse "h e l l o"
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

import torch

PRESETS = ("tiny", "small", "paper_base", "paper_big")
RECIPES = ("classroom", "paper")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    import minitransformer as mt

    parser = argparse.ArgumentParser(prog="python -m minitransformer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(required=True, metavar="{train,eval,decode}")

    train = sub.add_parser("train", help="train a model on a task and save a checkpoint")
    train.add_argument("--task", required=True, help=f"one of: {', '.join(mt.list_tasks())}")
    train.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE",
                       help="override a task option, e.g. max_len=8 (repeatable)")
    train.add_argument("--preset", default="tiny", choices=PRESETS)
    train.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                       help="override a ModelConfig field, e.g. pos_encoding=rope")
    train.add_argument("--recipe", default="classroom", choices=RECIPES,
                       help="classroom: AdamW, constant lr after warmup (fast on tiny models); "
                            "paper: Adam (0.9, 0.98), warmup + inverse sqrt, label smoothing 0.1")
    train.add_argument("--train-option", action="append", default=[], metavar="KEY=VALUE",
                       help="override a TrainConfig field, e.g. lr=0.002")
    train.add_argument("--steps", type=int, required=True)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default=None, help="auto, cpu, cuda, mps (default: MT_DEVICE "
                                                       "or auto)")
    train.add_argument("--out", required=True, help="checkpoint directory to write")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=_train)

    evaluate = sub.add_parser("eval", help="evaluate a checkpoint on its task")
    evaluate.add_argument("--ckpt", required=True)
    evaluate.add_argument("--split", default="test", choices=("train", "valid", "test"))
    evaluate.set_defaults(run=_eval)

    decode = sub.add_parser("decode", help="translate / continue text with a checkpoint")
    decode.add_argument("--ckpt", required=True)
    decode.add_argument("--beam", type=int, default=1, help="beam size (1 = greedy)")
    decode.add_argument("--max-new-tokens", type=int, default=64)
    decode.add_argument("text", nargs="+", help="source texts (or prompts for a decoder-only "
                                                "model)")
    decode.set_defaults(run=_decode)
    return parser


def _train(args: argparse.Namespace) -> int:
    import minitransformer as mt

    if args.steps <= 0:
        raise ValueError(f"--steps must be a positive number of updates, got {args.steps}")
    from .distributed import init_from_env, is_main_process

    device = init_from_env()  # set when launched by torchrun
    task = mt.get_task(args.task, seed=args.seed, **_options(args.task_option))
    model_cfg = model_config_for(task, args.preset, **_options(args.model_option))
    recipe = mt.TrainConfig.classroom if args.recipe == "classroom" else mt.TrainConfig
    train_cfg = recipe(**{"seed": args.seed, "device": str(device or args.device or "") or None,
                          "progress": not args.quiet, **_options(args.train_option)})
    mt.seed_everything(args.seed)
    trainer = mt.Trainer(mt.build_model(model_cfg), task, train_cfg)
    say = print if is_main_process() else _silent
    say(f"task {task.name}: {len(task.train)} training examples; model "
          f"{mt.count_parameters(trainer.model):,} parameters on {trainer.device}"
          + (f", {trainer.world_size} processes" if trainer.world_size > 1 else "")
          + f"; {trainer.precision_reason}")
    trainer.run(args.steps)
    metrics = {**trainer.evaluate("valid"), **trainer.evaluate("test")}
    metrics.pop("split")
    trainer.save(args.out)
    if is_main_process():
        _record_command(args.out, args.argv, metrics)
    say(json.dumps(_rounded(metrics), indent=1))
    say(f"saved to {args.out}")
    return 0


def _silent(*args: Any, **kwargs: Any) -> None:
    pass


def model_config_for(task: Any, preset: str, **overrides: Any):
    """A preset ModelConfig sized for `task` (vocabularies, architecture, max_len)."""
    import minitransformer as mt

    arch = "decoder_only" if task.kind == "lm" else "encoder_decoder"
    sizes = dict(arch=arch, tgt_vocab_size=task.tgt_vocab_size,
                 src_vocab_size=task.src_vocab_size, max_len=max(task.max_len + 8, 32))
    if preset in ("paper_base", "paper_big"):
        sizes.pop("arch")
        return getattr(mt.ModelConfig, preset)(**{**sizes, **overrides})
    base = getattr(mt.ModelConfig, preset)(task.tgt_vocab_size)
    return base.replace(**{**sizes, **overrides})


def _eval(args: argparse.Namespace) -> int:
    import minitransformer as mt

    trainer = mt.Trainer.from_checkpoint(args.ckpt, progress=False)
    print(json.dumps(_rounded(trainer.evaluate(args.split)), indent=1))
    return 0


def _decode(args: argparse.Namespace) -> int:
    import minitransformer as mt

    ckpt = mt.load(args.ckpt)
    model, src_tok, tgt_tok = ckpt.model, ckpt.src_tokenizer, ckpt.tgt_tokenizer
    if tgt_tok is None:
        raise ValueError(f"checkpoint {args.ckpt} has no tokenizer; it cannot decode text")
    for text in args.text:
        if model.is_encoder_decoder:
            src = torch.tensor([src_tok.encode(text, add_eos=True)])
            kwargs = {"src": src}
        else:
            kwargs = {"prompt": torch.tensor([tgt_tok.encode(text, add_bos=True)])}
        if args.beam > 1:
            result = mt.beam_search(model, beam_size=args.beam,
                                    max_new_tokens=args.max_new_tokens, **kwargs)
        else:
            result = mt.greedy_decode(model, max_new_tokens=args.max_new_tokens, **kwargs)
        print(f"{text}\t{tgt_tok.decode(result.tokens[0].tolist())}")
    return 0


def _options(pairs: list[str]) -> dict[str, Any]:
    """["a=1", "b=rope", "c=true"] -> {"a": 1, "b": "rope", "c": True} (JSON where it parses)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _record_command(directory: str, argv: list[str], metrics: dict[str, Any]) -> None:
    """Add the exact command and its final metrics to the checkpoint's config.json."""
    from pathlib import Path

    path = Path(directory) / "config.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["extra"] = {**meta.get("extra", {}),
                     "command": "python -m minitransformer " + shlex.join(argv),
                     "final_metrics": _rounded(metrics)}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def _rounded(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


if __name__ == "__main__":
    sys.exit(main())
