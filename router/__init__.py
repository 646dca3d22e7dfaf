"""The blastradius router: a sans-I/O policy core and the aiohttp gateway that drives it."""
