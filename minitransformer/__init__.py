"""minitransformer: a teaching-grade Transformer lab for JupyterLab.

    import minitransformer as mt
    model = mt.build_model(mt.ModelConfig.tiny(vocab_size=20))

Public names only; each block below re-exports one area of the package.
"""

__version__ = "0.1.0"

# --- model core ---
from .attention import KVCache, MultiHeadAttention
from .config import ModelConfig
from .layers import DecoderLayer, EncoderLayer, FeedForward
from .model import ModelOutput, Transformer, build_model
from .positional import sinusoidal_encoding
from .utils import choose_device, count_parameters, seed_everything

# --- tokenizers, tasks, batching ---

# --- visualisation (static) ---
