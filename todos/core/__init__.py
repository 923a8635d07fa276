"""What every capability shares: settings, the database, errors, logs,
metrics, who the user is, and the field types of the models."""
