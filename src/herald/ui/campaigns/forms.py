"""The posted form as a dependency (defined in the UI framework, herald.ui.deps), so form routes stay plain `def`."""

from __future__ import annotations

from herald.ui.deps import FormDep, posted_form

__all__ = ["FormDep", "posted_form"]
