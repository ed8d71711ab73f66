"""Model configuration: one validated dataclass, plus presets from the classroom to the paper.

    cfg = ModelConfig.tiny(vocab_size=20)                 # trains in seconds on a laptop CPU
    cfg = ModelConfig.paper_base(vocab_size=37000)        # "Attention Is All You Need", Table 3
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

ARCHS = ("encoder_decoder", "decoder_only")
POS_ENCODINGS = ("sinusoidal", "learned", "rope", "none")
ACTIVATIONS = ("relu", "gelu")


class _Config:
    """Shared by the config dataclasses: copies, and plain dicts for JSON checkpoints."""

    def replace(self, **changes: Any):
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Inverse of `to_dict`; unknown field names are an error that lists the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; known fields: "
                             f"{sorted(known)}")
        return cls(**data)



@dataclass(frozen=True)
class ModelConfig(_Config):
    """Sizes and switches of a Transformer; validated on construction.

    `src_vocab_size` defaults to `tgt_vocab_size` (the paper shares one vocabulary);
    decoder-only models ignore it. `norm_first=False` is the paper's post-norm.

    `dropout` is the paper's P_drop, applied where section 5.4 puts it: on each sub-layer's
    output and on the embeddings + positions. `attention_dropout` drops attention weights
    too (the paper has none; the Annotated Transformer and tensor2tensor use 0.1). It costs a
    (B, H, Tq, Tk) random mask per layer and, on a CPU, the fused kernel's fast path.
    """

    arch: str = "encoder_decoder"
    src_vocab_size: int | None = None
    tgt_vocab_size: int = 32
    d_model: int = 64
    n_heads: int = 4
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.1
    attention_dropout: float = 0.0
    max_len: int = 128
    pad_id: int = 0
    pos_encoding: str = "sinusoidal"
    norm_first: bool = False
    tie_embeddings: bool = True
    activation: str = "relu"

    def __post_init__(self) -> None:
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("pos_encoding", self.pos_encoding, POS_ENCODINGS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        if self.src_vocab_size is None:
            object.__setattr__(self, "src_vocab_size", self.tgt_vocab_size)
        positive = ["tgt_vocab_size", "src_vocab_size", "d_model", "n_heads", "d_ff", "max_len"]
        positive.append("n_decoder_layers")
        if self.arch == "encoder_decoder":
            positive.append("n_encoder_layers")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")
        if self.arch == "decoder_only" and self.n_encoder_layers < 0:
            raise ValueError(
                f"ModelConfig.n_encoder_layers must be >= 0, got {self.n_encoder_layers!r}"
            )
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"ModelConfig.d_model={self.d_model} must be divisible by n_heads={self.n_heads} "
                f"(each head gets d_model / n_heads dimensions); try n_heads in "
                f"{[h for h in range(1, 17) if self.d_model % h == 0]}"
            )
        if self.pos_encoding == "rope" and self.head_dim % 2 != 0:
            raise ValueError(
                f"pos_encoding='rope' needs an even head size, got d_model/n_heads = "
                f"{self.d_model}/{self.n_heads} = {self.head_dim}"
            )
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0.0 <= value < 1.0:
                raise ValueError(f"ModelConfig.{name} must be in [0, 1), got {value!r}")
        if not 0 <= self.pad_id < min(self.src_vocab_size, self.tgt_vocab_size):
            raise ValueError(
                f"ModelConfig.pad_id={self.pad_id} must be a token id below the vocabulary "
                f"sizes (src {self.src_vocab_size}, tgt {self.tgt_vocab_size})"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def shares_vocab(self) -> bool:
        return self.src_vocab_size == self.tgt_vocab_size

    # ---- presets -----------------------------------------------------------------------------
    @classmethod
    def tiny(cls, vocab_size: int, arch: str = "encoder_decoder", **overrides: Any) -> ModelConfig:
        """2 layers, d_model 64, 4 heads: trains a toy task in seconds on a laptop CPU."""
        base = dict(arch=arch, tgt_vocab_size=vocab_size, d_model=64, n_heads=4,
                    n_encoder_layers=2, n_decoder_layers=2, d_ff=256, dropout=0.1, max_len=128)
        return cls(**{**base, **overrides})

    @classmethod
    def small(cls, vocab_size: int, arch: str = "encoder_decoder", **overrides: Any) -> ModelConfig:
        """3 layers, d_model 128, 4 heads: toy translation in minutes on a CPU."""
        base = dict(arch=arch, tgt_vocab_size=vocab_size, d_model=128, n_heads=4,
                    n_encoder_layers=3, n_decoder_layers=3, d_ff=512, dropout=0.1, max_len=256)
        return cls(**{**base, **overrides})

    @classmethod
    def paper_base(cls, vocab_size: int = 37000, **overrides: Any) -> ModelConfig:
        """Table 3, base: N=6, d_model=512, d_ff=2048, h=8, P_drop=0.1 (about 65M parameters)."""
        base = dict(arch="encoder_decoder", tgt_vocab_size=vocab_size, d_model=512, n_heads=8,
                    n_encoder_layers=6, n_decoder_layers=6, d_ff=2048, dropout=0.1, max_len=512)
        return cls(**{**base, **overrides})

    @classmethod
    def paper_big(cls, vocab_size: int = 37000, **overrides: Any) -> ModelConfig:
        """Table 3, big: N=6, d_model=1024, d_ff=4096, h=16, P_drop=0.3 (about 213M parameters)."""
        base = dict(arch="encoder_decoder", tgt_vocab_size=vocab_size, d_model=1024, n_heads=16,
                    n_encoder_layers=6, n_decoder_layers=6, d_ff=4096, dropout=0.3, max_len=512)
        return cls(**{**base, **overrides})


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(
            f"ModelConfig.{name}={value!r} is not supported; choose one of "
            + ", ".join(repr(a) for a in allowed)
        )


OPTIMIZERS = ("adam", "adamw")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig(_Config):
    """How to train. The defaults are the paper's recipe (section 5.3): Adam with betas
    (0.9, 0.98), eps 1e-9, the warmup-then-inverse-square-root schedule ("noam"), label
    smoothing 0.1. `TrainConfig.classroom()` is a faster recipe for tiny models on a CPU.
    `compile=True` runs the training forward through `torch.compile` (off by default: see
    benchmarks/RESULTS.md for when it pays off).

    `lr` is the peak rate of the "cosine" and "constant" schedules; "noam" derives its rate from
    d_model and warmup, multiplied by `lr_scale`. `precision="auto"` uses bf16 autocast where it
    is faster (CUDA with bf16; a CPU with AMX or AVX512-BF16 at d_model >= 128; see
    `minitransformer.precision`), fp32 elsewhere; "fp32" and "bf16" force one.
    """

    batch_size: int = 64
    optimizer: str = "adam"
    schedule: str = "noam"
    lr: float = 1e-3
    lr_scale: float = 1.0
    warmup_steps: int = 400
    total_steps: int | None = None
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-9
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    grad_clip: float | None = 1.0
    eval_every: int = 0
    eval_batch_size: int = 256
    seed: int = 0
    device: str | None = None
    precision: str = "auto"
    compile: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        from .schedules import SCHEDULES

        for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                              ("precision", PRECISIONS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"TrainConfig.{name}={value!r} is not supported; choose one of "
                                 + ", ".join(repr(a) for a in allowed))
        for name in ("batch_size", "eval_batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, "
                                 f"got {getattr(self, name)!r}")
        for name in ("warmup_steps", "eval_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 0, "
                                 f"got {getattr(self, name)!r}")
        if not (self.lr > 0 and self.lr_scale > 0):
            raise ValueError(f"TrainConfig.lr and lr_scale must be > 0, got {self.lr!r} and "
                             f"{self.lr_scale!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"TrainConfig.label_smoothing must be in [0, 1), "
                             f"got {self.label_smoothing!r}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip!r}")
        if self.schedule == "noam" and self.warmup_steps == 0:
            raise ValueError("TrainConfig.schedule='noam' needs warmup_steps > 0")
        if self.schedule == "cosine" and not (self.total_steps and self.total_steps > 0):
            raise ValueError(f"TrainConfig.schedule='cosine' needs total_steps > 0, "
                             f"got {self.total_steps!r}")
        object.__setattr__(self, "betas", tuple(self.betas))

    @classmethod
    def classroom(cls, **overrides: Any) -> TrainConfig:
        """Fast recipe for tiny models on a CPU: AdamW, lr 3e-3, 50 warmup steps, constant."""
        base = dict(optimizer="adamw", schedule="constant", lr=3e-3, warmup_steps=50,
                    betas=(0.9, 0.98), eps=1e-9, label_smoothing=0.0, batch_size=64)
        return cls(**{**base, **overrides})
