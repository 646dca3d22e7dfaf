"""aiohttp fakes speaking each vendor's wire format around the behaviour model."""
