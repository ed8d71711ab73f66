"""The checkpoints shipped in data/checkpoints/: small, loadable, and as good as recorded.

Each was written by the command in its config.json ("extra.command"); its recorded metrics are
re-measured here from the loaded weights, so a stale or hand-edited number fails.
"""

import json
from pathlib import Path

import pytest
import torch

import minitransformer as mt

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "checkpoints"
NAMES = ("reverse", "numbers_en_de", "grammar_lm")
MAX_BYTES = 5 * 1024 * 1024


def _meta(name: str) -> dict:
    return json.loads((SHIPPED / name / "config.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_each_is_under_5_mb_and_records_its_command(name):
    size = sum(p.stat().st_size for p in (SHIPPED / name).iterdir())
    assert size < MAX_BYTES, f"{name}: {size / 1e6:.1f} MB"
    command = _meta(name)["extra"]["command"]
    assert command.startswith("python -m minitransformer train") and f"--task {name}" in command


@pytest.mark.parametrize("name", NAMES)
def test_recorded_test_metrics_are_reproduced(name):
    trainer = mt.Trainer.from_checkpoint(SHIPPED / name, progress=False, device="cpu")
    measured = trainer.evaluate("test")
    recorded = _meta(name)["extra"]["final_metrics"]
    for key in ("test_loss", "test_token_acc", "test_seq_acc"):
        assert measured[key] == pytest.approx(recorded[key], abs=1e-3), key


def _best_cross_head(name: str, n: int = 100) -> tuple[int, int, float]:
    ckpt = mt.load(SHIPPED / name)
    task = mt.get_task(name)
    probe = task.probe_batch(n, split="test")
    cache = mt.record(ckpt.model, probe.batch.src, probe.batch.tgt_in)
    gold = [task.gold_alignment_matrix(ex, include_specials=True) for ex in probe.examples]
    return mt.best_alignment_head(cache, gold)


def test_reverse_has_a_cross_attention_head_that_follows_the_gold_alignment():
    layer, head, accuracy = _best_cross_head("reverse")
    assert accuracy >= 0.95, (layer, head, accuracy)


def test_number_translation_has_a_head_that_finds_the_swapped_words():
    layer, head, accuracy = _best_cross_head("numbers_en_de")
    assert accuracy >= 0.85, (layer, head, accuracy)


def test_grammar_model_continues_a_prompt():
    ckpt = mt.load(SHIPPED / "grammar_lm")
    tok = ckpt.tgt_tokenizer
    prompt = torch.tensor([tok.encode("the", add_bos=True)])
    result = mt.greedy_decode(ckpt.model, prompt=prompt, max_new_tokens=20)
    words = tok.decode(result.tokens[0].tolist()).split()
    assert words and "<unk>" not in words
    assert bool(result.finished[0]), "the model should end its sentence with <eos>"
