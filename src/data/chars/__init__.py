"""Character corpora for char-RNN language models: text sources and the streaming DataModule."""
