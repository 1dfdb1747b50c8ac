"""The page number a list page was asked for, shared by the queue and the access log."""

# No list here has this many pages; a larger number would only overflow the SQL OFFSET.
MAX_PAGE = 10_000


def page_number(raw: str | None) -> int:
    """The page asked for, within 1..MAX_PAGE; missing or anything but a number is page 1."""
    try:
        return min(max(1, int(raw or 1)), MAX_PAGE)
    except ValueError:
        return 1
