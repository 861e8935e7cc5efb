"""Where Tally reaches into py-evm: every override, copy and private name, and nothing else."""
