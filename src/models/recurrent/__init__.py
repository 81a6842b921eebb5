"""The recurrent stack behind every network: :class:`RecurrentEncoder` and its internals.

Public: ``RecurrentEncoder`` (LSTM / GRU / tanh-RNN stack with exact variable-length results),
``HandwrittenRNN`` and the hand-written ``LSTMCell`` / ``GRUCell``. The other modules serve them:
``dense_exact`` and ``within_length`` (packed semantics from dense kernels), ``cell_scan``,
``lstm_bptt``, ``gru_bptt`` and ``bptt_kernels`` (hand-written layers and their backward),
``weight_init``.
"""

from src.models.recurrent.cells import GRUCell, LSTMCell
from src.models.recurrent.encoder import Cell, RecurrentEncoder
from src.models.recurrent.handwritten import HandwrittenRNN

__all__ = ["Cell", "GRUCell", "HandwrittenRNN", "LSTMCell", "RecurrentEncoder"]
