"""Public pages (filled in by the sending and opt-in features)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
