"""Shells: the CLI and terminal rendering.  They parse and print; they hold no formulas, and the core never imports them."""
