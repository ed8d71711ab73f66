"""The benchmarks run and print their tables (--quick: tiny sizes, one repeat).

No timing assertions: these tests prove the code paths work and the FLOP formula matches the
model; the numbers themselves are only meaningful from `make bench` on a quiet machine.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import minitransformer as mt
from benchmarks import common, generation, looking, memory, mfu, precision, run_all, throughput
from benchmarks.peers import NanoGPTStyle, TorchSeq2Seq


@pytest.fixture(autouse=True)
def _restore_torch_state():
    """The benchmarks set torch's thread count and seeds; give the next test what it had."""
    threads = torch.get_num_threads()
    with torch.random.fork_rng():
        yield
    torch.set_num_threads(threads)


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ")]


@pytest.mark.parametrize("module, expected", [
    (throughput, ["ours vs nn.Transformer", "ours vs nanoGPT-style", "bf16 autocast vs fp32",
                  "explicit attention (the rule's pick) vs SDPA",
                  "explicit path with weights vs fused", "precision='auto' picks",
                  "dropout 0 (same work)", "attention dropout 0.1 (same work)",
                  "mt.Trainer.step", "torch.compile"]),
    (precision, ["native bf16 matmul", "reverse, tiny model, 4 steps: bf16 vs fp32 speed",
                 "grammar_lm, tiny model: bf16 loss curve vs fp32"]),
    (mfu, ["matmul peak fp32", "matmul peak bf16", "enc-dec ours fp32 train step MFU",
           "dec-only ours fp32 train step MFU"]),
    (looking, ["AttentionHistory(every=2) vs without", "one capture",
               "eval forward with weights (explicit) vs fused"]),
    (generation, ["greedy, B8", "greedy, B1", "sampling", "beam search", "dec-only greedy"]),
    (memory, ["peak RSS", "AttentionHistory.nbytes"]),
])
def test_module_quick_prints_its_table(module, expected, capsys):
    module.main(["--quick"])
    out = capsys.readouterr().out
    assert "torch " + torch.__version__ in out and "load avg" in out  # the machine header
    lines = _table_lines(out)
    assert lines[0].startswith("| section") and len(lines) >= 1 + len(expected)
    for text in expected:
        assert any(text in line for line in lines), f"no table line mentions {text!r}"
    assert "targets:" in out


def test_targets_print_pass_or_miss(capsys):
    throughput.main(["--quick"])
    out = capsys.readouterr().out
    judged = [line for line in _table_lines(out) if ">= " in line]
    assert judged and all(("PASS" in line) != ("MISS" in line) for line in judged)


def test_run_all_quick_one_table_and_output_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(run_all, "TIME_TO_ACCURACY", "benchmarks.no_such_module")
    path = tmp_path / "bench.md"
    run_all.main(["--quick", "--only", "mfu", "time_to_accuracy", "--output", str(path)])
    out = capsys.readouterr().out
    assert "# all results" in out
    written = path.read_text()
    assert "| mfu" in written and "not available" in written and "targets:" in written


def test_peers_give_logits_of_the_right_shape():
    src, tgt = torch.randint(4, 30, (2, 5)), torch.randint(4, 30, (2, 6))
    seq2seq = TorchSeq2Seq(30, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
                           d_ff=32, dropout=0.0, max_len=8)
    assert seq2seq(src, tgt).shape == (2, 6, 30)
    gpt = NanoGPTStyle(30, d_model=16, n_heads=2, n_layers=2, d_ff=64, dropout=0.0, max_len=8)
    assert gpt(None, tgt).shape == (2, 6, 30)
    # causal: changing a later token leaves earlier logits unchanged
    for model, args in ((seq2seq, (src,)), (gpt, (None,))):
        model.eval()
        changed = tgt.clone()
        changed[:, -1] = 5 if int(tgt[0, -1]) != 5 else 6
        before, after = model(*args, tgt), model(*args, changed)
        assert torch.allclose(before[:, :-1], after[:, :-1], atol=1e-5)


def _linear_weights(module: nn.Module, skip: tuple[str, ...] = ()) -> int:
    return sum(m.weight.numel() for name, m in module.named_modules()
               if isinstance(m, nn.Linear) and not any(s in name for s in skip))


@pytest.mark.parametrize("spec", [throughput.quick_spec(throughput.ENCDEC),
                                  throughput.quick_spec(throughput.DECONLY)])
def test_flop_formula_counts_every_matmul_weight_of_our_model(spec):
    model = throughput.build_ours(spec)
    d = spec.d_model
    if spec.arch == "encoder_decoder":
        # encoder weights see src tokens; the cross-attention K/V projection sees src tokens once
        # per decoder layer; the rest of the decoder and the output projection see tgt tokens
        enc = sum(_linear_weights(layer) for layer in model.encoder_layers)
        kv = sum(layer.src_attn.kv_proj.weight.numel() for layer in model.decoder_layers)
        dec = sum(_linear_weights(layer) for layer in model.decoder_layers) - kv
        per_example = spec.src_len * (enc + kv) + spec.tgt_len * (dec + d * spec.vocab)
        attention = 12 * d * (spec.n_encoder_layers * spec.src_len ** 2
                              + spec.n_decoder_layers * (spec.tgt_len ** 2
                                                         + spec.tgt_len * spec.src_len))
    else:
        per_example = spec.tgt_len * _linear_weights(model)  # includes the tied output layer
        attention = 12 * d * spec.n_decoder_layers * spec.tgt_len ** 2
    assert mfu.flops_per_step(spec) == spec.batch * (6 * per_example + attention)


def test_interleaved_flips_the_order_each_repeat():
    calls: list[str] = []
    seconds = common.interleaved({"a": lambda: calls.append("a"),
                                  "b": lambda: calls.append("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert {k: len(v) for k, v in seconds.items()} == {"a": 3, "b": 3}


def test_stats_and_ratios():
    stat = common.paired_ratio([2.0, 4.0, 9.0], [1.0, 1.0, 3.0])
    assert (stat.median, stat.low, stat.high) == (3.0, 2.0, 4.0)
    assert common.rates([0.5, 1.0, 2.0], work=10).median == 10
    with pytest.raises(ValueError, match="equal lengths"):
        common.paired_ratio([1.0], [1.0, 2.0])
    rows = [common.Row("s", "a", "1", target=">= 1x", passed=True),
            common.Row("s", "b", "2", target=">= 3x", passed=False), common.Row("s", "c", "3")]
    assert "1 PASS, 1 MISS" in common.summary_line(rows)
    table = common.format_table(rows)
    assert "PASS" in table and "MISS" in table and len(table.splitlines()) == 5


def test_generation_really_generates_64_tokens_without_eos():
    model = mt.build_model(generation.small_config("decoder_only", quick=True))
    result = mt.greedy_decode(model, max_new_tokens=8, batch_size=2, eos_id=generation.NO_EOS)
    assert result.lengths.tolist() == [8, 8]
