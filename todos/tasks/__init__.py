"""Tasks: their models, how they are shown, and the rules of create, read,
list, update, complete and delete."""
