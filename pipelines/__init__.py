"""Jobs and the command line: the only package that wires the stages together."""
