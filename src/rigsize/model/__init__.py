"""What runs: the architecture and its tensors, model inputs (presets, config.json, folders, GGUF, the Hub) and weight/KV formats."""
