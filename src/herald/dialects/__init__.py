"""Vendor dialects: each turns one vendor's wire format into core service calls and core errors back."""
