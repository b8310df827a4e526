"""What it runs on: the accelerator catalog (later: cloud instances, prices, servers)."""
