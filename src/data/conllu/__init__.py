"""CoNLL-U treebanks (Universal Dependencies) for part-of-speech tagging."""
