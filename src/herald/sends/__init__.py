"""Single sends: lifecycle, audience materialisation, deliveries and their stats."""
