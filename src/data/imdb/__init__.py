"""IMDB reviews (Maas et al. 2011): sources, token-id cache and the sentiment DataModule."""
