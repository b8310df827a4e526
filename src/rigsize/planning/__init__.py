"""How it runs: workload and layout rules, option declarations, the one evaluation path (estimate) and suggestions."""
