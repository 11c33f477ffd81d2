"""Admin pages (filled in by the UI feature)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
