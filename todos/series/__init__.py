"""Recurring series: the recurrence engine, the contract with the series
workflow, the series' rows and views, its control and the workflow's steps."""
