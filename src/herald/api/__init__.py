"""The native REST API, /api/v1: OpenAPI, bearer auth, problem+json errors, cursor pagination."""
