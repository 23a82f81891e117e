"""Raw sensor pipeline: raw files, Bayer packing, synthetic raw, noise, datasets, alignment."""
