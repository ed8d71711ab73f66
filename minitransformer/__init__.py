"""minitransformer: a teaching-grade Transformer lab for JupyterLab.

    import minitransformer as mt
    model = mt.build_model(mt.ModelConfig.tiny(vocab_size=20))

Public names only; each block below re-exports one area of the package.
"""

__version__ = "0.1.0"

# --- model core ---
from .attention import KVCache, MultiHeadAttention
from .config import ModelConfig, TrainConfig
from .layers import DecoderLayer, EncoderLayer, FeedForward
from .model import ModelOutput, Transformer, build_model
from .positional import RotaryEmbedding, apply_rotary, sinusoidal_encoding
from .utils import choose_device, count_parameters, seed_everything

# --- tokenizers, tasks, batching ---
from .batching import Batch, collate_lm, collate_seq2seq, make_batches
from .tasks import (
    Example,
    ProbeBatch,
    Task,
    get_task,
    list_tasks,
    task_from_pairs,
    task_from_text_file,
    task_from_tsv,
    task_options,
)
from .tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    UnknownTokenWarning,
    WordTokenizer,
    load_tokenizer,
    make_tokenizer,
)

# --- training and checkpoints ---
from .checkpoint import Checkpoint, load, load_weights, save
from .trainer import NonFiniteLossError, Trainer, TrainState

# --- decoding ---
from .decoding import (
    DecodeResult,
    beam_search,
    filter_logits,
    greedy_decode,
    length_penalty_factor,
    sample,
    strip_special,
)

# --- attention lens ---
from .analysis import (
    ablate_heads,
    alignment_accuracy,
    attention_modules,
    attention_rollout,
    best_alignment_head,
    head_importance,
    head_stats,
)
from .history import AttentionHistory, Snapshot
from .playback import GenerationCache, GenerationPlayback, record_generation
from .recorder import AttentionCache, AttentionKeyError, eval_mode, record

# --- visualisation (static) ---
# Loaded on first use (mt.plot_attention(...)) so `import minitransformer` never loads matplotlib.
# Other lazily-loaded areas can add their own {name: module} entries to _LAZY_NAMES.
_LAZY_NAMES: dict[str, str] = dict.fromkeys(
    (
        "plot_attention", "plot_attention_grid", "plot_positional_encoding",
        "plot_encoding_curves", "plot_position_similarity", "plot_training_curves",
        "plot_head_stats", "save_figure",
    ),
    "minitransformer.viz.static",
)


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        import importlib

        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'minitransformer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))


# --- visualisation (interactive, widgets) ---
# Plotly figures, export, and ipywidgets explorers: loaded on first use like the static names.
_LAZY_NAMES.update(
    dict.fromkeys(
        ("attention_heatmap", "attention_figure", "attention_over_training",
         "alignment_figure", "positional_figure"),
        "minitransformer.viz.interactive",
    )
)
_LAZY_NAMES.update(dict.fromkeys(("export_figure", "attention_report"),
                                 "minitransformer.viz.export"))
_LAZY_NAMES.update(
    dict.fromkeys(
        ("AttentionExplorer", "PositionalEncodingExplorer", "TrainingDashboard",
         "HeadAblationExplorer"),
        "minitransformer.viz.widgets",
    )
)
