"""Sub-commands of the voicemap CLI, one per module."""
