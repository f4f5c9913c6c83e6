"""`LazyModule`: a network that is built when first used and can be freed again (low-memory generation).

The pipeline's `low_memory` mode holds each heavy network (CLIP, the sync encoder, the DiT, the codec) as a
`LazyModule`: it is read from disk when its stage starts and dropped when the stage ends, so the peak memory
is that of the largest stage, not of all networks together. Attribute access and calls go to the built
module; `.to(...)` calls made before it exists are replayed on it when it is built.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

from torch import nn

log = logging.getLogger(__name__)


class LazyModule(nn.Module):
    """Stands for `factory()` (an `nn.Module` of class `cls`), built on first use, freed by `unload()`."""

    def __init__(self, factory: Callable[[], nn.Module], name: str, cls: type = nn.Module) -> None:
        super().__init__()
        self.__dict__["_factory"] = factory
        self.__dict__["_target"] = None  # not a registered child: an unloaded network has no parameters
        self.__dict__["_applied"] = []  # device/dtype moves made before the module exists
        self.name, self.cls = name, cls

    @property
    def loaded(self) -> bool:
        return self.__dict__["_target"] is not None

    def load(self) -> nn.Module:
        target = self.__dict__["_target"]
        if target is None:
            t0 = time.perf_counter()
            target = self.__dict__["_factory"]().eval().requires_grad_(False)
            for fn in self.__dict__["_applied"]:
                target._apply(fn)
            self.__dict__["_target"] = target
            log.info("loaded %s in %.1f s", self.name, time.perf_counter() - t0)
        return target

    def unload(self) -> None:
        if self.__dict__["_target"] is not None:
            self.__dict__["_target"] = None
            gc.collect()
            log.info("freed %s", self.name)

    def _apply(self, fn, recurse: bool = True):  # `.to()`, `.float()`, ... land here: replay them on load
        self.__dict__["_applied"].append(fn)
        if self.loaded:
            self.load()._apply(fn)
        return self

    def forward(self, *args, **kwargs):
        return self.load()(*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("__"):
                raise
            return getattr(self.load(), name)

    def parameters(self, recurse: bool = True):
        return self.load().parameters(recurse) if self.loaded else iter(())


def unload_all(*modules: nn.Module) -> None:
    """Free every `LazyModule` among `modules` (others are left alone)."""
    for m in modules:
        if isinstance(m, LazyModule):
            m.unload()
