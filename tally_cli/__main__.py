"""`python -m tally_cli`: the `tally` command without its console script."""

from tally_cli import main

main()
