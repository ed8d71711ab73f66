"""Checkpoints: the directory layout, exact round trips, atomic writes, clear errors."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors import safe_open

import minitransformer as mt
import minitransformer.checkpoint as checkpoint

FILES = ("model.safetensors", "config.json", "src_tokenizer.json", "tgt_tokenizer.json",
         "metrics.json", "trainer_state.pt")



@pytest.fixture(scope="module")
def task():
    return mt.get_task("reverse", n_train=200, n_valid=50, n_test=50)


def make_model(task, **changes) -> mt.Transformer:
    mt.seed_everything(0)
    options = dict(max_len=task.max_len + 2, d_model=32, n_heads=2, d_ff=64, dropout=0.1)
    return mt.build_model(mt.ModelConfig.tiny(vocab_size=task.tgt_vocab_size,
                                              **{**options, **changes}))


def make_trainer(task, **changes) -> mt.Trainer:
    config = mt.TrainConfig.classroom(progress=False, batch_size=32, warmup_steps=10,
                                      device="cpu")
    return mt.Trainer(make_model(task, **changes), task, config)


@pytest.fixture
def trained(task, tmp_path):
    """A trainer after 6 steps, saved to tmp_path / "run"."""
    trainer = make_trainer(task)
    trainer.run(6)
    trainer.save(tmp_path / "run")
    return trainer, tmp_path / "run"


def logits_of(model, task) -> torch.Tensor:
    batch = next(iter(task.batches("valid", 8, shuffle=False)))
    model.eval()
    with torch.no_grad():
        return model(batch.src, batch.tgt_in).logits


def test_trainer_save_writes_every_file(trained):
    trainer, path = trained
    assert sorted(p.name for p in path.iterdir()) == sorted(FILES)
    meta = json.loads((path / "config.json").read_text())
    assert meta["model"] == trainer.model.config.to_dict()
    assert meta["train"]["seed"] == trainer.config.seed
    assert meta["task"]["name"] == "reverse" and meta["task"]["options"]["n_train"] == 200
    assert json.loads((path / "metrics.json").read_text()) == json.loads(
        json.dumps(trainer.history))
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp/old dirs


def test_checkpoint_from_before_attention_dropout_keeps_its_behaviour(trained):
    """Checkpoints written before `attention_dropout` existed dropped attention weights at
    the `dropout` rate: they load that way, so resuming trains as before."""
    trainer, path = trained
    meta = json.loads((path / "config.json").read_text())
    del meta["model"]["attention_dropout"]
    meta["model"]["dropout"] = 0.2
    (path / "config.json").write_text(json.dumps(meta))
    assert mt.load(path).model.config.attention_dropout == 0.2


def test_load_gives_identical_logits_and_metadata(trained, task):
    trainer, path = trained
    ckpt = mt.load(path)
    assert isinstance(ckpt, mt.Checkpoint)
    assert ckpt.config == trainer.model.config
    assert torch.equal(logits_of(ckpt.model, task), logits_of(trainer.model, task))
    assert ckpt.train_config == trainer.config
    assert len(ckpt.history) == 6 and ckpt.history[-1]["step"] == 6
    text = task.valid[0].tgt
    assert ckpt.tgt_tokenizer.encode(text) == task.tgt_tokenizer.encode(text)
    assert ckpt.src_tokenizer.vocab_size == task.src_vocab_size


def test_trainer_state_loads_without_pickle(trained):
    _, path = trained
    state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=True)
    assert state["state"]["step"] == 6
    assert "optimizer" in state and "rng_state" in state


def test_fixed_sinusoidal_table_is_not_saved(trained):
    trainer, path = trained
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        names = set(f.keys())
        shapes = [tuple(f.get_slice(n).get_shape()) for n in names]
    assert not any("positional" in n for n in names), names
    table_shape = tuple(trainer.model.positional.table.shape)  # (max_len, d_model)
    assert table_shape not in shapes
    assert names <= set(trainer.model.state_dict())


def test_tied_weights_stay_tied_after_a_round_trip(trained):
    trainer, path = trained
    assert trainer.model.output_proj.weight is trainer.model.tgt_embed.weight
    model = mt.load(path).model
    assert model.output_proj.weight is model.tgt_embed.weight
    assert model.output_proj.weight.data_ptr() == model.tgt_embed.weight.data_ptr()
    with torch.no_grad():  # still one tensor: changing one changes the other
        model.tgt_embed.weight[3, 0] = 123.0
    assert model.output_proj.weight[3, 0].item() == 123.0


def test_untied_weights_round_trip(task, tmp_path):
    model = make_model(task, tie_embeddings=False)
    mt.save(model, tmp_path / "untied")
    loaded = mt.load(tmp_path / "untied").model
    assert loaded.output_proj.weight is not loaded.tgt_embed.weight
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_model_only_save_and_resume_refusal(task, tmp_path):
    model = make_model(task)
    mt.save(model, tmp_path / "weights")
    assert not (tmp_path / "weights" / "trainer_state.pt").exists()
    assert torch.equal(logits_of(mt.load(tmp_path / "weights").model, task),
                       logits_of(model, task))
    with pytest.raises(ValueError, match="trainer_state.pt"):
        mt.Trainer.from_checkpoint(tmp_path / "weights", task=task)


def test_resume_with_given_task_and_config_changes(trained, task):
    _, path = trained
    resumed = mt.Trainer.from_checkpoint(path, task=task, eval_every=2, batch_size=16)
    assert resumed.task is task
    assert resumed.config.eval_every == 2 and resumed.config.batch_size == 16
    assert resumed.run(2)[-1]["step"] == 8
    assert resumed.history[-1]["step"] == 8 and "valid_loss" in resumed.history[-1]


def test_user_task_must_be_passed_back_to_resume(tmp_path):
    pairs = [(f"a{i} b", f"b a{i}") for i in range(40)]
    task = mt.task_from_pairs(pairs, name="my_pairs")
    trainer = mt.Trainer(make_model(task, src_vocab_size=task.src_vocab_size), task,
                         mt.TrainConfig.classroom(progress=False, batch_size=8, device="cpu"))
    trainer.run(2)
    trainer.save(tmp_path / "mine")
    with pytest.raises(ValueError, match="my_pairs"):
        mt.Trainer.from_checkpoint(tmp_path / "mine")
    resumed = mt.Trainer.from_checkpoint(tmp_path / "mine", task=task)
    assert resumed.run(1)[-1]["step"] == 3


def test_gpu_checkpoint_resumes_on_cpu(trained, task, tmp_path):
    """A checkpoint saved on a GPU holds a CUDA RNG state; resuming on a CPU must ignore it
    (applying it would overwrite the global CUDA RNG where CUDA is initialised, or queue a lazy
    CUDA call where it is not) and give the same losses as the straight run."""
    trainer, path = trained
    state_file = path / "trainer_state.pt"
    state = torch.load(state_file, weights_only=True)
    state["rng_state"]["cuda"] = torch.zeros(16, dtype=torch.uint8)  # as if saved on a GPU
    torch.save(state, state_file)
    straight = [m["loss"] for m in make_trainer(task).run(9)]
    queued = len(getattr(torch.cuda, "_queued_calls", []))
    resumed = mt.Trainer.from_checkpoint(path, device="cpu")
    resumed.run(3)
    assert [m["loss"] for m in resumed.history] == straight
    if not torch.cuda.is_initialized():
        assert len(getattr(torch.cuda, "_queued_calls", [])) == queued


def test_save_over_an_existing_checkpoint_replaces_it(trained):
    trainer, path = trained
    trainer.run(2)
    trainer.save(path)
    assert mt.load(path).history[-1]["step"] == 8
    assert sorted(p.name for p in path.parent.iterdir()) == ["run"]


@pytest.mark.parametrize("where", ["json", "tokenizer"])
def test_crash_mid_save_keeps_the_previous_checkpoint(trained, task, monkeypatch, where):
    trainer, path = trained
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    trainer.run(2)  # weights and history now differ from what is on disk

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    if where == "json":
        monkeypatch.setattr(checkpoint, "_write_json", crash)
    else:
        monkeypatch.setattr(type(task.tgt_tokenizer), "save", crash)
    with pytest.raises(OSError, match="simulated"):
        trainer.save(path)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before  # untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["run"]  # no temp dir left
    assert mt.load(path).history[-1]["step"] == 6


def test_loading_into_another_shape_names_tensor_and_shapes(trained, task):
    _, path = trained
    other = make_model(task, d_model=48)
    with pytest.raises(ValueError, match="does not fit this model") as info:
        mt.load_weights(other, path)
    # e.g. "decoder_layers.0.norm1.weight: checkpoint (32,) vs model (48,)"
    assert re.search(r"[a-z_]+\.\d+\.[\w.]+: checkpoint \(32,\) vs model \(48,\)",
                     str(info.value)), str(info.value)


def test_loading_with_another_vocabulary_is_refused(trained, task):
    _, path = trained
    vocab = task.tgt_vocab_size
    other = make_model(task, tgt_vocab_size=vocab + 5)
    with pytest.raises(ValueError) as info:
        mt.load_weights(other, path)
    # the tied embedding / output projection is stored once, under one of its two names
    expected = (rf"(output_proj|tgt_embed)\.weight: checkpoint \({vocab}, 32\) "
                rf"vs model \({vocab + 5}, 32\)")
    assert re.search(expected, str(info.value)), str(info.value)


def test_loading_more_layers_is_refused(trained, task):
    _, path = trained
    deeper = make_model(task, n_decoder_layers=3)  # the checkpoint lacks decoder layer 2
    with pytest.raises(ValueError, match="decoder_layers.2"):
        mt.load_weights(deeper, path)


def test_missing_directory_names_it(tmp_path):
    missing = tmp_path / "no_such_run"
    with pytest.raises(FileNotFoundError, match="no_such_run"):
        mt.load(missing)
    with pytest.raises(FileNotFoundError, match="no_such_run"):
        mt.Trainer.from_checkpoint(missing)


def test_incomplete_directory_names_what_is_missing(trained):
    _, path = trained
    (path / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="model.safetensors"):
        mt.load(path)


def test_not_a_checkpoint_config_is_refused(trained):
    _, path = trained
    (path / "config.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a minitransformer checkpoint"):
        mt.load(path)
