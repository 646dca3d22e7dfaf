"""The aiohttp gateway that drives the router core over real HTTP."""
