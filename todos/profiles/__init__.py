"""The person behind a user id: their time zone, address and default reminders."""
