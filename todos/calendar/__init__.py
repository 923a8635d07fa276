"""A person's tasks in the calendar they already use: a secret feed URL serving RFC 5545 text."""
