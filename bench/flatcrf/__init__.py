"""A flat 25-field case report form with a plain Django admin: the baseline of bench/http_save.py."""
