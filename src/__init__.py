"""seqlab: recurrent sequence models (LSTM, GRU, RNN) with PyTorch Lightning."""
