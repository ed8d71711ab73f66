"""The Transformer of "Attention Is All You Need" (encoder-decoder) and its decoder-only sibling.

    model = build_model(ModelConfig.tiny(vocab_size=20))
    out = model(src, tgt, output_attentions=True)       # src (B, S), tgt (B, T) token ids
    out.logits, out.encoder_attentions, out.decoder_attentions, out.cross_attentions

Sizes come from the config only; this module knows nothing of tokenizers, training or plots.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .attention import KVCache
from .config import ModelConfig
from .layers import DecoderLayer, EncoderLayer
from .masks import padding_mask
from .positional import RotaryEmbedding, build_positional, embedding_scale

Attentions = tuple[Tensor, ...]


@dataclass
class ModelOutput:
    """What a forward pass returns. Attention tuples hold one (B, H, Tq, Tk) tensor per layer:
    softmax weights before dropout. They are None unless `output_attentions=True`."""

    logits: Tensor  # (B, T, V)
    encoder_attentions: Attentions | None = None  # each (B, H, S, S)
    decoder_attentions: Attentions | None = None  # each (B, H, T, T)
    cross_attentions: Attentions | None = None  # each (B, H, T, S)


class Transformer(nn.Module):
    """Embeddings (x sqrt(d_model)) + positions -> encoder stack -> decoder stack -> logits."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        cfg = self.config = config
        d = cfg.d_model
        layer_args = dict(d_model=d, n_heads=cfg.n_heads, d_ff=cfg.d_ff, dropout=cfg.dropout,
                          attention_dropout=cfg.attention_dropout, norm_first=cfg.norm_first,
                          activation=cfg.activation)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab_size, d)
        self.positional = build_positional(cfg.pos_encoding, cfg.max_len, d)
        use_rope = cfg.pos_encoding == "rope"
        self.rotary = RotaryEmbedding(cfg.max_len, cfg.head_dim) if use_rope else None
        self.embed_dropout = nn.Dropout(cfg.dropout)
        self.scale = embedding_scale(d)

        self.src_embed: nn.Embedding | None = None
        self.encoder_layers = nn.ModuleList()
        if self.is_encoder_decoder:
            share = cfg.tie_embeddings and cfg.shares_vocab
            self.src_embed = self.tgt_embed if share else nn.Embedding(cfg.src_vocab_size, d)
            self.encoder_layers.extend(
                EncoderLayer(**layer_args) for _ in range(cfg.n_encoder_layers))
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(**layer_args, cross=self.is_encoder_decoder, index=i)
            for i in range(cfg.n_decoder_layers)
        )
        # Pre-norm stacks end with a norm; post-norm layers already end normalised.
        self.encoder_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self.output_proj = nn.Linear(d, cfg.tgt_vocab_size, bias=False)
        self._init_weights()
        if cfg.tie_embeddings:  # the paper shares this matrix with the embeddings
            self.output_proj.weight = self.tgt_embed.weight

    @property
    def is_encoder_decoder(self) -> bool:
        return self.config.arch == "encoder_decoder"

    def _init_weights(self) -> None:
        learned_positions = getattr(self.positional, "embedding", None)  # keeps its own init
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding) and module is not learned_positions:
                # std d^-0.5: after the x sqrt(d) scaling, inputs have unit variance, and the
                # tied output projection starts with logits of a sensible size.
                nn.init.normal_(module.weight, std=self.config.d_model ** -0.5)

    # ---- public API ----------------------------------------------------------------------------
    def forward(self, src: Tensor | None = None, tgt: Tensor | None = None,
                output_attentions: bool = False) -> ModelOutput:
        """src: (B, S) ids, or None for decoder-only; tgt: (B, T) decoder input ids."""
        if tgt is None:
            raise ValueError("tgt (the decoder's input ids, shape (B, T)) is required")
        memory = src_keep = enc_attn = None
        if self.is_encoder_decoder:
            if src is None:
                raise ValueError("this encoder-decoder model needs src ids (B, S); got src=None")
            memory, src_keep, enc_attn = self._encode(src, output_attentions)
        elif src is not None:
            raise ValueError("this decoder-only model takes no src; call model(None, ids) or "
                             "model(tgt=ids)")
        hidden, dec_attn, cross_attn = self._decode(tgt, memory, src_keep, output_attentions)
        return ModelOutput(
            logits=self.output_proj(hidden),
            encoder_attentions=enc_attn,
            decoder_attentions=dec_attn,
            cross_attentions=cross_attn if self.is_encoder_decoder else None,
        )

    def encode(self, src: Tensor) -> Tensor:
        """(B, S) source ids -> memory (B, S, d_model)."""
        if not self.is_encoder_decoder:
            raise ValueError("a decoder-only model has no encoder; call model.decode(ids)")
        return self._encode(src, False)[0]

    def decode(self, tgt: Tensor, memory: Tensor | None = None, src: Tensor | None = None,
               cache: KVCache | None = None) -> Tensor:
        """Decoder logits (B, T, V) for tgt (B, T). Encoder-decoder: pass the memory from
        `encode(src)` and `src` itself (its padding is masked). With a `KVCache`, tgt holds only
        the new positions; earlier keys and values come from the cache, which is updated."""
        src_keep = None
        if self.is_encoder_decoder:
            if memory is None:
                raise ValueError("decode() needs the encoder memory: model.decode(tgt, "
                                 "model.encode(src), src)")
            if src is not None:
                src_keep = self._memory_keep(src, cache)
        elif memory is not None or src is not None:
            raise ValueError("a decoder-only model takes no memory or src")
        hidden = self._decode(tgt, memory, src_keep, False, cache)[0]
        return self.output_proj(hidden)

    # ---- stacks ----------------------------------------------------------------------------
    def _encode(self, src: Tensor, need_weights: bool):
        self._check_ids(src, self.config.src_vocab_size, "src")
        keep = self._keep_mask(src)
        x = self._embed(self.src_embed, src, start=0)
        rope = self.rotary(0, src.size(1)) if self.rotary is not None else None
        weights = []
        for layer in self.encoder_layers:
            x, w = layer(x, key_mask=keep, rope=rope, need_weights=need_weights)
            weights.append(w)
        return self.encoder_norm(x), keep, (tuple(weights) if need_weights else None)

    def _decode(self, tgt: Tensor, memory: Tensor | None, src_keep: Tensor | None,
                need_weights: bool, cache: KVCache | None = None):
        start = cache.length if cache is not None else 0
        self._check_ids(tgt, self.config.tgt_vocab_size, "tgt", start)
        # With a cache, earlier keys are real tokens already; only a full pass masks padding.
        self_keep = self._keep_mask(tgt) if cache is None else None
        x = self._embed(self.tgt_embed, tgt, start)
        rope = self.rotary(start, tgt.size(1)) if self.rotary is not None else None
        self_w, cross_w = [], []
        for layer in self.decoder_layers:
            x, sw, cw = layer(x, memory, self_key_mask=self_keep, memory_key_mask=src_keep,
                              rope=rope, need_weights=need_weights, cache=cache)
            self_w.append(sw)
            cross_w.append(cw)
        if cache is not None:
            cache.length += tgt.size(1)
        if not need_weights:
            return self.decoder_norm(x), None, None
        return self.decoder_norm(x), tuple(self_w), tuple(cross_w)

    def _embed(self, table: nn.Embedding, ids: Tensor, start: int) -> Tensor:
        x = table(ids) * self.scale  # (B, T, D)
        if self.positional is not None:
            x = self.positional(x, start)
        return self.embed_dropout(x) if self.training else x

    def _keep_mask(self, ids: Tensor) -> Tensor | None:
        """(B, 1, 1, T) True on real tokens, or None when nothing is padding (faster kernels)."""
        keep = padding_mask(ids, self.config.pad_id)
        return None if bool(keep.all()) else keep

    def _memory_keep(self, src: Tensor, cache: KVCache | None) -> Tensor | None:
        """The source padding mask; with a cache it is worked out once, at the first step."""
        if cache is None:
            return self._keep_mask(src)
        if not cache.has_memory_keep:
            cache.memory_keep, cache.has_memory_keep = self._keep_mask(src), True
        return cache.memory_keep

    def _check_ids(self, ids: Tensor, vocab_size: int, name: str, start: int = 0) -> None:
        if not isinstance(ids, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(ids).__name__}")
        if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.is_complex():
            raise ValueError(f"{name} must hold integer token ids (torch.long), got {ids.dtype}")
        if ids.dim() != 2:
            raise ValueError(f"{name} must have shape (batch, length), got {tuple(ids.shape)}; "
                             f"for one sequence use ids.unsqueeze(0)")
        length = ids.size(1)
        if length == 0:
            raise ValueError(f"{name} is empty (length 0); give at least one token")
        if start + length > self.config.max_len:
            where = f" starting at position {start}" if start else ""
            raise ValueError(f"{name} length {length}{where} exceeds max_len="
                             f"{self.config.max_len}; shorten the sequence or build the model "
                             f"with a larger ModelConfig.max_len")
        low, high = torch.aminmax(ids)
        low, high = int(low), int(high)
        if low < 0 or high >= vocab_size:
            bad = low if low < 0 else high
            raise IndexError(f"{name} token id {bad} is outside the vocabulary of size "
                             f"{vocab_size} (valid ids: 0..{vocab_size - 1})")


def build_model(config: ModelConfig) -> Transformer:
    """A freshly initialised Transformer for `config`."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model expects a ModelConfig, got {type(config).__name__}")
    return Transformer(config)
