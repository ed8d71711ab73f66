"""Decoding: greedy search, beam search and sampling, batch-aware, stopping at EOS.

    result = greedy_decode(model, src, max_new_tokens=20)           # encoder-decoder
    result = beam_search(model, src, beam_size=4)                   # length penalty alpha=0.6
    result = sample(model, prompt=ids, top_p=0.9, generator=g)      # decoder-only, ids (B, P)
    result.tokens        # (B, T) generated ids: EOS included, then pad_id
    result.to_lists()    # [[ids without specials], ...];  result.texts(tokenizer)

Every function is pure (it runs under `torch.inference_mode()` and restores the model's
train/eval mode) and by default feeds only the newest token to the model each step, reusing
earlier keys and values from a `KVCache`; `use_cache=False` recomputes the whole prefix every
step instead (same tokens, slower: useful to see what the cache saves).

Decoding stops at EOS for each row and at a length limit: `max_new_tokens`, and never more
positions than the model's `config.max_len`. The decoder's input starts with `prompt` (B, P)
when given (decoder-only: the text to continue, starting with BOS; right-padded with pad_id when
rows differ in length), else with a single BOS. PAD and BOS are never generated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor, nn

from .attention import KVCache

__all__ = [
    "DecodeResult",
    "beam_search",
    "filter_logits",
    "greedy_decode",
    "length_penalty_factor",
    "sample",
    "strip_special",
]


# ---- result ------------------------------------------------------------------------------------
@dataclass
class DecodeResult:
    """What a decoding function returns; N = batch size (x num_return_sequences for beams).

    `scores` is what the search ranks by: the sum of log-probabilities of the generated tokens
    (greedy, sampling), or that sum divided by the length penalty (beam search). `log_probs` is
    always the raw sum, under the model's own distribution (temperature 1, no filtering).
    """

    tokens: Tensor  # (N, T) long: generated ids, EOS included, pad_id after it
    scores: Tensor  # (N,) float
    log_probs: Tensor  # (N,) float: sum of log p(token | prefix) over the generated tokens
    lengths: Tensor  # (N,) long: generated tokens per row, EOS included
    finished: Tensor  # (N,) bool: the row ended with EOS (False: stopped by the length limit)
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def to_lists(self, strip: bool = True) -> list[list[int]]:
        """One Python list of ids per row; `strip` drops EOS, padding and BOS."""
        if not strip:
            rows = zip(self.tokens.tolist(), self.lengths.tolist(), strict=True)
            return [row[:n] for row, n in rows]
        specials = (self.pad_id, self.bos_id, self.eos_id)
        return [strip_special(row, eos_id=self.eos_id, special_ids=specials)
                for row in self.tokens.tolist()]

    def texts(self, tokenizer) -> list[str]:
        """The rows as text, through any tokenizer with `decode(ids)`."""
        return [tokenizer.decode(ids) for ids in self.to_lists()]


def strip_special(ids: Iterable[int] | Tensor, *, eos_id: int = 2,
                  special_ids: Iterable[int] = (0, 1, 2)) -> list[int]:
    """Ids (a list or a 1-D tensor) up to the first `eos_id`, without any of `special_ids`."""
    if isinstance(ids, Tensor):
        ids = ids.tolist()
    specials = set(special_ids)
    kept: list[int] = []
    for token_id in ids:
        if token_id == eos_id:
            break
        if token_id not in specials:
            kept.append(int(token_id))
    return kept


def length_penalty_factor(length: int | Tensor, alpha: float) -> float | Tensor:
    """Wu et al. (2016), eq. 14: lp(Y) = ((5 + |Y|) / 6) ** alpha; beam scores are log P / lp.

    alpha = 0 ranks by raw log-probability (favours short outputs); larger alpha favours longer.
    """
    if isinstance(length, Tensor):
        return ((5.0 + length.float()) / 6.0) ** alpha
    return ((5.0 + length) / 6.0) ** alpha


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Logits (..., V) with everything outside the top-k and outside the nucleus set to -inf.

    Nucleus (top-p, Holtzman et al. 2020): keep the smallest set of most likely tokens whose
    probabilities sum to at least `top_p`; the most likely token is always kept.
    """
    _check_top_k(top_k)
    _check_top_p(top_p)
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (..., 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits.float(), dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # probability of the more likely tokens
        drop_sorted = mass_before >= top_p  # first token: mass_before = 0 < top_p, always kept
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


# ---- public decoding functions ------------------------------------------------------------
@torch.no_grad()
def greedy_decode(model: nn.Module, src: Tensor | None = None, *,
                  max_new_tokens: int | None = None, bos_id: int = 1, eos_id: int = 2,
                  pad_id: int | None = None, prompt: Tensor | None = None,
                  batch_size: int | None = None, use_cache: bool = True) -> DecodeResult:
    """The most likely next token, every step. src: (B, S) ids for an encoder-decoder, None for
    decoder-only; prompt: (B, P) decoder ids to continue (default: BOS alone); batch_size: rows
    to generate when there is neither src nor prompt (default 1)."""
    _check_model(model)
    max_new_tokens = _check_max_new(max_new_tokens)

    def pick(log_probs: Tensor) -> Tensor:
        return log_probs.argmax(dim=-1)

    return _search(model, src, prompt, batch_size, bos_id, pad_id, rows_per_input=1,
                   run=lambda s, p: _generate(model, s, p, pick, max_new_tokens, bos_id, eos_id,
                                              _pad(model, pad_id), use_cache))


@torch.no_grad()
def sample(model: nn.Module, src: Tensor | None = None, *, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None,
           generator: torch.Generator | None = None, max_new_tokens: int | None = None,
           bos_id: int = 1, eos_id: int = 2, pad_id: int | None = None,
           prompt: Tensor | None = None, batch_size: int | None = None,
           use_cache: bool = True) -> DecodeResult:
    """Draw each next token from softmax(logits / temperature), restricted to the `top_k` most
    likely tokens and/or the nucleus of probability `top_p`. The same `generator` seed gives the
    same samples. `scores` are log-probabilities under the unmodified model."""
    _check_model(model)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if temperature == 0:
        raise ValueError("temperature=0 means always taking the most likely token; use "
                         "greedy_decode(model, ...) for that, or a small positive temperature")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    _check_top_k(top_k)
    _check_top_p(top_p)
    max_new_tokens = _check_max_new(max_new_tokens)

    def pick(log_probs: Tensor) -> Tensor:
        logits = filter_logits(log_probs / temperature, top_k, top_p)  # (N, V)
        probs = torch.softmax(logits, dim=-1)
        if generator is not None and generator.device != probs.device:
            return torch.multinomial(probs.to(generator.device), 1, generator=generator
                                     ).squeeze(1).to(probs.device)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (N,)

    return _search(model, src, prompt, batch_size, bos_id, pad_id, rows_per_input=1,
                   run=lambda s, p: _generate(model, s, p, pick, max_new_tokens, bos_id, eos_id,
                                              _pad(model, pad_id), use_cache))


@torch.no_grad()
def beam_search(model: nn.Module, src: Tensor | None = None, *, beam_size: int = 4,
                length_penalty: float = 0.6, max_new_tokens: int | None = None,
                num_return_sequences: int = 1, early_stopping: bool = False, bos_id: int = 1,
                eos_id: int = 2, pad_id: int | None = None, prompt: Tensor | None = None,
                batch_size: int | None = None, use_cache: bool = True) -> DecodeResult:
    """Keep the `beam_size` best partial outputs per source (B sources x K beams in one batch).

    A hypothesis that emits EOS is set aside with score log P / lp(|Y|) (see
    `length_penalty_factor`; the paper used alpha=0.6, beam 4), and the best `beam_size` of
    these are kept. A source is done when no open beam can beat the worst kept one, even at the
    longest allowed length (the default), or, with `early_stopping=True` (faster; fairseq, and
    Hugging Face's flag of that name), as soon as `beam_size` hypotheses have finished: then
    beam_size=1 is exactly greedy search. At the length limit, open beams compete as unfinished.
    Returns the best `num_return_sequences` per source, best first: rows b*n .. b*n+n-1.
    """
    _check_model(model)
    beam_size = _check_positive_int("beam_size", beam_size)
    n_return = _check_positive_int("num_return_sequences", num_return_sequences)
    if n_return > beam_size:
        raise ValueError(f"num_return_sequences={n_return} must be <= beam_size={beam_size}")
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float)) \
            or not math.isfinite(length_penalty):
        raise ValueError(f"length_penalty (alpha) must be a finite number such as 0.6, "
                         f"got {length_penalty!r}")
    max_new_tokens = _check_max_new(max_new_tokens)
    search = _BeamSearch(beam_size, float(length_penalty), n_return, early_stopping, eos_id,
                         _pad(model, pad_id))
    return _search(model, src, prompt, batch_size, bos_id, pad_id, rows_per_input=n_return,
                   run=lambda s, p: search(model, s, p, max_new_tokens, bos_id, use_cache))


# ---- shared machinery ---------------------------------------------------------------------
class _Stepper:
    """Next-token log-probabilities (N, V) for N running decoder inputs.

    With a KVCache only the new tokens go through the model; without, the whole prefix does.
    `seq` (N, t) always holds every token fed so far (beams read their history from it).
    """

    def __init__(self, model: nn.Module, memory: Tensor | None, src: Tensor | None,
                 use_cache: bool, banned: tuple[int, ...]):
        self.model = model
        self.memory, self.src = memory, src
        self.banned = banned
        self._banned_index: Tensor | None = None  # (n_banned,), made at the first step
        self.cache = KVCache() if use_cache else None
        self.seq: Tensor | None = None

    def start(self, prefix: Tensor) -> Tensor:
        self.seq = prefix  # (N, P)
        return self._log_probs(prefix)

    def advance(self, tokens: Tensor) -> Tensor:
        """Append tokens (N,) and return the log-probabilities of the token after them."""
        new = tokens[:, None]  # (N, 1)
        self.seq = torch.cat([self.seq, new], dim=1)
        return self._log_probs(new if self.cache is not None else self.seq)

    def reorder(self, index: Tensor) -> None:
        """Keep rows `index` (N',) everywhere (beam search's choice of parents)."""
        self.seq = self.seq.index_select(0, index)
        if self.cache is not None:
            self.cache.reorder(index)
        if self.memory is not None:
            self.memory = self.memory.index_select(0, index)
            self.src = self.src.index_select(0, index)

    def _log_probs(self, ids: Tensor) -> Tensor:
        logits = self.model.decode(ids, self.memory, self.src, cache=self.cache)  # (N, t, V)
        log_probs = torch.log_softmax(logits[:, -1].float(), dim=-1)  # (N, V)
        # Never generate PAD or BOS (no renormalising: a chosen token keeps its model log-prob).
        if self._banned_index is None:
            self._banned_index = torch.tensor([i for i in self.banned if i < log_probs.size(1)],
                                              dtype=torch.long, device=log_probs.device)
        return log_probs.index_fill_(1, self._banned_index, float("-inf"))


def _generate(model: nn.Module, src: Tensor | None, prefix: Tensor,
              pick: Callable[[Tensor], Tensor], max_new_tokens: int | None, bos_id: int,
              eos_id: int, pad_id: int, use_cache: bool) -> DecodeResult:
    """One token per row per step (greedy or sampled) until EOS or the length limit."""
    limit = _length_limit(model, prefix, max_new_tokens)
    memory = model.encode(src) if src is not None else None
    stepper = _Stepper(model, memory, src, use_cache, _banned(pad_id, bos_id, eos_id))
    log_probs = stepper.start(prefix)  # (N, V)
    n = prefix.size(0)
    finished = torch.zeros(n, dtype=torch.bool, device=prefix.device)
    total = torch.zeros(n, dtype=torch.float32, device=prefix.device)
    lengths = torch.zeros(n, dtype=torch.long, device=prefix.device)
    generated: list[Tensor] = []
    for step in range(limit):
        token = pick(log_probs).masked_fill(finished, pad_id)  # (N,)
        chosen = log_probs.gather(1, token[:, None]).squeeze(1)  # (N,)
        total += chosen.masked_fill(finished, 0.0)
        lengths += (~finished).long()
        generated.append(token)
        finished |= token == eos_id
        if step == limit - 1 or bool(finished.all()):
            break
        log_probs = stepper.advance(token)
    return DecodeResult(tokens=torch.stack(generated, dim=1), scores=total.clone(),
                        log_probs=total, lengths=lengths, finished=finished,
                        pad_id=pad_id, bos_id=bos_id, eos_id=eos_id)


class _BeamSearch:
    """Beam search over a batch whose rows all have the same prefix length."""

    def __init__(self, beam_size: int, alpha: float, n_return: int, early_stopping: bool,
                 eos_id: int, pad_id: int):
        self.k, self.alpha, self.n_return = beam_size, alpha, n_return
        self.early_stopping, self.eos_id, self.pad_id = early_stopping, eos_id, pad_id

    def __call__(self, model: nn.Module, src: Tensor | None, prefix: Tensor,
                 max_new_tokens: int | None, bos_id: int, use_cache: bool) -> DecodeResult:
        k, eos = self.k, self.eos_id
        limit = _length_limit(model, prefix, max_new_tokens)
        b, p = prefix.shape
        device = prefix.device
        memory = src_k = None
        if src is not None:
            memory = model.encode(src).repeat_interleave(k, dim=0)  # (B*K, S, D)
            src_k = src.repeat_interleave(k, dim=0)  # (B*K, S)
        stepper = _Stepper(model, memory, src_k, use_cache, _banned(self.pad_id, bos_id, eos))
        log_probs = stepper.start(prefix.repeat_interleave(k, dim=0))  # (B*K, V)
        vocab = log_probs.size(1)
        # All K beams start as copies of the prefix: only beam 0 may expand at the first step.
        beam_logp = torch.full((b, k), float("-inf"), device=device)
        beam_logp[:, 0] = 0.0
        kept: list[list[_Hypothesis]] = [[] for _ in range(b)]  # finished, best K per source
        done = [False] * b
        base = (torch.arange(b, device=device) * k)[:, None]  # (B, 1) first row of each source
        n_cand = min(2 * k, k * vocab)  # at most K candidates end in EOS: K others remain
        for step in range(limit):
            length = step + 1  # generated tokens including the one chosen now
            cand = (beam_logp.view(-1, 1) + log_probs).view(b, k * vocab)  # (B, K*V)
            top_logp, top_idx = cand.topk(n_cand, dim=1)  # (B, 2K), best first
            parent, token = top_idx // vocab, top_idx % vocab  # (B, 2K) each
            is_eos = token == eos
            history = stepper.seq[:, p:]  # (B*K, step) tokens generated so far per beam
            if bool(is_eos[:, :k].any()):
                self._set_aside(kept, done, top_logp, parent, token, is_eos, history, length)
            # The next beams: the best K candidates that do not end in EOS, in rank order.
            rank = torch.arange(n_cand, device=device).expand(b, n_cand)
            sel = (rank + is_eos.long() * n_cand).argsort(dim=1)[:, :k]  # (B, K)
            beam_logp = top_logp.gather(1, sel)
            next_parent = (base + parent.gather(1, sel)).view(-1)  # (B*K,) flat rows
            next_token = token.gather(1, sel).view(-1)  # (B*K,)
            if step == limit - 1:
                final = torch.cat([history.index_select(0, next_parent), next_token[:, None]], 1)
                self._add_open(kept, done, beam_logp, final, length)
                break
            self._update_done(kept, done, beam_logp, length, limit)
            if all(done):
                break
            stepper.reorder(next_parent)
            log_probs = stepper.advance(next_token)
        return self._collect(kept, bos_id, device)

    def _score(self, logp: float, length: int) -> float:
        return logp / length_penalty_factor(length, self.alpha)

    def _keep(self, hyps: list[_Hypothesis], hyp: _Hypothesis) -> None:
        hyps.append(hyp)
        hyps.sort(key=lambda h: h.score, reverse=True)
        del hyps[self.k:]

    def _set_aside(self, kept, done, top_logp, parent, token, is_eos, history, length) -> None:
        """Finished candidates among each source's top K become hypotheses."""
        logp_rows, parent_rows, eos_rows = (t[:, :self.k].tolist()
                                            for t in (top_logp, parent, is_eos))
        for i in range(len(kept)):
            if done[i]:
                continue
            for logp, par, ends in zip(logp_rows[i], parent_rows[i], eos_rows[i], strict=True):
                if ends and logp > float("-inf"):
                    toks = history[i * self.k + par].tolist() + [self.eos_id]
                    self._keep(kept[i], _Hypothesis(self._score(logp, length), logp, toks, True))

    def _add_open(self, kept, done, beam_logp, final, length) -> None:
        """At the length limit, open beams compete with the finished hypotheses."""
        logps = beam_logp.tolist()
        for i in range(len(kept)):
            if done[i]:
                continue
            for j, logp in enumerate(logps[i]):
                if logp > float("-inf"):
                    toks = final[i * self.k + j].tolist()
                    self._keep(kept[i], _Hypothesis(self._score(logp, length), logp, toks, False))

    def _update_done(self, kept, done, beam_logp, length, limit) -> None:
        best_open = beam_logp.max(dim=1).values.tolist()  # (B,) raw log-probs, all <= 0
        # log P only falls as a beam grows, so its best reachable score is log P / (largest lp).
        largest_lp = max(length_penalty_factor(length + 1, self.alpha),
                         length_penalty_factor(limit, self.alpha))
        for i, hyps in enumerate(kept):
            if done[i] or len(hyps) < self.k:
                continue
            done[i] = self.early_stopping or best_open[i] / largest_lp <= hyps[-1].score

    def _collect(self, kept, bos_id: int, device) -> DecodeResult:
        chosen: list[_Hypothesis] = []
        for hyps in kept:
            best = hyps[: self.n_return]
            chosen.extend(best + [best[-1]] * (self.n_return - len(best)))  # tiny vocabularies
        width = max(len(h.tokens) for h in chosen)
        tokens = torch.full((len(chosen), width), self.pad_id, dtype=torch.long)
        for row, hyp in enumerate(chosen):
            tokens[row, : len(hyp.tokens)] = torch.tensor(hyp.tokens, dtype=torch.long)
        return DecodeResult(
            tokens=tokens.to(device),
            scores=torch.tensor([h.score for h in chosen], device=device),
            log_probs=torch.tensor([h.log_prob for h in chosen], device=device),
            lengths=torch.tensor([len(h.tokens) for h in chosen], device=device),
            finished=torch.tensor([h.finished for h in chosen], device=device),
            pad_id=self.pad_id, bos_id=bos_id, eos_id=self.eos_id)


@dataclass
class _Hypothesis:
    score: float  # log_prob / lp(len(tokens))
    log_prob: float
    tokens: list[int]  # generated ids, EOS last when finished
    finished: bool


def _search(model: nn.Module, src: Tensor | None, prompt: Tensor | None,
            batch_size: int | None, bos_id: int, pad_id: int | None, rows_per_input: int,
            run: Callable[[Tensor | None, Tensor], DecodeResult]) -> DecodeResult:
    """Validate the inputs, put the model in eval mode, and run the search on groups of rows
    whose prompts have the same length (right padding removed)."""
    pad = _pad(model, pad_id)
    device = _device(model)
    src = _check_src(model, src, device)
    prompt = _check_prompt(prompt, device)
    n = _batch_size(src, prompt, batch_size)
    if prompt is None:
        prompt = torch.full((n, 1), bos_id, dtype=torch.long, device=device)
    # inference_mode skips autograd's bookkeeping on every small op (about 7% of a batch-1
    # cached step on a CPU); the result is copied out so callers get ordinary tensors.
    with _eval_mode(model), torch.inference_mode():
        result = _by_prompt_length(src, prompt, pad, rows_per_input, run)
    return replace(result, **{f.name: getattr(result, f.name).clone() for f in fields(result)
                              if isinstance(getattr(result, f.name), Tensor)})


def _by_prompt_length(src: Tensor | None, prompt: Tensor, pad_id: int, rows_per_input: int,
                      run: Callable[[Tensor | None, Tensor], DecodeResult]) -> DecodeResult:
    real = prompt != pad_id  # (B, P)
    lengths = real.sum(dim=1)  # (B,)
    positions = torch.arange(prompt.size(1), device=prompt.device)
    if bool((lengths == 0).any()):
        row = int((lengths == 0).nonzero()[0])
        raise ValueError(f"prompt row {row} holds only padding (pad_id={pad_id}); start each "
                         f"row with at least the BOS id")
    if not bool((real == (positions < lengths[:, None])).all()):
        raise ValueError(f"prompt must be right-padded: pad_id={pad_id} may only follow the "
                         f"real tokens of a row, never come before them")
    if bool((lengths == prompt.size(1)).all()):
        return run(src, prompt)
    parts: list[tuple[Tensor, DecodeResult]] = []
    for length in sorted(set(lengths.tolist())):
        rows = (lengths == length).nonzero().squeeze(1)  # (b,)
        part = run(src.index_select(0, rows) if src is not None else None,
                   prompt.index_select(0, rows)[:, :length])
        out_rows = (rows[:, None] * rows_per_input
                    + torch.arange(rows_per_input, device=rows.device)).view(-1)
        parts.append((out_rows, part))
    return _merge(parts, prompt.size(0) * rows_per_input, pad_id)


def _merge(parts: list[tuple[Tensor, DecodeResult]], n_rows: int, pad_id: int) -> DecodeResult:
    """Put the groups' rows back in their original places."""
    first = parts[0][1]
    width = max(part.tokens.size(1) for _, part in parts)
    device = first.tokens.device
    tokens = torch.full((n_rows, width), pad_id, dtype=torch.long, device=device)
    scores = torch.zeros(n_rows, device=device)
    log_probs = torch.zeros(n_rows, device=device)
    lengths = torch.zeros(n_rows, dtype=torch.long, device=device)
    finished = torch.zeros(n_rows, dtype=torch.bool, device=device)
    for rows, part in parts:
        tokens[rows, : part.tokens.size(1)] = part.tokens
        scores[rows], log_probs[rows] = part.scores, part.log_probs
        lengths[rows], finished[rows] = part.lengths, part.finished
    return DecodeResult(tokens, scores, log_probs, lengths, finished,
                        pad_id=first.pad_id, bos_id=first.bos_id, eos_id=first.eos_id)


def _banned(pad_id: int, bos_id: int, eos_id: int) -> tuple[int, ...]:
    """Ids that are never a sensible output: PAD and BOS (unless one of them is also EOS)."""
    return tuple(sorted({pad_id, bos_id} - {eos_id}))


def _length_limit(model: nn.Module, prefix: Tensor, max_new_tokens: int | None) -> int:
    """How many tokens may be generated after `prefix` (B, P): the decoder sees at most
    config.max_len positions, and the last generated token is never fed back."""
    max_len = model.config.max_len
    if prefix.size(1) > max_len:
        raise ValueError(f"prompt length {prefix.size(1)} exceeds the model's max_len="
                         f"{max_len}; shorten the prompt")
    room = max_len - prefix.size(1) + 1
    return room if max_new_tokens is None else min(room, max_new_tokens)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside; every submodule's own train/eval flag restored after, even on error."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


# ---- checks -----------------------------------------------------------------------------------
def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module) or not hasattr(model, "decode"):
        raise TypeError(f"model must be a minitransformer Transformer, got {type(model).__name__}")


def _pad(model: nn.Module, pad_id: int | None) -> int:
    return model.config.pad_id if pad_id is None else pad_id


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _check_ids(ids: Tensor, name: str) -> None:
    if not isinstance(ids, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(ids).__name__}")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.is_complex():
        raise ValueError(f"{name} must hold integer token ids (torch.long), got {ids.dtype}")
    if ids.dim() != 2 or ids.size(0) == 0 or ids.size(1) == 0:
        raise ValueError(f"{name} must have shape (batch, length) with both > 0, got "
                         f"{tuple(ids.shape)}; for one sequence use ids.unsqueeze(0)")


def _check_src(model: nn.Module, src: Tensor | None, device: torch.device) -> Tensor | None:
    if model.is_encoder_decoder:
        if src is None:
            raise ValueError("this encoder-decoder model needs src ids (B, S) to decode from; "
                             "got src=None")
        _check_ids(src, "src")
        return src.to(device=device, dtype=torch.long)
    if src is not None:
        raise ValueError("this decoder-only model takes no src; pass the text to continue as "
                         "prompt=ids (B, P), starting with BOS")
    return None


def _check_prompt(prompt: Tensor | None, device: torch.device) -> Tensor | None:
    if prompt is None:
        return None
    _check_ids(prompt, "prompt")
    return prompt.to(device=device, dtype=torch.long)


def _batch_size(src: Tensor | None, prompt: Tensor | None, batch_size: int | None) -> int:
    sizes = {name: t.size(0) for name, t in (("src", src), ("prompt", prompt)) if t is not None}
    if batch_size is not None:
        sizes["batch_size"] = _check_positive_int("batch_size", batch_size)
    if len(set(sizes.values())) > 1:
        raise ValueError(f"batch sizes disagree: {sizes}")
    return next(iter(sizes.values()), 1)


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _check_max_new(value: int | None) -> int | None:
    return None if value is None else _check_positive_int("max_new_tokens", value)


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None:
        _check_positive_int("top_k", top_k)


def _check_top_p(top_p: float | None) -> None:
    if top_p is None:
        return
    if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (the probability mass to keep), got {top_p!r}")
