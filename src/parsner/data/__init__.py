"""Data: read annotated files into records, normalise, split words, build and describe datasets, and align words to
sub-word windows (read -> normalise -> align). Nothing here loads a model or imports a later stage."""
