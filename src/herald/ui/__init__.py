"""The admin UI: server-rendered pages for people who run campaigns."""
