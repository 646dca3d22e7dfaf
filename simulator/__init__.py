"""The SimPy driver of the router core, and the `blastradius` command line (composition root)."""
