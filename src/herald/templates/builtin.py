"""The built-in design templates every account can use (id 1 is "Blank Template", as AllsTechnology has it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_DIR = Path(__file__).parent / "builtin"


def builtin_templates() -> list[dict[str, Any]]:
    """Rows for the built-in templates, in id order."""
    return [
        {"id": 1, "name": "Blank Template", "preview_image": "blank.png", "html": "{}", "json": "{}", "is_blank": True},
        {
            "id": 2,
            "name": "Newsletter",
            "preview_image": "newsletter.png",
            "html": (_DIR / "newsletter.html").read_text(),
            "json": "{}",
            "is_blank": False,
        },
        {
            "id": 3,
            "name": "Announcement",
            "preview_image": "announcement.png",
            "html": (_DIR / "announcement.html").read_text(),
            "json": "{}",
            "is_blank": False,
        },
    ]
