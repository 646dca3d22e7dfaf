"""The aiohttp gateway that drives the router core over real HTTP.

`create_app(policy)` builds the OpenAI-compatible gateway; `Driver` is the real-time
twin of the simulator's driver. Both import only `router.core` and third-party
libraries (tests/test_architecture.py).
"""

from router.server.app import DRIVERS, create_app
from router.server.driver import Driver

__all__ = ["DRIVERS", "Driver", "create_app"]
