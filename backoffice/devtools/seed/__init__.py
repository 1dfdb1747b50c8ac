"""Demo and benchmark data for `manage.py seed_demo`, split by what it builds."""
