"""One recording -> who spoke when: audio decoding, models, segmentation, embeddings, reconstruction."""
