"""Running: the scheduler and its workers (``runner``) and what the user sees (``console``)."""
