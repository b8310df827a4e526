"""Memory per GPU: weights, KV cache, activations, optimizer states, and the engines' and frameworks' runtime budgets."""
