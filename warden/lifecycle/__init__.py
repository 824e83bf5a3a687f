"""Model lifecycle: the registry of known model artifacts and their checksums."""
